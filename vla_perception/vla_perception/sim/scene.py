"""Headless pybullet tabletop: Panda arm, table, seeded objects, RGB-D camera, ground truth, execution.

Conventions are in :mod:`vla_perception.sim.world`. Ground-truth object boxes are the
axis-aligned bounds of each object's visual mesh in its upright object frame (the link
frame -- not pybullet's centre-of-mass frame -- rotated so z is up), placed at the
object's current pose: ``position`` is that box's centre, ``orientation`` its axes,
``size`` its extents.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import pybullet
import pybullet_data
from pybullet_utils import bullet_client
from scipy.spatial.transform import Rotation

from vla_perception.core.geometry import CameraIntrinsics, look_at_rotation
from vla_perception.core.types import Box2D
from vla_perception.sim import world
from vla_perception.sim.objects import MESH_KINDS, ObjectSpec, default_objects


@dataclass
class CameraConfig:
    """Pinhole camera looking from ``eye`` at ``target`` (world frame); fov is vertical, degrees."""

    eye: tuple = world.DEFAULT_CAMERA_EYE
    target: tuple = world.DEFAULT_CAMERA_TARGET
    up: tuple = world.DEFAULT_CAMERA_UP
    width: int = world.IMAGE_WIDTH
    height: int = world.IMAGE_HEIGHT
    fov_deg: float = world.CAMERA_FOV_DEG
    near: float = world.CAMERA_NEAR
    far: float = world.CAMERA_FAR

    def intrinsics(self) -> CameraIntrinsics:
        """K matching pybullet's renderer, with pixel centres at integer coordinates (ROS convention).

        Measured by fitting K to back-projected table pixels: principal point (w/2, h/2 - 1),
        focal length (h/2) / tan(fov/2); residual 0.002 mm. (In a bottom-up row convention that is "cy + 1";
        tests check the result against the table plane.)
        """
        f = (self.height / 2.0) / np.tan(np.radians(self.fov_deg) / 2.0)
        k = np.array([[f, 0.0, self.width / 2.0], [0.0, f, self.height / 2.0 - 1.0], [0.0, 0.0, 1.0]])
        return CameraIntrinsics(K=k, width=self.width, height=self.height, distortion_model="plumb_bob",
                                D=np.zeros(5))

    def optical_rotation(self) -> Rotation:
        """Rotation world <- camera optical frame (x right, y down, z forward)."""
        return look_at_rotation(self.eye, self.target, self.up)


@dataclass
class Frame:
    """One rendered frame: rgb8 HxWx3 uint8, depth float32 metres (NaN = no return), segmentation ids."""

    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray
    intrinsics: CameraIntrinsics
    camera_position: np.ndarray  # optical frame origin in the world
    camera_orientation: np.ndarray  # quaternion x, y, z, w: world <- optical


@dataclass
class ObjectTruth:
    """Ground truth of one object (world = panda_link0, camera = optical frame)."""

    name: str
    label: str
    rgba: tuple
    body_id: int
    link_position: np.ndarray
    link_orientation: np.ndarray
    position_world: np.ndarray  # centre of the visual-mesh box
    orientation_world: np.ndarray  # box axes, z up when resting
    size: np.ndarray  # box extents along its x, y, z
    position_camera: Optional[np.ndarray] = None
    orientation_camera: Optional[np.ndarray] = None
    box: Optional[Box2D] = None  # from the segmentation mask; None when not visible
    visible_pixels: int = 0
    extra: dict = field(default_factory=dict)


class TabletopScene:
    """A pybullet DIRECT-mode world; use as a context manager or call :meth:`close`."""

    def __init__(self, objects: Optional[Sequence[ObjectSpec]] = None, camera: Optional[CameraConfig] = None,
                 seed: int = 0, settle_time: float = 0.3, min_gap: float = 0.02):
        self.rng = np.random.default_rng(seed)
        self.camera = camera or CameraConfig()
        self.client = bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
        self.client.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.client.setGravity(0, 0, -9.81)
        self.client.setTimeStep(world.SIM_TIMESTEP)
        self._build_static_world()
        self.robot = self.client.loadURDF(world.ROBOT_URDF, world.ROBOT_BASE_POSITION, useFixedBase=True)
        self._finger_target = world.GRIPPER_MAX_OPENING / 2
        self._finger_force = 40.0
        self._arm_target = np.array(world.READY_JOINTS)
        self.reset_arm(world.READY_JOINTS)
        for finger in world.FINGER_JOINTS:
            self.client.changeDynamics(self.robot, finger, lateralFriction=2.0, spinningFriction=0.01)
        self.specs: dict[str, ObjectSpec] = {}
        self.bodies: dict[str, int] = {}
        self._spawn_objects(list(objects) if objects is not None else default_objects(), min_gap)
        self.step(settle_time)
        self.initial_heights = {name: self.object_link_pose(name)[0][2] for name in self.bodies}
        self._home_poses = {name: self.client.getBasePositionAndOrientation(body)
                            for name, body in self.bodies.items()}

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client = None

    def __enter__(self) -> "TabletopScene":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ building
    def _build_static_world(self) -> None:
        c = self.client
        half = np.array([np.ptp(world.TABLE_X_RANGE), np.ptp(world.TABLE_Y_RANGE), world.TABLE_THICKNESS]) / 2
        centre = [np.mean(world.TABLE_X_RANGE), np.mean(world.TABLE_Y_RANGE), world.TABLE_TOP_Z - half[2]]
        col = c.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half.tolist())
        vis = c.createVisualShape(pybullet.GEOM_BOX, halfExtents=half.tolist(),
                                  rgbaColor=[0.75, 0.62, 0.45, 1])
        self.table = c.createMultiBody(0, col, vis, centre)
        c.changeDynamics(self.table, -1, lateralFriction=1.0)
        self.floor = c.loadURDF("plane.urdf", [0, 0, world.FLOOR_Z])

    def _spawn_objects(self, specs: list[ObjectSpec], min_gap: float) -> None:
        placed: list[tuple[np.ndarray, float]] = []
        for spec in specs:
            if spec.name in self.specs:
                raise ValueError(f"duplicate object name '{spec.name}'")
            spec.check_graspable()
            lo, hi = spec.upright_bounds()
            radius = float(np.linalg.norm(np.maximum(np.abs(lo[:2]), np.abs(hi[:2]))))
            xy = self._free_position(spec, radius, placed, min_gap)
            placed.append((xy, radius))
            yaw = spec.yaw if spec.yaw is not None else float(self.rng.uniform(-np.pi, np.pi))
            orientation = Rotation.from_euler("z", yaw) * spec.upright_rotation
            position = [xy[0], xy[1], world.TABLE_TOP_Z - lo[2] + 0.001]
            self.bodies[spec.name] = self._create_body(spec, position, orientation.as_quat())
            self.specs[spec.name] = spec

    def _free_position(self, spec, radius, placed, min_gap) -> np.ndarray:
        if spec.position is not None:
            return np.asarray(spec.position, float)
        for _ in range(500):
            xy = np.array([self.rng.uniform(*world.REACH_X_RANGE),
                           self.rng.uniform(-world.REACH_Y_ABS, world.REACH_Y_ABS)])
            if all(np.linalg.norm(xy - other) > radius + r + min_gap for other, r in placed):
                return xy
        raise ValueError(f"no free place on the table for '{spec.name}': use fewer or smaller objects")

    def _create_body(self, spec: ObjectSpec, position, orientation) -> int:
        c = self.client
        if spec.kind == "box":
            half = (np.asarray(spec.size, float) / 2).tolist()
            col = c.createCollisionShape(pybullet.GEOM_BOX, halfExtents=half)
            vis = c.createVisualShape(pybullet.GEOM_BOX, halfExtents=half, rgbaColor=list(spec.color))
            body = c.createMultiBody(spec.mass, col, vis, position, orientation)
        else:
            kind = MESH_KINDS[spec.kind]
            body = c.loadURDF(kind.urdf, position, orientation, globalScaling=spec.global_scaling(),
                              useFixedBase=kind.static)
            c.changeVisualShape(body, -1, rgbaColor=list(spec.color))
            if not kind.static:
                c.changeDynamics(body, -1, mass=spec.mass)
        c.changeDynamics(body, -1, lateralFriction=1.5, spinningFriction=0.005, rollingFriction=0.0005)
        return body

    # ------------------------------------------------------------------ physics
    def step(self, seconds: float) -> None:
        """Advance the physics by ``seconds`` holding the current arm and gripper commands."""
        for _ in range(int(round(seconds / world.SIM_TIMESTEP))):
            self._apply_commands(self._arm_target)
            self.client.stepSimulation()

    def _apply_commands(self, arm_target) -> None:
        c = self.client
        c.setJointMotorControlArray(self.robot, list(world.ARM_JOINTS), pybullet.POSITION_CONTROL,
                                    targetPositions=list(arm_target), forces=list(world.ARM_MAX_FORCES))
        c.setJointMotorControlArray(self.robot, list(world.FINGER_JOINTS), pybullet.POSITION_CONTROL,
                                    targetPositions=[self._finger_target] * 2,
                                    forces=[self._finger_force] * 2)

    def shift_objects(self, offset) -> None:
        """Teleport every movable object to its settled pose plus ``offset`` (world, m): a scene that moves."""
        for name, body in self.bodies.items():
            kind = self.specs[name].kind
            if kind in MESH_KINDS and MESH_KINDS[kind].static:
                continue
            position, orientation = self._home_poses[name]
            self.client.resetBasePositionAndOrientation(body, np.add(position, offset).tolist(), orientation)
            self.client.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    # ------------------------------------------------------------------ robot
    def reset_arm(self, joints: Sequence[float], finger_opening: Optional[float] = None) -> None:
        """Teleport the arm (no physics) and hold it there."""
        self._arm_target = np.asarray(joints, float)
        for j, q in zip(world.ARM_JOINTS, joints):
            self.client.resetJointState(self.robot, j, q)
        if finger_opening is not None:
            self._finger_target = finger_opening / 2
        for finger in world.FINGER_JOINTS:
            self.client.resetJointState(self.robot, finger, self._finger_target)

    def joint_positions(self) -> np.ndarray:
        return np.array([s[0] for s in self.client.getJointStates(self.robot, list(world.ARM_JOINTS))])

    def gripper_opening(self) -> float:
        return float(sum(s[0] for s in self.client.getJointStates(self.robot, list(world.FINGER_JOINTS))))

    def end_effector_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World pose of panda_grasptarget (between the finger pads)."""
        state = self.client.getLinkState(self.robot, world.GRASP_TARGET_LINK, computeForwardKinematics=True)
        return np.array(state[4]), np.array(state[5])

    def inverse_kinematics(self, position, orientation, rest: Optional[Sequence[float]] = None) -> np.ndarray:
        """7 arm joints putting panda_grasptarget at the pose (pybullet's damped least squares)."""
        lower = [self.client.getJointInfo(self.robot, j)[8] for j in world.ARM_JOINTS]
        upper = [self.client.getJointInfo(self.robot, j)[9] for j in world.ARM_JOINTS]
        rest = list(rest if rest is not None else world.READY_JOINTS)
        sol = self.client.calculateInverseKinematics(
            self.robot, world.GRASP_TARGET_LINK, list(position), list(orientation),
            lowerLimits=lower + [0, 0], upperLimits=upper + [0.04, 0.04],
            jointRanges=[u - lo for lo, u in zip(lower, upper)] + [0.04, 0.04], restPoses=rest + [0, 0],
            maxNumIterations=200, residualThreshold=1e-5)
        return np.array(sol[:7])

    def execute_joint_trajectory(self, positions, times, settle_time: float = 0.3) -> np.ndarray:
        """Track 7-joint waypoints at ``times`` (s, increasing, from 0) with linear interpolation.

        Position control at the physics rate, no real-time sleeps. Returns the final joints.
        """
        positions = np.asarray(positions, float)
        times = np.asarray(times, float)
        if positions.ndim != 2 or positions.shape[1] != 7 or len(times) != len(positions):
            raise ValueError(f"need (K, 7) waypoints and K times, got {positions.shape} and {times.shape}")
        if np.any(np.diff(times) <= 0):
            raise ValueError("trajectory times must increase strictly")
        for t in np.arange(times[0], times[-1], world.SIM_TIMESTEP):
            target = [np.interp(t, times, positions[:, j]) for j in range(7)]
            self._apply_commands(target)
            self.client.stepSimulation()
        self._arm_target = positions[-1]
        self.step(settle_time)
        return self.joint_positions()

    def move_to_joints(self, joints, duration: float = 1.0) -> np.ndarray:
        start = self.joint_positions()
        return self.execute_joint_trajectory(np.vstack([start, joints]), [0.0, duration])

    def open_gripper(self, width: float = world.GRIPPER_MAX_OPENING, duration: float = 0.4) -> float:
        self._finger_target = float(np.clip(width, 0.0, world.GRIPPER_MAX_OPENING)) / 2
        self._finger_force = 40.0
        self.step(duration)
        return self.gripper_opening()

    def close_gripper(self, force: float = 40.0, duration: float = 0.5) -> float:
        """Close with ``force`` N per finger; return the opening reached (> 0 when holding something)."""
        self._finger_target = 0.0
        self._finger_force = float(force)
        self.step(duration)
        return self.gripper_opening()

    def lift(self, height: float = 0.15, duration: float = 1.5, steps: int = 10) -> np.ndarray:
        """Raise the grasp target straight up by ``height`` keeping its orientation (IK waypoints)."""
        pos, orn = self.end_effector_pose()
        waypoints = [self.joint_positions()]
        for k in range(1, steps + 1):
            goal = pos + np.array([0.0, 0.0, height * k / steps])
            waypoints.append(self.inverse_kinematics(goal, orn, rest=waypoints[-1]))
        return self.execute_joint_trajectory(waypoints, np.linspace(0.0, duration, steps + 1))

    def object_lifted(self, name: str, min_height: float = 0.05) -> tuple[bool, float]:
        """(lifted, height risen in metres) of an object relative to where it settled at start."""
        risen = float(self.object_link_pose(name)[0][2] - self.initial_heights[name])
        return risen >= min_height, risen

    # ------------------------------------------------------------------ camera
    def set_camera(self, camera: CameraConfig) -> None:
        self.camera = camera

    def intrinsics(self) -> CameraIntrinsics:
        return self.camera.intrinsics()

    def camera_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(position, quaternion x,y,z,w) of the optical frame in the world: the static extrinsic."""
        return np.asarray(self.camera.eye, float), self.camera.optical_rotation().as_quat()

    def render(self) -> Frame:
        cam = self.camera
        view = self.client.computeViewMatrix(cam.eye, cam.target, cam.up)
        proj = self.client.computeProjectionMatrixFOV(cam.fov_deg, cam.width / cam.height, cam.near, cam.far)
        _, _, rgba, zbuf, seg = self.client.getCameraImage(cam.width, cam.height, view, proj,
                                                           renderer=pybullet.ER_TINY_RENDERER)
        rgb = np.ascontiguousarray(np.reshape(rgba, (cam.height, cam.width, 4))[:, :, :3], dtype=np.uint8)
        d = np.reshape(zbuf, (cam.height, cam.width)).astype(np.float64)
        depth = cam.far * cam.near / (cam.far - (cam.far - cam.near) * d)
        depth[d >= 1.0 - 1e-7] = np.nan  # nothing hit: a real sensor reports no return
        pos, quat = self.camera_pose()
        seg = np.reshape(seg, d.shape).astype(np.int32)
        return Frame(rgb=rgb, depth=depth.astype(np.float32), segmentation=seg,
                     intrinsics=cam.intrinsics(), camera_position=pos, camera_orientation=quat)

    # ------------------------------------------------------------------ ground truth
    def object_link_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World pose of the object's link frame (pybullet's base pose is the centre of mass)."""
        body = self.bodies[name]
        com_pos, com_orn = self.client.getBasePositionAndOrientation(body)
        inertial_pos, inertial_orn = self.client.getDynamicsInfo(body, -1)[3:5]
        inv_pos, inv_orn = self.client.invertTransform(inertial_pos, inertial_orn)
        pos, orn = self.client.multiplyTransforms(com_pos, com_orn, inv_pos, inv_orn)
        return np.array(pos), np.array(orn)

    def ground_truth(self, frame: Optional[Frame] = None) -> list[ObjectTruth]:
        """Ground truth for every object; 2D boxes and visibility need the ``frame`` they refer to."""
        cam_pos, cam_quat = self.camera_pose()
        world_from_cam = Rotation.from_quat(cam_quat)
        truths = []
        for name, spec in self.specs.items():
            link_pos, link_orn = self.object_link_pose(name)
            box_rot = Rotation.from_quat(link_orn) * spec.upright_rotation.inv()
            lo, hi = spec.upright_bounds()
            centre = link_pos + box_rot.apply((lo + hi) / 2)
            truth = ObjectTruth(name=name, label=spec.label, rgba=spec.color, body_id=self.bodies[name],
                                link_position=link_pos, link_orientation=link_orn, position_world=centre,
                                orientation_world=box_rot.as_quat(), size=hi - lo)
            truth.position_camera = world_from_cam.inv().apply(centre - cam_pos)
            truth.orientation_camera = (world_from_cam.inv() * box_rot).as_quat()
            if frame is not None:
                truth.box, truth.visible_pixels = _mask_box(frame.segmentation == self.bodies[name])
            truths.append(truth)
        return truths

    def truth(self, name: str, frame: Optional[Frame] = None) -> ObjectTruth:
        return next(t for t in self.ground_truth(frame) if t.name == name)


def _mask_box(mask: np.ndarray) -> tuple[Optional[Box2D], int]:
    count = int(mask.sum())
    if count == 0:
        return None, 0
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return Box2D(float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)), count


def world_to_camera(points_world: np.ndarray, frame: Frame) -> np.ndarray:
    """Points (N, 3) from the world into the frame's optical frame."""
    offset = np.asarray(points_world) - frame.camera_position
    return Rotation.from_quat(frame.camera_orientation).inv().apply(offset)


def camera_to_world(points_camera: np.ndarray, frame: Frame) -> np.ndarray:
    """Points (N, 3) from the frame's optical frame into the world."""
    rotated = Rotation.from_quat(frame.camera_orientation).apply(np.asarray(points_camera))
    return rotated + frame.camera_position
