"""A simulation backend for detector_node: boxes from the simulator's own scene. Not a model.

It stands in for a learned open-vocabulary detector when the simulator runs, so that the pick
pipeline's detect -> re-rank -> localise -> plan path runs end to end through detector_node's
Detect service and messages. It sees no pixels: it reads the true 2D boxes of the frame from
the simulator and makes them look like a detector's output:

- an object whose label contains every word of a prompt phrase is found with a score drawn
  from ``found_score``; one that shares only some words ("blue mug" for "red mug") gets a
  proportionally lower score;
- every box edge is moved by Gaussian noise of ``box_jitter`` times the box's size;
- with probability ``confusion_rate`` an object matching no phrase is reported as one of the
  phrases at a low score (``false_score``), and ``distractors`` boxes of random size appear at
  random places with a random phrase and a low score. Low here means below the orchestrator's
  default box_threshold (0.35), as most of a real detector's false positives are.

The noise is drawn from a generator seeded by the frame, so asking twice about one frame gives
one answer, as a deterministic model would.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vla_perception.core.language import phrase_match
from vla_perception.core.types import Box2D, Detection


@dataclass(frozen=True)
class SimDetectorNoise:
    found_score: tuple = (0.45, 0.9)  # score range of an object that fully matches a phrase
    box_jitter: float = 0.04  # std of each box edge, as a fraction of the box's width or height
    confusion_rate: float = 0.15  # chance an unrelated object is reported as a phrase
    false_score: tuple = (0.05, 0.3)  # score range of confusions and distractors
    distractors: int = 2  # boxes on nothing in particular, per call


def simulated_detections(objects: Sequence[tuple[str, Box2D]], phrases: Sequence[str], image_size: tuple,
                         rng: np.random.Generator, noise: SimDetectorNoise = SimDetectorNoise()) -> list[Detection]:
    """Detections of ``phrases`` among the visible ``objects`` (label, true box) of one frame, best first."""
    width, height = image_size
    detections = []
    for label, box in objects:
        match, phrase = max((phrase_match(phrase, label), phrase) for phrase in phrases)
        if match > 0:
            score = match ** 2 * rng.uniform(*noise.found_score)
        elif rng.random() < noise.confusion_rate:
            phrase, score = str(rng.choice(phrases)), rng.uniform(*noise.false_score)
        else:
            continue
        detections.append(Detection(phrase, float(score), _jittered(box, noise.box_jitter, image_size, rng), phrase))
    for _ in range(noise.distractors):
        w, h = rng.uniform(0.04, 0.25) * width, rng.uniform(0.04, 0.25) * height
        x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
        detections.append(Detection(str(rng.choice(phrases)), float(rng.uniform(*noise.false_score)),
                                    Box2D(x0, y0, x0 + w, y0 + h), ""))
    return sorted(detections, key=lambda d: -d.score)


def _jittered(box: Box2D, jitter: float, image_size: tuple, rng: np.random.Generator) -> Box2D:
    width, height = image_size
    w, h = box.x_max - box.x_min, box.y_max - box.y_min
    x0, x1 = sorted(np.clip(np.add([box.x_min, box.x_max], rng.normal(0.0, jitter * w, 2)), 0, width))
    y0, y1 = sorted(np.clip(np.add([box.y_min, box.y_max], rng.normal(0.0, jitter * h, 2)), 0, height))
    return Box2D(float(x0), float(y0), float(max(x1, x0 + 1)), float(max(y1, y0 + 1)))
