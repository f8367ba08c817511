"""Plain data types shared by the core modules (no ROS, no torch).

Rotations use scipy.spatial.transform.Rotation; quaternions are (x, y, z, w) like
geometry_msgs/Quaternion. Boxes are in pixels, corners (x_min, y_min, x_max, y_max).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np


class VlaInputError(ValueError):
    """Bad input a user can fix (empty prompt, bad image, ...): nodes answer success=false."""


@dataclass(frozen=True)
class Box2D:
    """Axis-aligned pixel box; x to the right, y down, max corner exclusive."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    @property
    def width(self) -> float:
        return self.x_max - self.x_min

    @property
    def height(self) -> float:
        return self.y_max - self.y_min

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x_min + self.x_max) / 2.0, (self.y_min + self.y_max) / 2.0)

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @classmethod
    def from_center_size(cls, cx: float, cy: float, w: float, h: float) -> "Box2D":
        return cls(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)

    def as_array(self) -> np.ndarray:
        return np.array([self.x_min, self.y_min, self.x_max, self.y_max], dtype=np.float64)

    def scaled(self, sx: float, sy: float) -> "Box2D":
        return Box2D(self.x_min * sx, self.y_min * sy, self.x_max * sx, self.y_max * sy)

    def iou(self, other: "Box2D") -> float:
        ix = max(0.0, min(self.x_max, other.x_max) - max(self.x_min, other.x_min))
        iy = max(0.0, min(self.y_max, other.y_max) - max(self.y_min, other.y_min))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


@dataclass
class Detection:
    """One 2D detection in the source image's pixels."""

    label: str
    score: float
    box: Box2D
    phrase: str = ""
    mask: Optional[np.ndarray] = None  # bool HxW of the source image, or None
    track_id: int = 0  # persistent object id from the tracker; 0 = not tracked


@dataclass
class Object3D:
    """An object localised in 3D, in the frame of the depth camera (optical) unless stated."""

    label: str
    score: float
    position: np.ndarray  # (3,) metres, centre of the oriented box
    orientation: np.ndarray  # (4,) quaternion x, y, z, w
    size: np.ndarray  # (3,) extents along the box's own x, y, z axes
    num_points: int = 0
    confidence: float = 0.0
    box: Optional[Box2D] = None
    track_id: int = 0  # the tracker's id of the detection it came from; 0 = not tracked
    extra: dict = field(default_factory=dict)
