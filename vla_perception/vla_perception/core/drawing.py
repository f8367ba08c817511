"""Draw detections onto an RGB frame (debug images for RViz, the demo's picture)."""
from __future__ import annotations

import colorsys
import zlib

import numpy as np
from PIL import Image, ImageDraw

from vla_perception.core.types import Detection


def label_colour(label: str) -> tuple[int, int, int]:
    """A stable, saturated colour per label (same label, same colour, in every frame)."""
    hue = (zlib.crc32(label.encode()) % 360) / 360.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.9, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(image: np.ndarray, detections: list[Detection], highlight: int | None = None,
                    line_width: int = 2) -> np.ndarray:
    """Return a copy of the HxWx3 uint8 RGB ``image`` with boxes, labels and scores drawn.

    ``highlight`` marks one detection (the chosen object) with a thicker white frame.
    """
    canvas = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    draw = ImageDraw.Draw(canvas)
    for index, detection in enumerate(detections):
        box = detection.box
        colour = label_colour(detection.label)
        # max corner exclusive; a box under a pixel wide or tall (a 1-pixel image) is drawn one pixel wide
        corners = [box.x_min, box.y_min, max(box.x_min, box.x_max - 1), max(box.y_min, box.y_max - 1)]
        if index == highlight:
            draw.rectangle([c + d for c, d in zip(corners, (-3, -3, 3, 3))], outline=(255, 255, 255),
                           width=line_width + 2)
        draw.rectangle(corners, outline=colour, width=line_width)
        text = f"{detection.label} {detection.score:.2f}"
        left, top, right, bottom = draw.textbbox((box.x_min, box.y_min), text)
        lift = bottom - top + 2
        y = box.y_min - lift if box.y_min >= lift else box.y_min
        draw.rectangle([box.x_min, y, box.x_min + (right - left) + 4, y + lift], fill=colour)
        draw.text((box.x_min + 2, y), text, fill=(0, 0, 0))
    return np.asarray(canvas)
