"""CLIPSeg mask refinement: which pixels of a detection's box are the named object.

A box around a mug also holds table and background; the pose estimator separates them by depth,
but a mask helps where depth cannot (a flat object on the table, a neighbour touching it). Each
box is cropped with some context around it, all crops go through CLIPSeg in one batch with their
phrases, and each probability map is resized back onto its crop and kept inside its box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch

from vla_perception.core.models.checks import check_image, check_length, check_text, crop_bounds
from vla_perception.core.models.errors import VlaInputError
from vla_perception.core.models.loading import as_source, hf_pretrained
from vla_perception.core.models.runtime import Runtime, Stopwatch, make_runtime
from vla_perception.core.types import Box2D, Detection

DEFAULT_CONTEXT = 0.15  # crop = box grown by this fraction of its size on each side
DEFAULT_MIN_PIXELS = 20  # a refined mask with fewer pixels is not trusted; the box is kept


@dataclass
class MaskResult:
    masks: list[np.ndarray]  # bool HxW of the source image per box, False outside the box
    inference_time: float = 0.0


def check_threshold(value: float) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise VlaInputError(f"mask threshold must be a number in [0, 1], got {value!r}")
    return float(value)


def context_window(box: Box2D, context: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Pixel bounds of ``box`` grown by ``context`` × its size on each side, clipped to the image."""
    grow_x, grow_y = context * (box.x_max - box.x_min), context * (box.y_max - box.y_min)
    grown = Box2D(box.x_min - grow_x, box.y_min - grow_y, box.x_max + grow_x, box.y_max + grow_y)
    return crop_bounds(grown, width, height)


def paste_probabilities(probabilities: np.ndarray, window: tuple[int, int, int, int], box: Box2D,
                        image_shape: tuple[int, int], threshold: float) -> np.ndarray:
    """Resize a crop's probability map onto ``window`` and keep the pixels above ``threshold`` inside ``box``."""
    height, width = image_shape
    x0, y0, x1, y1 = window
    resized = torch.nn.functional.interpolate(torch.as_tensor(probabilities, dtype=torch.float32)[None, None],
                                              size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)[0, 0]
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = resized.numpy() >= threshold
    bx0, by0, bx1, by1 = crop_bounds(box, width, height)
    inside = np.zeros_like(mask)
    inside[by0:by1, bx0:bx1] = True
    return mask & inside


class ClipSegSegmenter:
    """CLIPSeg (transformers) over detection crops; ``segment`` returns one image-sized mask per box."""

    def __init__(self, model, processor, runtime: Runtime, model_id: str):
        self.model, self.processor, self.runtime, self.model_id = model, processor, runtime, model_id
        self.text_limit = int(model.config.text_config.max_position_embeddings)

    def close(self) -> None:
        self.model = self.processor = None

    def probabilities(self, crops: Sequence[np.ndarray], phrases: Sequence[str]) -> np.ndarray:
        """(len(crops), h, w) CLIPSeg probabilities at the model's resolution, one forward pass."""
        from PIL import Image

        for phrase in phrases:
            check_length(phrase, len(self.processor.tokenizer(phrase)["input_ids"]), self.text_limit, self.model_id)
        inputs = self.processor(text=list(phrases), images=[Image.fromarray(np.ascontiguousarray(c)) for c in crops],
                                padding=True, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**self.runtime.move(inputs)).logits
        return logits.float().reshape(len(crops), *logits.shape[-2:]).sigmoid().cpu().numpy()

    def segment(self, image: np.ndarray, boxes: Sequence[Box2D], phrases: Sequence[str],
                threshold: float = 0.4, context: float = DEFAULT_CONTEXT) -> MaskResult:
        image, threshold = check_image(image), check_threshold(threshold)
        if len(boxes) != len(phrases):
            raise VlaInputError(f"{len(boxes)} boxes but {len(phrases)} phrases: give one phrase per box")
        if not boxes:
            return MaskResult([])
        phrases = [check_text(phrase, "phrase") for phrase in phrases]
        height, width = image.shape[:2]
        windows = [context_window(box, context, width, height) for box in boxes]
        with Stopwatch() as watch:
            crops = [image[y0:y1, x0:x1] for x0, y0, x1, y1 in windows]
            maps = self.probabilities(crops, phrases)
            masks = [paste_probabilities(probs, window, box, (height, width), threshold)
                     for probs, window, box in zip(maps, windows, boxes)]
        return MaskResult(masks, watch.seconds)

    def warm_up(self) -> None:
        self.segment(np.zeros((32, 32, 3), np.uint8), [Box2D(4, 4, 28, 28)], ["object"])


def refine_detections(segmenter: ClipSegSegmenter, image: np.ndarray, detections: Sequence[Detection],
                      threshold: float = 0.4, min_pixels: int = DEFAULT_MIN_PIXELS
                      ) -> tuple[list[Detection], list[str]]:
    """Detections with CLIPSeg masks (phrase, else label), and a note per detection that kept its box.

    A mask with fewer than ``min_pixels`` pixels is dropped rather than trusted: the detection keeps
    whatever it had (its box, or the detector's own mask).
    """
    detections = list(detections)
    result = segmenter.segment(image, [d.box for d in detections], [d.phrase or d.label for d in detections],
                               threshold)
    refined, kept_box = [], []
    for detection, mask in zip(detections, result.masks):
        if int(mask.sum()) < min_pixels:
            kept_box.append(f"{detection.label}: CLIPSeg mask has {int(mask.sum())} px < {min_pixels}; box kept")
            refined.append(detection)
        else:
            refined.append(replace(detection, mask=mask))
    return refined, kept_box


def load_segmenter(source, device: str = "auto", threads: int = 0) -> ClipSegSegmenter:
    from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

    source = as_source(source, "clipseg")
    runtime = make_runtime(device, threads)
    model = hf_pretrained(CLIPSegForImageSegmentation, source, use_safetensors=True)
    model = model.to(runtime.device, runtime.dtype).eval()
    segmenter = ClipSegSegmenter(model, hf_pretrained(CLIPSegProcessor, source), runtime, source.model_id)
    segmenter.warm_up()
    return segmenter


