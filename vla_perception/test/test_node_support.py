"""The pieces every node stands on: latest-only worker, parameter validation, message mapping."""
import math
import threading
import time

import numpy as np
import pytest

from vla_perception.core.latest_worker import LatestOnlyWorker
from vla_perception.core.parameters import ParamSpec, device_name, in_range, one_of, positive_int, validate
from vla_perception.core.types import Box2D, Detection, Object3D, VlaInputError


def test_worker_processes_only_the_newest_item_while_busy():
    release = threading.Event()
    seen = []

    def slow(item):
        seen.append(item)
        if item == 0:
            release.wait(5)

    worker = LatestOnlyWorker(slow)
    worker.submit(0)
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    for item in range(1, 50):  # arrive while item 0 is still being processed
        worker.submit(item)
    release.set()
    deadline = time.monotonic() + 5
    while worker.processed < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert seen == [0, 49]
    assert worker.dropped == 48


def test_worker_survives_a_failing_item_and_reports_it():
    errors, seen = [], []

    def process(item):
        if item == "bad":
            raise RuntimeError("model exploded")
        seen.append(item)

    worker = LatestOnlyWorker(process, on_error=errors.append)
    worker.submit("bad")
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.submit("good")
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert [str(e) for e in errors] == ["model exploded"]
    assert seen == ["good"]
    assert not worker.alive


SPECS = [
    ParamSpec("threshold", 0.35, "box threshold", in_range(0.0, 1.0)),
    ParamSpec("device", "auto", "torch device", device_name),
    ParamSpec("backend", "grounding_dino", "detector", one_of("grounding_dino", "owlvit")),
    ParamSpec("threads", 2, "cpu threads", positive_int),
]


def test_valid_parameters_pass_through():
    values = {"threshold": 0.5, "device": "cuda:1", "backend": "owlvit", "threads": 4}
    assert validate(SPECS, values) == values


def test_every_bad_parameter_is_named_in_one_error():
    with pytest.raises(VlaInputError) as error:
        validate(SPECS, {"threshold": math.nan, "device": "gpu", "backend": "yolo", "threads": 0})
    message = str(error.value)
    for name in ("threshold=nan", "device='gpu'", "backend='yolo'", "threads=0"):
        assert name in message


def test_messages_round_trip_core_types():
    from std_msgs.msg import Header

    from vla_perception.bridge.messages import (
        box_from_msg, box_to_msg, detections_from_msg, detections_to_msg, object_from_msg, object_to_msg)

    box = Box2D(10.0, 20.0, 50.0, 80.0)
    msg = box_to_msg(box)
    assert (msg.center_x, msg.center_y, msg.size_x, msg.size_y) == (30.0, 50.0, 40.0, 60.0)
    assert box_from_msg(msg) == box

    mask = np.zeros((6, 8), bool)
    mask[1:3, 2:5] = True
    detections = [Detection("cup", 0.5, box, phrase="red cup", mask=mask), Detection("duck", 0.25, box)]
    array = detections_to_msg(detections, Header(frame_id="cam"), (8, 6), prompt="cup . duck .",
                              inference_time=0.5)
    assert array.header.frame_id == "cam" and [d.id for d in array.detections] == ["0", "1"]
    assert (array.image_width, array.image_height) == (8, 6)
    back = detections_from_msg(array)
    assert [(d.label, d.phrase, d.score) for d in back] == [("cup", "red cup", 0.5), ("duck", "duck", 0.25)]
    np.testing.assert_array_equal(back[0].mask, mask)
    assert back[1].mask is None

    obj = Object3D("cup", 0.5, np.array([0.1, -0.2, 0.8]), np.array([0.0, 0.0, 0.6, 0.8]),
                   np.array([0.08, 0.1, 0.06]), num_points=321, confidence=0.75, box=box)
    restored = object_from_msg(object_to_msg(obj, 3))
    np.testing.assert_allclose(restored.position, obj.position)
    np.testing.assert_allclose(restored.orientation, obj.orientation)
    np.testing.assert_allclose(restored.size, obj.size)
    assert (restored.num_points, restored.confidence, restored.box) == (321, 0.75, box)
