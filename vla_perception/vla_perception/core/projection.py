"""Base-frame points into camera pixels, and a planned grasp drawn over a frame (ROS-free).

The camera pose is the optical frame in the base frame (REP-103 optical axes: x right,
y down, z forward), the same 7-number extrinsic the orchestrator's ``camera_pose`` holds
and the simulator's ground truth reports. Pixels follow :mod:`vla_perception.core.geometry`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy.spatial.transform import Rotation

from vla_perception.core.geometry import CameraIntrinsics, project_points

MIN_DEPTH = 0.01  # metres in front of the camera; nearer points (and those behind it) have no pixel
PATH_COLOUR = (40, 140, 255)
APPROACH_COLOUR = (0, 255, 0)
GRASP_COLOUR = (255, 0, 255)


def base_to_camera(points_base: np.ndarray, camera_position: Sequence[float],
                   camera_orientation: Sequence[float]) -> np.ndarray:
    """Points (N, 3) from the base frame into the optical frame whose pose (quaternion x,y,z,w) is given."""
    offset = np.asarray(points_base, dtype=np.float64).reshape(-1, 3) - np.asarray(camera_position, float)
    return Rotation.from_quat(camera_orientation).inv().apply(offset).reshape(-1, 3)


def project_base_points(points_base: np.ndarray, camera_position: Sequence[float],
                        camera_orientation: Sequence[float],
                        intrinsics: CameraIntrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (N, 2) of base-frame points and a mask of those in front of the camera (others are NaN)."""
    in_camera = base_to_camera(points_base, camera_position, camera_orientation)
    in_front = in_camera[:, 2] > MIN_DEPTH
    pixels = np.full((len(in_camera), 2), np.nan)
    if in_front.any():
        pixels[in_front] = project_points(intrinsics, in_camera[in_front])
    return pixels, in_front


def _visible_runs(pixels: np.ndarray) -> list[np.ndarray]:
    """Split a polyline at its NaN points, so a line never jumps across a point behind the camera."""
    finite = np.all(np.isfinite(pixels), axis=1)
    runs, current = [], []
    for point, ok in zip(pixels, finite):
        if ok:
            current.append(point)
        elif current:
            runs.append(np.asarray(current))
            current = []
    if current:
        runs.append(np.asarray(current))
    return runs


def draw_plan(image: np.ndarray, path_pixels: Optional[np.ndarray] = None,
              approach_pixels: Optional[np.ndarray] = None, width: int = 3) -> np.ndarray:
    """Return a copy of an RGB ``image`` with the planned TCP path and the approach drawn in.

    ``path_pixels`` (N, 2): the end-effector path as a polyline; ``approach_pixels`` (2, 2):
    pre-grasp -> grasp as an arrow ending in a ring at the grasp point. NaN points are skipped.
    """
    canvas = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    draw = ImageDraw.Draw(canvas)
    if path_pixels is not None:
        for run in _visible_runs(np.asarray(path_pixels, float).reshape(-1, 2)):
            if len(run) >= 2:
                draw.line([tuple(p) for p in run], fill=PATH_COLOUR, width=width, joint="curve")
    if approach_pixels is not None:
        start, end = np.asarray(approach_pixels, float).reshape(2, 2)
        if np.all(np.isfinite([start, end])):
            draw.line([tuple(start), tuple(end)], fill=APPROACH_COLOUR, width=width)
            _arrow_head(draw, start, end, APPROACH_COLOUR)
            radius = 3 * width
            draw.ellipse([end[0] - radius, end[1] - radius, end[0] + radius, end[1] + radius],
                         outline=GRASP_COLOUR, width=width)
    return np.asarray(canvas)


def _arrow_head(draw: ImageDraw.ImageDraw, start: np.ndarray, end: np.ndarray, colour, size: float = 12.0):
    direction = end - start
    length = float(np.linalg.norm(direction))
    if length < 1e-6:
        return
    direction /= length
    normal = np.array([-direction[1], direction[0]])
    back = end - direction * min(size, length)
    draw.polygon([tuple(end), tuple(back + normal * size / 2), tuple(back - normal * size / 2)], fill=colour)
