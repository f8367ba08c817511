"""Pinhole camera geometry and depth decoding (ROS-free).

Frames follow REP-103 optical convention: x right, y down, z forward (metres).
Pixel coordinates follow ROS/OpenCV: the centre of pixel (u, v) is at (u, v), so K's
principal point is expressed in that convention.

Depth encodings accepted by :func:`decode_depth`:
  - ``16UC1``: unsigned integer millimetres (0 means no reading),
  - ``32FC1``: float metres (0, NaN and inf mean no reading),
  - any other sensor: pass ``depth_scale`` (metres per raw unit).
Invalid depth (0, NaN, inf, beyond ``max_range``) becomes NaN in the decoded array, so
every later step can use ``np.isfinite`` as its single validity test.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
from scipy.spatial.transform import Rotation

from vla_perception.core.types import Box2D, Object3D, VlaInputError

#: Distortion models whose all-zero coefficients mean "no distortion" (sensor_msgs/CameraInfo names).
SUPPORTED_DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant", "none", "")

DEPTH_ENCODING_SCALES = {"16UC1": 0.001, "mono16": 0.001, "32FC1": 1.0}


@dataclass(frozen=True)
class CameraIntrinsics:
    """The parts of sensor_msgs/CameraInfo that back-projection needs.

    Only undistorted (rectified) images are supported: a non-zero ``D`` raises
    :class:`VlaInputError` instead of silently giving wrong 3D points; feed the
    rectified stream (``image_rect``) whose CameraInfo has zero D.
    """

    K: np.ndarray
    width: int
    height: int
    distortion_model: str = "plumb_bob"
    D: np.ndarray = field(default_factory=lambda: np.zeros(5))

    def __post_init__(self) -> None:
        k = np.asarray(self.K, dtype=np.float64).reshape(3, 3)
        object.__setattr__(self, "K", k)
        object.__setattr__(self, "D", np.asarray(self.D, dtype=np.float64).ravel())
        validate_intrinsics(self)

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @classmethod
    def from_camera_info(cls, info) -> "CameraIntrinsics":
        """Build from a sensor_msgs/CameraInfo-like object (k, d, width, height, distortion_model)."""
        return cls(K=np.asarray(info.k, dtype=np.float64).reshape(3, 3), width=int(info.width),
                   height=int(info.height), distortion_model=str(info.distortion_model),
                   D=np.asarray(info.d, dtype=np.float64))

    def scaled_to(self, width: int, height: int) -> "CameraIntrinsics":
        """Intrinsics of the same camera resampled to another resolution (pixel centres stay aligned)."""
        sx, sy = width / self.width, height / self.height
        k = self.K.copy()
        k[0, 0] *= sx
        k[1, 1] *= sy
        k[0, 2] = (self.cx + 0.5) * sx - 0.5
        k[1, 2] = (self.cy + 0.5) * sy - 0.5
        return CameraIntrinsics(K=k, width=width, height=height,
                                distortion_model=self.distortion_model, D=self.D)


# Focal length over image width of any real camera: 0.02 (about 175 degrees wide) to 60 (about 1 degree).
FOCAL_PER_WIDTH = (0.02, 60.0)


def validate_intrinsics(cam: CameraIntrinsics) -> None:
    if cam.width <= 0 or cam.height <= 0:
        raise VlaInputError(f"camera size must be positive, got {cam.width}x{cam.height}")
    if not np.all(np.isfinite(cam.K)):
        raise VlaInputError("camera matrix K has non-finite entries")
    if cam.K[0, 0] <= 0 or cam.K[1, 1] <= 0:
        raise VlaInputError(f"focal lengths must be positive, got fx={cam.K[0, 0]}, fy={cam.K[1, 1]} "
                            "(is the CameraInfo filled in / the camera calibrated?)")
    low, high = FOCAL_PER_WIDTH
    if not (low <= cam.K[0, 0] / cam.width <= high and low <= cam.K[1, 1] / cam.width <= high):
        raise VlaInputError(f"focal lengths fx={cam.K[0, 0]:.6g}, fy={cam.K[1, 1]:.6g} px are implausible for a "
                            f"{cam.width} px wide image (expected {low} to {high} times the width, i.e. a field "
                            "of view between about 1 and 175 degrees)")
    if not (0 <= cam.cx <= cam.width and 0 <= cam.cy <= cam.height):
        raise VlaInputError(f"principal point ({cam.cx:.6g}, {cam.cy:.6g}) lies outside the "
                            f"{cam.width}x{cam.height} image")
    if not np.all(np.isfinite(cam.D)):
        raise VlaInputError(f"distortion coefficients D={cam.D.tolist()} are not finite")
    if cam.distortion_model not in SUPPORTED_DISTORTION_MODELS:
        raise VlaInputError(f"unsupported distortion model '{cam.distortion_model}'; "
                            f"use one of {SUPPORTED_DISTORTION_MODELS} with rectified images")
    if np.any(np.abs(cam.D) > 1e-9):
        raise VlaInputError(f"non-zero distortion D={cam.D.tolist()} is not supported: subscribe to the "
                            "rectified depth image (image_rect) whose CameraInfo has zero D")


def decode_depth(raw: np.ndarray, encoding: str = "", depth_scale: Optional[float] = None,
                 max_range: float = 10.0, min_range: float = 0.0) -> np.ndarray:
    """Convert a raw depth image to float32 metres with NaN where there is no valid reading.

    ``depth_scale`` (metres per raw unit) overrides the encoding's default scale; without an
    encoding the dtype decides (integers are millimetres, floats are metres).
    """
    arr = np.asarray(raw)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise VlaInputError(f"depth must be a single-channel HxW image, got shape {arr.shape} "
                            "(was a colour image passed as depth?)")
    if depth_scale is None:
        if encoding:
            if encoding not in DEPTH_ENCODING_SCALES:
                raise VlaInputError(f"unsupported depth encoding '{encoding}'; use 16UC1 (mm) or 32FC1 (m) "
                                    "or pass depth_scale")
            depth_scale = DEPTH_ENCODING_SCALES[encoding]
        else:
            depth_scale = 0.001 if np.issubdtype(arr.dtype, np.integer) else 1.0
    if depth_scale <= 0:
        raise VlaInputError(f"depth_scale must be positive, got {depth_scale}")
    metres = arr.astype(np.float32) * np.float32(depth_scale)
    invalid = ~np.isfinite(metres) | (metres <= max(min_range, 0.0)) | (metres > max_range)
    metres[invalid] = np.nan
    return metres


def pixel_rays(cam: CameraIntrinsics, us: np.ndarray, vs: np.ndarray) -> np.ndarray:
    """Rays (N, 3) with z = 1 through pixel coordinates (u, v)."""
    us = np.asarray(us, dtype=np.float64)
    vs = np.asarray(vs, dtype=np.float64)
    return np.stack([(us - cam.cx) / cam.fx, (vs - cam.cy) / cam.fy, np.ones_like(us)], axis=-1)


def backproject_pixels(cam: CameraIntrinsics, us: np.ndarray, vs: np.ndarray, z: np.ndarray) -> np.ndarray:
    """3D points (N, 3) in the optical frame for pixels (u, v) with depth z along the optical axis."""
    return pixel_rays(cam, us, vs) * np.asarray(z, dtype=np.float64)[..., None]


def project_points(cam: CameraIntrinsics, points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of optical-frame points (N, 3)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    us = cam.fx * pts[:, 0] / pts[:, 2] + cam.cx
    return np.stack([us, cam.fy * pts[:, 1] / pts[:, 2] + cam.cy], axis=1)


def backproject_region(depth_m: np.ndarray, cam: CameraIntrinsics, x0: int, y0: int, x1: int, y1: int,
                       stride: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-project the valid pixels of a window (x1, y1 exclusive): (points (N,3), u (N,), v (N,))."""
    vs, us = np.mgrid[y0:y1:stride, x0:x1:stride]
    z = depth_m[y0:y1:stride, x0:x1:stride]
    valid = np.isfinite(z)
    us, vs, z = us[valid], vs[valid], z[valid]
    return backproject_pixels(cam, us, vs, z), us, vs


def box_to_depth_pixels(box: Box2D, image_size: Optional[tuple[int, int]],
                        cam: CameraIntrinsics) -> Box2D:
    """Rescale a box from the colour image (width, height) to the depth image and clip it.

    Raises VlaInputError when the box is degenerate or lies outside the image.
    """
    vals = box.as_array()
    if not np.all(np.isfinite(vals)) or box.width <= 0 or box.height <= 0:
        raise VlaInputError(f"box must have positive finite size, got {vals.tolist()}")
    if image_size is not None:
        w, h = image_size
        if w <= 0 or h <= 0:
            raise VlaInputError(f"colour image size must be positive, got {image_size}")
        box = box.scaled(cam.width / w, cam.height / h)
    clipped = Box2D(max(0.0, box.x_min), max(0.0, box.y_min),
                    min(float(cam.width), box.x_max), min(float(cam.height), box.y_max))
    if clipped.width <= 0 or clipped.height <= 0:
        raise VlaInputError(f"box {vals.tolist()} lies outside the {cam.width}x{cam.height} depth image")
    return clipped


def box_pixel_window(box: Box2D) -> tuple[int, int, int, int]:
    """Integer pixel window (x0, y0, x1, y1) of the pixels whose centres lie inside the box."""
    x0 = int(np.ceil(box.x_min - 0.5))
    y0 = int(np.ceil(box.y_min - 0.5))
    x1 = max(x0 + 1, int(np.ceil(box.x_max - 0.5)))
    y1 = max(y0 + 1, int(np.ceil(box.y_max - 0.5)))
    return x0, y0, x1, y1


def resize_mask_nearest(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resample of a bool mask to (height, width)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise VlaInputError(f"mask must be HxW, got shape {mask.shape}")
    if mask.shape == (height, width):
        return mask
    rows = np.minimum(((np.arange(height) + 0.5) * mask.shape[0] / height).astype(int), mask.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * mask.shape[1] / width).astype(int), mask.shape[1] - 1)
    return mask[rows[:, None], cols[None, :]]


def object_in_base(obj: Object3D, camera_in_base: np.ndarray) -> Object3D:
    """Express a camera-frame object in the robot base frame, given the camera's 4x4 pose in that frame."""
    rotation = Rotation.from_matrix(camera_in_base[:3, :3]) * Rotation.from_quat(obj.orientation)
    position = camera_in_base[:3, :3] @ np.asarray(obj.position) + camera_in_base[:3, 3]
    return replace(obj, position=position, orientation=rotation.as_quat(), size=np.asarray(obj.size),
                   extra=dict(obj.extra))


def pose_matrix(position, quaternion) -> np.ndarray:
    """4x4 transform from a position and a quaternion x, y, z, w."""
    transform = np.eye(4)
    transform[:3, :3] = Rotation.from_quat(quaternion).as_matrix()
    transform[:3, 3] = position
    return transform


def look_at_rotation(eye, target, up=(0.0, 0.0, 1.0)) -> Rotation:
    """Rotation world <- optical frame (x right, y down, z forward) of a camera at ``eye`` looking at ``target``."""
    z = np.asarray(target, float) - np.asarray(eye, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, float))
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("camera up vector is parallel to the viewing direction")
    x /= np.linalg.norm(x)
    return Rotation.from_matrix(np.column_stack([x, np.cross(z, x), z]))
