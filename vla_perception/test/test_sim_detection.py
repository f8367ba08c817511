"""The detector's simulation backend (sim/detection.py): true boxes made to look like a detector's output."""
import numpy as np

from vla_perception.core.types import Box2D
from vla_perception.sim.detection import SimDetectorNoise, simulated_detections

OBJECTS = [("red mug", Box2D(100, 100, 160, 170)), ("blue mug", Box2D(300, 120, 350, 180)),
           ("yellow duck", Box2D(400, 300, 470, 360))]
IMAGE = (640, 480)


def detect(seed, phrases=("red mug",), noise=SimDetectorNoise()):
    return simulated_detections(OBJECTS, list(phrases), IMAGE, np.random.default_rng(seed), noise)


def test_the_named_object_is_found_near_its_true_box_and_above_the_partial_match():
    for seed in range(50):
        found = detect(seed)
        best = found[0]
        assert best.label == "red mug" and best.box.iou(OBJECTS[0][1]) > 0.6, seed
        partial = [d for d in found if d.box.iou(OBJECTS[1][1]) > 0.5]
        assert all(d.score < best.score for d in partial), seed


def test_boxes_are_jittered_not_copied():
    boxes = {tuple(np.round(detect(seed)[0].box.as_array(), 3)) for seed in range(10)}
    assert len(boxes) == 10 and tuple(OBJECTS[0][1].as_array()) not in boxes


def test_distractors_and_confusions_come_with_low_scores():
    noise = SimDetectorNoise(confusion_rate=1.0, distractors=3)
    for seed in range(20):
        found = detect(seed, noise=noise)
        false = [d for d in found if d.box.iou(OBJECTS[0][1]) < 0.5 and d.box.iou(OBJECTS[1][1]) < 0.5]
        assert len(false) >= 3, seed  # 3 distractors + the duck reported as a mug
        assert all(noise.false_score[0] <= d.score <= noise.false_score[1] for d in false), seed


def test_same_frame_same_answer_other_frame_other_answer():
    assert detect(7) == detect(7)
    assert detect(7) != detect(8)


def test_boxes_stay_inside_the_image():
    for seed in range(30):
        for d in detect(seed, phrases=("duck", "mug")):
            assert 0 <= d.box.x_min < d.box.x_max <= IMAGE[0] and 0 <= d.box.y_min < d.box.y_max <= IMAGE[1]
