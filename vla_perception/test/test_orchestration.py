"""The orchestrator's ROS-free decisions: accepting detections, ground-truth matching, alignment."""
import numpy as np
import pytest

from vla_perception.core.orchestration import (
    PARAMS,
    Settings,
    accept_detections,
    align_objects,
    arm_joints_from_state,
    match_ground_truth,
    rerank_labels,
)
from vla_perception.core.parameters import validate
from vla_perception.core.pick_pipeline import StageFailure
from vla_perception.core.types import Box2D, Detection, Object3D, VlaInputError

BOX = Box2D(0, 0, 10, 10)


def test_accepts_candidates_above_threshold_best_first():
    found = accept_detections("cup", [Detection("cup", 0.4, BOX), Detection("cup", 0.9, BOX),
                                      Detection("cup", 0.1, BOX)], 0.35)
    assert [d.score for d in found] == [0.9, 0.4]


def test_failure_names_the_best_candidate_below_threshold():
    with pytest.raises(StageFailure) as failure:
        accept_detections("red cup", [Detection("cup", 0.22, BOX), Detection("bottle", 0.1, BOX)], 0.35)
    assert str(failure.value) == "detecting: no 'red cup' above threshold 0.35; best was 'cup' at 0.22"


def test_ground_truth_matching_prefers_labels_with_more_of_the_phrase():
    truth = [Detection("blue mug", 1.0, BOX, phrase="blue_mug"), Detection("red mug", 1.0, BOX, phrase="red_mug"),
             Detection("yellow duck", 1.0, BOX, phrase="yellow_duck")]
    found = match_ground_truth("red mug", truth)
    assert [(d.phrase, d.score) for d in found] == [("red_mug", 1.0), ("blue_mug", 0.5)]
    with pytest.raises(StageFailure, match="nothing matching 'green bottle'"):
        match_ground_truth("green bottle", truth)


def test_rerank_labels_put_the_phrase_first():
    labels = rerank_labels("red mug", [Detection("mug", 0.5, BOX), Detection("red mug", 0.5, BOX)])
    assert labels == ["red mug", "mug", "an empty table"]


def test_objects_are_aligned_to_detections_by_id():
    obj = Object3D("mug", 0.5, np.zeros(3), np.array([0, 0, 0, 1.0]), np.ones(3))
    slots = align_objects(3, [("2", obj), ("0", obj), ("9", obj)])
    assert [s is obj for s in slots] == [True, False, True]


def test_arm_joints_are_read_in_panda_order():
    names = [f"panda_joint{i}" for i in (7, 6, 5, 4, 3, 2, 1)] + ["panda_finger_joint1"]
    assert arm_joints_from_state(names, [7, 6, 5, 4, 3, 2, 1, 0.04]) == [1, 2, 3, 4, 5, 6, 7]
    assert arm_joints_from_state(names[:3], [1, 2, 3]) is None


def test_settings_validate_the_camera_pose_and_build_the_transform():
    values = {spec.name: spec.default for spec in PARAMS}
    settings = Settings(**validate(PARAMS, values))
    transform = settings.camera_in_base()
    np.testing.assert_allclose(transform[:3, 3], values["camera_pose"][:3])
    np.testing.assert_allclose(transform[:3, :3] @ transform[:3, :3].T, np.eye(3), atol=1e-9)
    with pytest.raises(VlaInputError, match="norm 1"):
        validate(PARAMS, {**values, "camera_pose": [0, 0, 0, 0, 0, 0, 2.0]})
