"""Result types of the model wrappers; each carries the seconds its call took."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from vla_perception.core.types import Box2D, Detection


@dataclass
class ClassificationResult:
    labels: list[str]
    scores: list[float]  # softmax over labels, same order
    best_label: str
    best_score: float
    box: Optional[Box2D] = None  # the crop classified, or None for the whole frame
    inference_time: float = 0.0  # seconds for the whole classify() call


@dataclass
class DetectionResult:
    detections: list[Detection] = field(default_factory=list)
    prompt: str = ""  # normalised: "red cup . blue bottle ."
    model_id: str = ""
    inference_time: float = 0.0


@dataclass
class TextResult:
    text: str
    inference_time: float = 0.0
