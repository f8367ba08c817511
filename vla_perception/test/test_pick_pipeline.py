"""Stage order, feedback, cancellation and failure reporting of the ROS-free pick pipeline.

The steps here are small deterministic functions (the pipeline's contract is 'call these
in order and report'); the real detector, pose estimator and planner are exercised in
the end-to-end tests.
"""
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_perception.core.pick_pipeline import PickSteps, object_in_base, run_pick
from vla_perception.core.types import Box2D, Detection, Object3D


def cube(label, x, score=0.5):
    return Object3D(label, score, np.array([x, 0.0, 1.0]), np.array([0.0, 0.0, 0.0, 1.0]), np.full(3, 0.05))


def make_steps(detections=None, objects=None, rejected=None, **overrides):
    detections = detections if detections is not None else [
        Detection("mug", 0.6, Box2D(0, 0, 10, 10)), Detection("mug", 0.4, Box2D(20, 0, 30, 10))]
    objects = objects if objects is not None else [cube("mug", -0.1), cube("mug", 0.1)]
    planned = []
    steps = PickSteps(
        parse=lambda command: SimpleNamespace(phrase=command.replace("pick up the ", "")),
        detect=lambda phrase: list(detections),
        localise=lambda found: (objects[: len(found)], rejected or []),
        select=lambda parsed, found, located, references: 1,
        plan=lambda target, others: planned.append((target, others)) or "plan",
        execute=lambda plan, index: f"lifted #{index}",
        verify=lambda: "yes",
    )
    for name, value in overrides.items():
        setattr(steps, name, value)
    return steps, planned


def test_stages_run_in_order_and_the_chosen_object_is_planned_in_the_base_frame():
    steps, planned = make_steps()
    stages = []
    camera_in_base = np.eye(4)
    camera_in_base[:3, 3] = [1.0, 2.0, 3.0]
    result = run_pick("pick up the mug", steps, camera_in_base, execute=True, verify=True,
                      on_stage=lambda stage, detail: stages.append(stage))
    assert result.success, result.message
    assert stages == ["parsing", "detecting", "localising", "localising", "planning", "executing", "verifying"]
    assert result.chosen == 1
    target, others = planned[0]
    np.testing.assert_allclose(target.position, [1.1, 2.0, 4.0])
    assert [o.position[0] for o in others] == pytest.approx([0.9])  # the other mug is an obstacle
    assert (result.plan, result.execution, result.verify_answer) == ("plan", "lifted #1", "yes")
    assert set(result.stage_times) == {"parsing", "detecting", "localising", "planning", "executing", "verifying"}


def test_nothing_detected_fails_the_detecting_stage_naming_the_phrase():
    steps, _ = make_steps(detections=[])
    result = run_pick("pick up the red mug", steps, np.eye(4))
    assert not result.success
    assert result.failed_stage == "detecting"
    assert result.message == "detecting: nothing matching 'red mug' was detected"


def test_a_step_error_is_reported_with_its_stage():
    def broken_planner(target, others):
        raise RuntimeError("IK found no solution for the pre-grasp pose")

    steps, _ = make_steps(plan=broken_planner)
    result = run_pick("pick up the mug", steps, np.eye(4))
    assert (result.success, result.failed_stage) == (False, "planning")
    assert result.message == "planning: IK found no solution for the pre-grasp pose"


def test_cancellation_stops_before_the_next_stage():
    steps, planned = make_steps()
    seen = []
    result = run_pick("pick up the mug", steps, np.eye(4), on_stage=lambda stage, detail: seen.append(stage),
                      cancelled=lambda: "localising" in seen)
    assert (result.success, result.failed_stage, result.message) == (False, "localising", "localising: cancelled")
    assert planned == []


def test_no_valid_depth_anywhere_fails_localising_with_the_reasons():
    steps, _ = make_steps(objects=[None, None], rejected=["mug: not enough valid depth (12 points)"])
    result = run_pick("pick up the mug", steps, np.eye(4))
    assert result.failed_stage == "localising"
    assert "not enough valid depth (12 points)" in result.message


def test_a_reference_object_is_detected_too_and_handed_to_selection():
    seen = {}

    def select(parsed, found, located, references):
        seen["references"] = [d.label for d in references]
        return 0

    steps, _ = make_steps(select=select, detect=lambda phrase: [Detection(phrase, 0.5, Box2D(0, 0, 10, 10))])
    steps.parse = lambda command: SimpleNamespace(phrase="mug", selector=SimpleNamespace(reference="plate"))
    result = run_pick("pick up the mug next to the plate", steps, np.eye(4))
    assert result.success, result.message
    assert seen["references"] == ["plate"]


def test_rerank_combines_scores_and_reorders():
    steps, _ = make_steps(rerank=lambda phrase, found: [0.01, 0.9])
    result = run_pick("pick up the mug", steps, np.eye(4))
    # geometric means: sqrt(0.6*0.01) = 0.077, sqrt(0.4*0.9) = 0.6 -> the second box now ranks first
    assert [round(d.score, 3) for d in result.detections] == [0.6, 0.077]
    assert result.detections[0].box == Box2D(20, 0, 30, 10)


def test_object_in_base_rotates_position_and_orientation():
    # A camera looking down the base x axis: optical z -> base x, optical x -> base -y, optical y -> base -z.
    camera_in_base = np.eye(4)
    camera_in_base[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]])
    camera_in_base[:3, 3] = [0.0, 0.0, 0.5]
    obj = cube("mug", 0.2)  # optical (0.2, 0, 1.0)
    moved = object_in_base(obj, camera_in_base)
    np.testing.assert_allclose(moved.position, [1.0, -0.2, 0.5])
    np.testing.assert_allclose(Rotation.from_quat(moved.orientation).as_matrix(), camera_in_base[:3, :3], atol=1e-12)


def test_the_snapshot_is_taken_first_and_every_later_stage_sees_it():
    taken = []
    steps, _ = make_steps()
    steps.snapshot = lambda: taken.append("frame 7") or "frame 7"
    seen = []
    steps.detect = lambda phrase: seen.append(("detecting", list(taken))) or [
        Detection("mug", 0.6, Box2D(0, 0, 10, 10)), Detection("mug", 0.4, Box2D(20, 0, 30, 10))]
    stages = []
    result = run_pick("pick up the mug", steps, lambda: seen.append(("camera", list(taken))) or np.eye(4),
                      on_stage=lambda stage, detail: stages.append(stage))
    assert result.success, result.message
    assert stages[0] == "snapshot" and taken == ["frame 7"]
    assert seen == [("detecting", ["frame 7"]), ("camera", ["frame 7"])]
    assert list(result.stage_times)[0] == "snapshot"


def test_no_snapshot_fails_its_stage_before_anything_else_runs():
    steps, planned = make_steps()

    def no_frame():
        raise TimeoutError("no synchronised colour + depth + camera_info within 5.0 s")

    steps.snapshot = no_frame
    result = run_pick("pick up the mug", steps, np.eye(4))
    assert not result.success and result.failed_stage == "snapshot"
    assert result.message == "snapshot: no synchronised colour + depth + camera_info within 5.0 s"
    assert planned == [] and result.parsed is None
