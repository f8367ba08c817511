"""Association building blocks: box overlap, colour appearance, optimal one-to-one assignment.

The assignment is scipy's ``linear_sum_assignment`` (Hungarian / Jonker-Volgenant) on a
similarity matrix; pairs below a gate are never matched.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from vla_perception.core.types import Box2D

HUE_BINS, SATURATION_BINS = 16, 8


def boxes_array(boxes: list[Box2D]) -> np.ndarray:
    return np.array([b.as_array() for b in boxes], dtype=np.float64).reshape(-1, 4)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of corner boxes a (N, 4) and b (M, 4)."""
    a, b = a[:, None, :], b[None, :, :]
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = inter_w * inter_h
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def colour_histogram(hsv: np.ndarray, box: Box2D, inner_fraction: float = 0.8) -> np.ndarray:
    """Hue-saturation histogram (sums to 1) of the central part of ``box`` in an HSV uint8 image."""
    height, width = hsv.shape[:2]
    cx, cy = box.center
    half_w, half_h = max(1.0, box.width * inner_fraction / 2), max(1.0, box.height * inner_fraction / 2)
    x0, x1 = int(np.clip(cx - half_w, 0, width - 1)), int(np.clip(cx + half_w, 1, width))
    y0, y1 = int(np.clip(cy - half_h, 0, height - 1)), int(np.clip(cy + half_h, 1, height))
    roi = hsv[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    hist = cv2.calcHist([roi], [0, 1], None, [HUE_BINS, SATURATION_BINS], [0, 180, 0, 256]).ravel()
    total = hist.sum()
    return hist / total if total > 0 else np.full(hist.shape, 1.0 / hist.size, np.float32)


def appearance_matrix(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """(N, M) Bhattacharyya coefficients in [0, 1] between histograms (1 = identical colours)."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    return np.sqrt(np.stack(a)) @ np.sqrt(np.stack(b)).T


def assign(similarity: np.ndarray, minimum: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Maximum-total-similarity pairs (row, col) with similarity >= minimum; then unmatched rows and cols.

    Entries below ``minimum`` (or NaN, used as a hard gate) can never be paired.
    """
    rows, cols = similarity.shape
    if rows == 0 or cols == 0:
        return [], list(range(rows)), list(range(cols))
    allowed = np.nan_to_num(similarity, nan=-1.0) >= minimum
    cost = np.where(allowed, -np.nan_to_num(similarity, nan=0.0), 1e6)
    matched = [(r, c) for r, c in zip(*linear_sum_assignment(cost)) if allowed[r, c]]
    used_rows, used_cols = {r for r, _ in matched}, {c for _, c in matched}
    return (matched, [r for r in range(rows) if r not in used_rows], [c for c in range(cols) if c not in used_cols])
