"""The pick pipeline: sentence -> detections -> re-ranked -> 3D -> chosen object -> grasp plan.

ROS-free: each stage's work is a callable in ``PickSteps`` (the orchestrator node plugs
in service calls to the other nodes; tests and benchmarks can plug in anything with
the same signature). This module owns the order of the stages, the feedback, the
cancellation checks, the timing of each stage, and the rule that every failure names its
stage and reason.
"""
from __future__ import annotations


import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from vla_perception.core.geometry import object_in_base
from vla_perception.core.types import Detection, Object3D

STAGES = ("snapshot", "parsing", "detecting", "re-ranking", "localising", "planning", "executing", "verifying")


class StageFailure(Exception):
    """A stage could not do its job; ``str()`` is '<stage>: <reason>'."""

    def __init__(self, stage: str, reason: str):
        super().__init__(f"{stage}: {reason}")
        self.stage, self.reason = stage, reason


class PickCancelled(StageFailure):
    def __init__(self, stage: str):
        super().__init__(stage, "cancelled")


@dataclass
class PickSteps:
    """The work behind each stage. Any exception a step raises fails its stage with that message."""

    parse: Callable[[str], Any]  # command -> parsed (has .phrase)
    detect: Callable[[str], list[Detection]]  # phrase -> detections above threshold (best first)
    # -> camera-frame objects aligned with the detections (None: not localised), and the reasons for the Nones
    localise: Callable[[list[Detection]], tuple[list[Optional[Object3D]], list[str]]]
    # parsed, detections, their objects, the reference's detections ("next to the X") -> chosen index
    select: Callable[[Any, list[Detection], list[Optional[Object3D]], list[Detection]], int]
    plan: Callable[[Object3D, list[Object3D]], Any]  # target, obstacles (robot base frame) -> plan
    rerank: Optional[Callable[[str, list[Detection]], list[float]]] = None  # phrase, detections -> scores
    execute: Optional[Callable[[Any, int], "Execution"]] = None  # plan, chosen index -> what happened
    verify: Optional[Callable[[], str]] = None  # -> the VLM's answer
    # True: a reference ("next to the X") that is not detected is left to select (e.g. a VLM fallback)
    references_optional: bool = False
    # takes the one moment (images, camera pose) every later stage works on -> a description of it
    snapshot: Optional[Callable[[], str]] = None


@dataclass
class Execution:
    """What executing a plan did: whether the object rose with the gripper, how far, the executor's words."""

    lifted: bool
    lift_height: float  # metres
    report: str = ""
    measured_object: str = ""  # the executor's name of the object it measured

    def __str__(self) -> str:
        return self.report or f"{'lifted' if self.lifted else 'not lifted'} ({self.lift_height * 1000:.0f} mm)"


@dataclass
class PickResult:
    success: bool = False
    message: str = ""
    failed_stage: str = ""
    parsed: Any = None
    detections: list[Detection] = field(default_factory=list)
    objects: list[Optional[Object3D]] = field(default_factory=list)  # camera frame, aligned with detections
    rejected: list[str] = field(default_factory=list)  # why some detections were not localised
    references: list[Detection] = field(default_factory=list)  # detections of "next to the X"'s X
    chosen: int = -1
    target: Optional[Object3D] = None  # chosen object in the robot base frame
    plan: Any = None
    execution: Optional[Execution] = None
    verify_answer: str = ""
    stage_times: dict[str, float] = field(default_factory=dict)  # seconds per stage, in the order they ran


def run_pick(command: str, steps: PickSteps, camera_in_base, execute: bool = False,
             verify: bool = False, on_stage: Callable[[str, str], None] = lambda stage, detail: None,
             cancelled: Callable[[], bool] = lambda: False) -> PickResult:
    """Run the stages in order; never raises for a stage's failure (it is reported in the result).

    camera_in_base: the camera's 4x4 pose in the robot base frame, or a function returning it
    (called once the frame being used is known, e.g. to look it up in TF).
    """
    result = PickResult()
    try:
        _run_stages(command, steps, camera_in_base, execute, verify, on_stage, cancelled, result)
        result.success = True
        result.message = _success_message(result)
    except StageFailure as failure:
        result.success, result.failed_stage, result.message = False, failure.stage, str(failure)
    return result


def _run_stages(command, steps, camera_in_base, execute, verify, on_stage, cancelled, result) -> None:
    def stage(name: str, detail: str, work: Callable[[], Any]) -> Any:
        if cancelled():
            raise PickCancelled(name)
        on_stage(name, detail)
        started = time.monotonic()
        try:
            return work()
        except StageFailure:
            raise
        except Exception as error:  # noqa: BLE001 - reported with the stage that failed
            raise StageFailure(name, str(error) or type(error).__name__) from error
        finally:
            # a stage can run twice (localising: estimate, then choose): report its total
            result.stage_times[name] = result.stage_times.get(name, 0.0) + time.monotonic() - started

    if steps.snapshot is not None:
        stage("snapshot", "colour + depth + camera_info", steps.snapshot)
    result.parsed = stage("parsing", command, lambda: steps.parse(command))
    phrase = result.parsed.phrase
    result.detections = stage("detecting", f"'{phrase}'", lambda: _require_detections(steps.detect(phrase), phrase))
    reference = getattr(getattr(result.parsed, "selector", None), "reference", "")
    if reference:
        result.references = stage("detecting", f"reference '{reference}'",
                                  lambda: _reference_detections(steps, reference))
    if steps.rerank is not None:
        stage("re-ranking", f"{len(result.detections)} candidate(s) against '{command}'",
              lambda: _rerank(steps.rerank, phrase, result.detections))
    result.objects, result.rejected = stage("localising", f"{len(result.detections)} candidate(s)",
                           lambda: steps.localise(result.detections))
    result.chosen = stage("localising", "choosing", lambda: _choose(steps, result))
    camera = camera_in_base() if callable(camera_in_base) else camera_in_base
    result.target = object_in_base(result.objects[result.chosen], camera)
    others = [object_in_base(o, camera) for i, o in enumerate(result.objects) if i != result.chosen and o]
    result.plan = stage("planning", f"'{result.target.label}' at {np.round(result.target.position, 3).tolist()}",
                        lambda: steps.plan(result.target, others))
    if execute and steps.execute is not None:
        result.execution = stage("executing", "trajectory, close, lift", lambda: steps.execute(result.plan,
                                                                                               result.chosen))
    if verify and steps.verify is not None:
        result.verify_answer = stage("verifying", "asking the VLM", steps.verify)


def _require_detections(detections: list[Detection], phrase: str) -> list[Detection]:
    if not detections:
        raise StageFailure("detecting", f"nothing matching '{phrase}' was detected")
    return detections


def _reference_detections(steps: PickSteps, reference: str) -> list[Detection]:
    try:
        return _require_detections(steps.detect(reference), reference)
    except StageFailure:
        if steps.references_optional:
            return []
        raise


def _rerank(rerank, phrase: str, detections: list[Detection]) -> None:
    scores = rerank(phrase, detections)
    if len(scores) != len(detections):
        raise StageFailure("re-ranking", f"got {len(scores)} scores for {len(detections)} candidates")
    for detection, score in zip(detections, scores):
        detection.score = float(np.sqrt(max(detection.score, 0.0) * max(float(score), 0.0)))  # geometric mean
    detections.sort(key=lambda detection: detection.score, reverse=True)


def _choose(steps: PickSteps, result: PickResult) -> int:
    if not any(obj is not None for obj in result.objects):
        reasons = "; ".join(result.rejected)
        raise StageFailure("localising", "no candidate has enough valid depth" + (f" ({reasons})" if reasons else ""))
    index = steps.select(result.parsed, result.detections, result.objects, result.references)
    if result.objects[index] is None:
        raise StageFailure("localising", f"the chosen '{result.detections[index].label}' has no valid depth")
    return index


def _success_message(result: PickResult) -> str:
    target = result.target
    message = f"planned a grasp of '{target.label}' at {np.round(target.position, 3).tolist()} (base frame)"
    if result.execution is not None:
        message += f"; executed: {result.execution}"
    if result.verify_answer:
        message += f"; verify: {result.verify_answer}"
    return message
