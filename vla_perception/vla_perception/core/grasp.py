"""Grasp candidates for a parallel gripper (Franka Panda hand) from an Object3D in the robot base frame.

Pose convention: every pose here is the gripper's TCP in the robot base frame (``panda_link0``, z up,
x forward). The TCP frame is ``panda_hand`` translated by ``TCP_OFFSET`` along its own z axis; that
z axis points out of the gripper, towards the object (the approach direction), and the fingers
close along its y axis. ``TCP_OFFSET`` is 0.105 m, the ``panda_grasptarget`` frame of pybullet_data's
panda.urdf that the simulator and the embedded planner load (Franka's own datasheet TCP is 0.1034 m;
the 1.6 mm difference is below the grasp clearance). ``hand_pose_from_tcp`` converts to
``panda_hand`` for planners (MoveIt) that take the hand link.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from vla_perception.core.geometry import object_in_base, pose_matrix  # noqa: F401 - re-exported for planners
from vla_perception.core.types import Object3D

TCP_OFFSET = 0.105
PANDA_MAX_OPENING = 0.08
PANDA_SHOULDER = np.array([0.0, 0.0, 0.333])  # joint 2 axis: the Panda's 0.855 m reach is measured from here
PANDA_REACH = 0.85
SQUEEZE_WEIGHT = 0.3  # score lost by a grasp left with no clearance beyond min_clearance (scaled)


@dataclass(frozen=True)
class GraspParams:
    pregrasp_offset: float = 0.10  # back off along the approach axis
    lift_height: float = 0.15  # straight up from the grasp
    clearance: float = 0.02  # added to the object's extent across the fingers
    min_clearance: float = 0.006  # the least margin accepted when the full clearance would not fit
    max_opening: float = PANDA_MAX_OPENING
    reach: float = PANDA_REACH
    table_z: float = 0.0
    min_tcp_height: float = 0.015  # above the table, so fingertips do not scrape it
    side_min_tcp_height: float = 0.045  # the hand is ~0.09 m thick across a side grasp
    finger_depth: float = 0.04  # how far down from the top a top-down grasp reaches on tall objects
    small_height: float = 0.12  # objects up to this height prefer top-down grasps


@dataclass
class GraspCandidate:
    kind: str  # "top_down" | "top_down_wide" | "side"
    position: np.ndarray  # TCP at the grasp, base frame
    orientation: np.ndarray  # TCP quaternion x, y, z, w
    pregrasp: np.ndarray  # TCP position before the approach (same orientation)
    lift: np.ndarray  # TCP position after lifting (same orientation)
    width: float  # gripper opening for the approach
    score: float
    extra: dict = field(default_factory=dict)

    @property
    def approach_type(self) -> str:
        """'top' or 'side', as GraspCandidate.msg names them."""
        return "side" if self.kind == "side" else "top"

    @property
    def approach(self) -> np.ndarray:
        return Rotation.from_quat(self.orientation).as_matrix()[:, 2]

    def matrix(self, which: str = "grasp") -> np.ndarray:
        """4x4 TCP pose at 'grasp', 'pregrasp' or 'lift'."""
        positions = {"grasp": self.position, "pregrasp": self.pregrasp, "lift": self.lift}
        return pose_matrix(positions[which], self.orientation)


def hand_pose_from_tcp(tcp_pose: np.ndarray, tcp_offset: float = TCP_OFFSET) -> np.ndarray:
    """``panda_hand`` pose for a TCP pose (both 4x4): back off ``tcp_offset`` along the TCP's z."""
    hand = tcp_pose.copy()
    hand[:3, 3] = tcp_pose[:3, 3] - tcp_offset * tcp_pose[:3, 2]
    return hand


def extent_along(obj: Object3D, direction: np.ndarray) -> float:
    """Width of the object's oriented box measured along a unit direction (base frame)."""
    axes = Rotation.from_quat(obj.orientation).as_matrix()
    return float(np.sum(np.asarray(obj.size) * np.abs(axes.T @ direction)))


def _horizontal_axes(obj: Object3D) -> tuple[np.ndarray, np.ndarray]:
    """Return the box's two most horizontal axes projected on the table plane, narrow one first."""
    axes = Rotation.from_quat(obj.orientation).as_matrix()
    vertical = int(np.argmax(np.abs(axes[2, :])))
    others = [i for i in range(3) if i != vertical]
    others.sort(key=lambda i: obj.size[i])
    projected = []
    for i in others:
        axis = np.array([axes[0, i], axes[1, i], 0.0])
        norm = np.linalg.norm(axis)
        projected.append(axis / norm if norm > 1e-9 else np.array([1.0, 0.0, 0.0]))
    return projected[0], projected[1]


def _top_down_rotation(finger_axis: np.ndarray) -> np.ndarray:
    z = np.array([0.0, 0.0, -1.0])
    y = finger_axis if np.dot(np.cross(finger_axis, z), [1.0, 0.0, 0.0]) >= 0 else -finger_axis
    x = np.cross(y, z)  # chosen sign keeps x forward-ish, the wrist's neutral yaw
    return np.column_stack([x, y, z])


def _side_rotation(approach: np.ndarray) -> np.ndarray:
    x = np.array([0.0, 0.0, -1.0])
    y = np.cross(approach, x)
    return np.column_stack([x, y, approach])


def _side_approaches(centre, narrow, wide) -> list[tuple[np.ndarray, float]]:
    """Horizontal approach directions: radially from the base, and along the box's faces within 45 degrees.

    Approaching square to a face makes the width across the fingers the box's true size (a radial approach
    to a rotated box measures its diagonal). Returns (direction, cosine to the radial direction).
    """
    radial = np.array([centre[0], centre[1], 0.0])
    if np.linalg.norm(radial) < 1e-6:
        return []
    radial /= np.linalg.norm(radial)
    approaches = [(radial, 1.0)]
    for axis in (narrow, wide, -narrow, -wide):
        alignment = float(np.dot(axis, radial))
        distinct = all(np.dot(axis, known) < np.cos(np.radians(5)) for known, _ in approaches)
        if alignment > np.cos(np.radians(45)) and distinct:
            approaches.append((axis, alignment))
    return approaches


def opening_for(extent: float, params: GraspParams) -> float:
    """Extent + clearance, squeezed down to the gripper's maximum while ``min_clearance`` still fits."""
    return min(extent + params.clearance, max(params.max_opening, extent + params.min_clearance))


def squeeze_penalty(extent: float, width: float, params: GraspParams) -> float:
    """Rank a grasp whose clearance had to be squeezed below one with the full margin (0 when not squeezed)."""
    return SQUEEZE_WEIGHT * max(0.0, 1.0 - (width - extent) / params.clearance) if params.clearance > 0 else 0.0


def _candidate(kind, rotation, position, width, score, params) -> GraspCandidate:
    approach = rotation[:, 2]
    return GraspCandidate(kind=kind, position=position, orientation=Rotation.from_matrix(rotation).as_quat(),
                          pregrasp=position - params.pregrasp_offset * approach,
                          lift=position + np.array([0.0, 0.0, params.lift_height]),
                          width=width, score=score)


def _all_candidates(obj: Object3D, params: GraspParams) -> list[GraspCandidate]:
    centre = np.asarray(obj.position, dtype=float)
    height = extent_along(obj, np.array([0.0, 0.0, 1.0]))
    top = centre[2] + height / 2.0
    small = height <= params.small_height
    narrow, wide = _horizontal_axes(obj)
    top_z = max(centre[2], top - params.finger_depth, params.table_z + params.min_tcp_height)
    top_position = np.array([centre[0], centre[1], top_z])
    candidates = []
    for kind, axis, score in (("top_down", narrow, 1.0 if small else 0.7),
                              ("top_down_wide", wide, 0.8 if small else 0.5)):
        extent = extent_along(obj, axis)
        width = opening_for(extent, params)
        candidates.append(_candidate(kind, _top_down_rotation(axis), top_position, width,
                                     score - squeeze_penalty(extent, width, params), params))
    side_z = max(centre[2], params.table_z + params.side_min_tcp_height)
    if side_z < top - 0.01:  # the fingers must still hold something below the top
        for approach, alignment in _side_approaches(centre, narrow, wide):
            rotation = _side_rotation(approach)
            extent = extent_along(obj, rotation[:, 1])
            width = opening_for(extent, params)
            score = (0.6 if small else 0.9) - 0.1 * (1.0 - alignment)  # prefer approaching from the robot
            score -= squeeze_penalty(extent, width, params)
            candidates.append(_candidate("side", rotation, np.array([centre[0], centre[1], side_z]), width,
                                         score, params))
    return candidates


def _rejection(candidate: GraspCandidate, params: GraspParams) -> str:
    if candidate.width > params.max_opening:
        return (f"{candidate.kind}: needs {candidate.width:.3f} m opening "
                f"> gripper max {params.max_opening:.3f} m")
    for name in ("position", "pregrasp", "lift"):
        point = getattr(candidate, name)
        distance = float(np.linalg.norm(point - PANDA_SHOULDER))
        if distance > params.reach:
            return (f"{candidate.kind}: {name} is {distance:.2f} m from the shoulder "
                    f"> reach {params.reach:.2f} m")
        if point[2] < params.table_z + params.min_tcp_height - 1e-9:
            return f"{candidate.kind}: {name} at z={point[2]:.3f} m is in or on the table"
    return ""


def generate_grasps(obj: Object3D, params: GraspParams = GraspParams(),
                    rejected: list[str] | None = None) -> list[GraspCandidate]:
    """Return feasible grasps of ``obj`` (base frame), best first; why others failed goes to ``rejected``."""
    feasible = []
    for candidate in _all_candidates(obj, params):
        reason = _rejection(candidate, params)
        if reason:
            if rejected is not None:
                rejected.append(reason)
            continue
        candidate.score -= 0.2 * candidate.width / params.max_opening  # prefer a comfortable margin
        feasible.append(candidate)
    feasible.sort(key=lambda candidate: candidate.score, reverse=True)
    return feasible
