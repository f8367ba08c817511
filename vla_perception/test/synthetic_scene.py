"""Synthetic moving scenes for tracker tests: textured, coloured patches on a plain background.

Each object is a seeded random texture tinted with its colour; the scene draws them in list
order (later ones in front) and knows every object's true box, so tests compare the tracker
against ground truth that does not come from the tracker.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from vla_perception.core.types import Box2D, Detection


@dataclass(frozen=True)
class Patch:
    name: str
    label: str
    colour: tuple
    size: tuple  # (w, h) pixels
    seed: int

    def texture(self) -> np.ndarray:
        return _texture(self)


@lru_cache(maxsize=None)
def _texture(patch: Patch) -> np.ndarray:
    rng = np.random.default_rng(patch.seed)
    w, h = patch.size
    blocks = rng.uniform(0.45, 1.0, size=(h // 4 + 1, w // 4 + 1))
    shade = np.kron(blocks, np.ones((4, 4)))[:h, :w]
    return (shade[..., None] * np.asarray(patch.colour, float)).astype(np.uint8)


def render(placements: list[tuple[Patch, tuple]], size=(320, 240)) -> tuple[np.ndarray, dict[str, Box2D]]:
    """Draw patches at top-left positions; return the RGB image and each visible patch's true box."""
    width, height = size
    image = np.full((height, width, 3), 90, np.uint8)
    boxes = {}
    for patch, (x, y) in placements:
        w, h = patch.size
        x0, y0 = int(round(x)), int(round(y))
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(width, x0 + w), min(height, y0 + h)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        image[cy0:cy1, cx0:cx1] = patch.texture()[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        boxes[patch.name] = Box2D(cx0, cy0, cx1, cy1)
    return image, boxes


def detections_for(boxes: dict[str, Box2D], patches: list[Patch], score: float = 0.8,
                   skip=()) -> list[Detection]:
    by_name = {p.name: p for p in patches}
    return [Detection(by_name[name].label, score, box, by_name[name].label)
            for name, box in boxes.items() if name not in skip]
