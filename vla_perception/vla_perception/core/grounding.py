"""Choosing the object a command refers to: the rule-based selector, a VLM, or rules then the VLM.

``grounding`` (an orchestrator parameter, off by default):
- ``rules``: the parser's selector only (core.language); a reference it cannot resolve fails.
- ``rules_then_vlm``: the rules first; when they cannot resolve the reference (a VlaInputError from
  selection), the VLM is asked.
- ``vlm``: the VLM is always asked.

The VLM gets the command, the image and the numbered candidates (label, score, pixel box, 3D
position) and must answer ``{"id": N}``, nothing else. Its answer is validated: text that is not
that JSON, or an id that names no candidate, fails with a message saying so; it is never guessed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from vla_perception.core.models.json_answers import ModelOutputError, checked_json_answer
from vla_perception.core.types import Detection, Object3D, VlaInputError

GROUNDING_MODES = ("rules", "rules_then_vlm", "vlm")
ANSWER_SCHEMA = {"type": "object", "required": ["id"], "additionalProperties": False,
                 "properties": {"id": {"type": "integer", "minimum": 0}}}


class GroundingError(VlaInputError):
    """The VLM's choice could not be used (not the required JSON, or no such candidate)."""


@dataclass(frozen=True)
class Choice:
    index: int
    path: str  # "rules" or "vlm"
    detail: str = ""  # why this path (e.g. what the rules could not resolve)

    def describe(self) -> str:
        chooser = "the rules" if self.path == "rules" else "the VLM"
        return f"chosen by {chooser}" + (f" ({self.detail})" if self.detail else "")


def describe_candidates(detections: Sequence[Detection], objects: Sequence[Optional[Object3D]]) -> str:
    """One numbered line per candidate: what the VLM chooses among."""
    lines = []
    for index, detection in enumerate(detections):
        box = [round(v) for v in detection.box.as_array()]
        obj = objects[index] if index < len(objects) else None
        where = f", position {np.round(obj.position, 3).tolist()} m" if obj is not None else ", position unknown"
        lines.append(f"{index}: {detection.label!r}, score {detection.score:.2f}, box {box} px{where}")
    return "\n".join(lines)


def grounding_prompt(command: str, detections: Sequence[Detection], objects: Sequence[Optional[Object3D]]) -> str:
    return (f"A robot was told: \"{command}\".\n"
            "These objects were detected in the image (id: label, detector score, box [x_min, y_min, x_max, "
            "y_max] in pixels, 3D position in the camera frame):\n"
            f"{describe_candidates(detections, objects)}\n"
            "Which one does the command refer to? Answer with JSON {\"id\": N}, N one of the ids above.")


def parse_choice(answer: str, count: int) -> int:
    """The id in a VLM's answer, checked against the ``count`` candidates; GroundingError otherwise."""
    try:
        chosen = json.loads(checked_json_answer(answer, ANSWER_SCHEMA))["id"]
    except ModelOutputError as error:
        raise GroundingError(f"the VLM's grounding answer is unusable: {error}") from None
    if chosen >= count:
        raise GroundingError(f"the VLM chose id {chosen}, but only ids 0..{count - 1} exist: not guessing")
    return chosen


def choose(mode: str, by_rules: Callable[[], int], by_vlm: Callable[[], int]) -> Choice:
    """Run the configured path(s); a failure of the path that decides propagates with its reason."""
    if mode not in GROUNDING_MODES:
        raise ValueError(f"grounding must be one of {GROUNDING_MODES}, got {mode!r}")
    if mode == "vlm":
        return Choice(by_vlm(), "vlm")
    try:
        return Choice(by_rules(), "rules")
    except VlaInputError as error:
        if mode == "rules":
            raise
        return Choice(by_vlm(), "vlm", f"the rules could not: {error}")
