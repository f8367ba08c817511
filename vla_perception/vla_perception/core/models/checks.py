"""Input checks shared by every model wrapper: images, prompts, questions, label lists."""

from __future__ import annotations

from typing import Iterable, Sequence, Union

import numpy as np

from vla_perception.core.models.errors import AccelerationError, ImageInputError, TextInputError, TextTooLongError
from vla_perception.core.types import Box2D

MIN_IMAGE_SIDE = 8  # pixels; smaller frames are almost certainly a bug upstream
MAX_NEW_TOKENS_LIMIT = 512  # generated tokens per call; JSON answers of the chat models need more than BLIP's


def check_image(image) -> np.ndarray:
    """Return ``image`` as a contiguous HxWx3 uint8 RGB array, or raise ImageInputError."""
    if not isinstance(image, np.ndarray):
        raise ImageInputError(f"image must be a numpy HxWx3 uint8 RGB array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageInputError(
            f"image must be HxWx3 RGB, got shape {image.shape} "
            "(single-channel or RGBA images must be converted to rgb8 first)"
        )
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ImageInputError(f"image is empty (zero-sized): shape {image.shape}")
    if min(height, width) < MIN_IMAGE_SIDE:
        raise ImageInputError(
            f"image {width}x{height} is too small: each side needs >= {MIN_IMAGE_SIDE} pixels"
        )
    if image.dtype != np.uint8:
        raise ImageInputError(f"image must be uint8 (rgb8), got {image.dtype}")
    return np.ascontiguousarray(image)


def check_text(text, what: str) -> str:
    """Return ``text`` stripped, or raise TextInputError when it is not a non-empty string."""
    if not isinstance(text, str) or not text.strip():
        raise TextInputError(f"empty {what}: give some text")
    return text.strip()


def check_labels(labels: Iterable[str]) -> list[str]:
    """Return the stripped labels; raise when there are none or one is empty."""
    if isinstance(labels, str):
        raise TextInputError("no labels: give a list of label strings, not one string")
    cleaned = [label.strip() if isinstance(label, str) else "" for label in (labels or [])]
    if not cleaned or not all(cleaned):
        raise TextInputError(f"no labels: every label must be non-empty text, got {list(labels or [])!r}")
    return cleaned


def check_length(text: str, num_tokens: int, limit: int, model_id: str, counted: str = "") -> None:
    """Raise TextTooLongError when ``num_tokens`` exceeds the model's ``limit`` (no silent truncation).

    ``counted`` says what the tokens are when more than the text counts (e.g. tokens to generate).
    """
    if num_tokens > limit:
        what = f" ({counted})" if counted else ""
        raise TextTooLongError(
            f"text too long for {model_id}: {num_tokens} tokens{what} > limit {limit}: shorten {text[:60]!r}..."
        )


def crop_bounds(box: Box2D, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel bounds of ``box`` clipped to the image; raise when nothing is left."""
    if not np.all(np.isfinite(box.as_array())):
        raise ImageInputError(f"box {box} has non-finite corners")
    x0, y0 = max(0, int(np.floor(box.x_min))), max(0, int(np.floor(box.y_min)))
    x1, y1 = min(width, int(np.ceil(box.x_max))), min(height, int(np.ceil(box.y_max)))
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise ImageInputError(f"box {box} is empty or outside the {width}x{height} image")
    return x0, y0, x1, y1


def check_max_new_tokens(value: int) -> int:
    """Return ``value`` as an int when it is a usable generation budget, else raise VlaInputError."""
    is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not is_int or not 1 <= int(value) <= MAX_NEW_TOKENS_LIMIT:
        raise TextInputError(f"max_new_tokens must be an integer in 1..{MAX_NEW_TOKENS_LIMIT}, got {value!r}")
    return int(value)


# The runtime parameter of the model nodes (core/models/accelerated.py runs them); no torch needed here.
RUNTIMES = ("auto", "torch", "onnxruntime", "openvino", "tensorrt")
PRECISIONS = ("auto", "fp32", "int8")


def check_runtime(runtime: str) -> str:
    name = (runtime or "torch").strip().lower()
    if name not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    return name


def check_precision(precision: str) -> str:
    name = (precision or "auto").strip().lower()
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return name


# Families without an exported path yet, and why (see docs/runtime_benchmark.md).
TORCH_ONLY = {
    "grounding_dino": "not exported yet in this version",
    "owlvit": "not exported yet in this version",
    "blip_caption": "not exported yet in this version (generation loop with a KV cache)",
    "blip_vqa": "not exported yet in this version (generation loop with a KV cache)",
    "clipseg": "not exported yet in this version",
}


def check_torch_only(family: str, runtime: str, precision: str) -> None:
    """For a family that runs on torch only: accept torch/auto and fp32/auto, else one clear error."""
    name, precision = check_runtime(runtime), check_precision(precision)
    if name not in ("torch", "auto"):
        reason = TORCH_ONLY.get(family, "not exported yet in this version")
        raise AccelerationError(f"runtime {name!r} is not supported for {family}: {reason} "
                                "(use runtime:=torch or auto)")
    if precision == "int8":
        raise AccelerationError(f"precision 'int8' is not supported for {family} yet (use precision:=auto)")


Prompt = Union[str, Sequence[str]]


def prompt_phrases(prompt: Prompt) -> list[str]:
    """["red cup", "blue bottle"] from either "red cup . blue bottle" or a list of phrases (lower case)."""
    if isinstance(prompt, str):
        parts = check_text(prompt, "prompt").split(".")
    else:
        parts = [part for phrase in (prompt or []) for part in str(phrase).split(".")]
    phrases = [" ".join(part.lower().split()) for part in parts]
    phrases = [phrase for phrase in phrases if phrase]
    if not phrases:
        raise TextInputError(f"empty prompt: {prompt!r} names no phrase")
    return list(dict.fromkeys(phrases))
