"""Box propagation between consecutive frames by sparse optical flow ("median flow").

Corners found inside each box are followed by pyramidal Lucas-Kanade from the previous
frame to the current one and back again; points whose round trip misses by more than
``max_round_trip_error`` pixels are dropped (they slid onto an occluder or the background).
The box moves by the median displacement of the rest and scales by the median ratio of
pairwise point distances, so a few wrong points cannot drag it. All boxes of a frame go
through one LK call each way.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vla_perception.core.types import Box2D


@dataclass(frozen=True)
class FlowParams:
    max_points: int = 20  # corners seeded per box
    inner_fraction: float = 0.8  # seed in the central part of the box, away from the background at its edges
    window: int = 15  # LK window (pixels, odd)
    pyramid_levels: int = 2
    max_round_trip_error: float = 1.0  # forward-backward error (pixels) above which a point is dropped
    min_points: int = 4  # fewer surviving points: the box does not move this frame
    max_scale_step: float = 1.15  # largest scale change accepted between two frames


@dataclass(frozen=True)
class FlowResult:
    box: Box2D
    points: int  # points that survived the round trip
    moved: bool  # False when too few points survived: the box was kept where it was


def seed_points(gray: np.ndarray, box: Box2D, params: FlowParams) -> np.ndarray:
    """(N, 2) float32 corners inside the central part of ``box`` (a grid where the box has no corners)."""
    height, width = gray.shape[:2]
    cx, cy = box.center
    half_w, half_h = box.width * params.inner_fraction / 2, box.height * params.inner_fraction / 2
    x0, x1 = int(max(0, cx - half_w)), int(min(width, cx + half_w))
    y0, y1 = int(max(0, cy - half_h)), int(min(height, cy + half_h))
    if x1 - x0 < 3 or y1 - y0 < 3:
        return np.empty((0, 2), np.float32)
    corners = cv2.goodFeaturesToTrack(gray[y0:y1, x0:x1], params.max_points, 0.01, 3)
    if corners is not None and len(corners) >= params.min_points:
        return corners.reshape(-1, 2) + np.array([x0, y0], np.float32)
    side = int(np.ceil(np.sqrt(params.max_points)))
    xs, ys = np.meshgrid(np.linspace(x0, x1 - 1, side), np.linspace(y0, y1 - 1, side))
    return np.column_stack([xs.ravel(), ys.ravel()]).astype(np.float32)


def _median_scale(before: np.ndarray, after: np.ndarray, max_pairs: int = 100) -> float:
    count = len(before)
    i, j = np.triu_indices(count, k=1)
    if len(i) > max_pairs:  # deterministic subsample keeps the cost flat for many points
        keep = np.linspace(0, len(i) - 1, max_pairs).astype(int)
        i, j = i[keep], j[keep]
    d_before = np.linalg.norm(before[i] - before[j], axis=1)
    d_after = np.linalg.norm(after[i] - after[j], axis=1)
    valid = d_before > 1.0
    return float(np.median(d_after[valid] / d_before[valid])) if valid.any() else 1.0


class FlowPropagator:
    """Moves boxes from one grey frame to the next."""

    def __init__(self, params: FlowParams = FlowParams()):
        self.params = params
        self._lk = dict(winSize=(params.window, params.window), maxLevel=params.pyramid_levels,
                        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03))

    def propagate(self, previous: np.ndarray, current: np.ndarray, boxes: list[Box2D]) -> list[FlowResult]:
        """Each box of ``previous`` (grey uint8) moved into ``current`` (same size)."""
        if previous.shape != current.shape:
            raise ValueError(f"frames differ in size: {previous.shape} vs {current.shape}")
        seeds = [seed_points(previous, box, self.params) for box in boxes]
        if not any(len(s) for s in seeds):
            return [FlowResult(box, 0, False) for box in boxes]
        points = np.concatenate(seeds).reshape(-1, 1, 2)
        forward, status_f, _ = cv2.calcOpticalFlowPyrLK(previous, current, points, None, **self._lk)
        backward, status_b, _ = cv2.calcOpticalFlowPyrLK(current, previous, forward, None, **self._lk)
        round_trip = np.linalg.norm(points - backward, axis=2).ravel()
        good = (status_f.ravel() == 1) & (status_b.ravel() == 1) & (round_trip <= self.params.max_round_trip_error)
        results, start = [], 0
        for box, seed in zip(boxes, seeds):
            span = slice(start, start + len(seed))
            start += len(seed)
            results.append(self._move(box, points[span, 0][good[span]], forward[span, 0][good[span]]))
        return results

    def _move(self, box: Box2D, before: np.ndarray, after: np.ndarray) -> FlowResult:
        if len(before) < self.params.min_points:
            return FlowResult(box, len(before), False)
        dx, dy = np.median(after - before, axis=0)
        step = self.params.max_scale_step
        scale = float(np.clip(_median_scale(before, after), 1.0 / step, step))
        cx, cy = box.center
        return FlowResult(Box2D.from_center_size(cx + dx, cy + dy, box.width * scale, box.height * scale),
                          len(before), True)
