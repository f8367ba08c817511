"""Hybrid tracker core (no ROS): flow propagation, ByteTrack-style association, bad input.

Scenes are synthetic (test/synthetic_scene.py): textured patches moved by known amounts, so
the expected boxes come from the scene, never from the tracker.
"""
import numpy as np
import pytest
from synthetic_scene import Patch, detections_for, render

from vla_perception.core.tracking import FlowPropagator, HybridTracker, TrackerParams
from vla_perception.core.tracking.association import appearance_matrix, assign, colour_histogram, iou_matrix
from vla_perception.core.types import Box2D

RED = Patch("red", "cup", (230, 40, 40), (40, 40), seed=1)
BLUE = Patch("blue", "cup", (40, 60, 230), (40, 40), seed=2)
GREEN = Patch("green", "box", (40, 200, 60), (60, 50), seed=3)
DT = 1.0 / 30


def ids_by_name(tracker, boxes):
    """Which track id covers each true box best (IoU > 0.5), by object name."""
    found = {}
    for name, box in boxes.items():
        best = max(tracker.tracked_objects(), key=lambda t: t.box.iou(box), default=None)
        if best is not None and best.box.iou(box) > 0.5:
            found[name] = best.track_id
    return found


def play(tracker, positions_at, patches, frames, detect_every=15, skip_at=lambda k: (), start=0):
    """Run frames start..start+frames-1; detections (from ground truth) on every detect_every-th frame."""
    boxes = {}
    for k in range(start, start + frames):
        image, boxes = render([(p, positions_at(k)[p.name]) for p in patches if p.name in positions_at(k)])
        tracker.add_frame(image, k * DT)
        if k % detect_every == 0:
            tracker.add_detections(detections_for(boxes, patches, skip=skip_at(k)), k * DT, (320, 240))
    return boxes


# ---------------------------------------------------------------------- building blocks
def test_flow_follows_a_shifted_patch():
    before, boxes = render([(GREEN, (100, 80))])
    after, moved = render([(GREEN, (106, 77))])
    gray = [np.ascontiguousarray(im.mean(axis=2).astype(np.uint8)) for im in (before, after)]
    result = FlowPropagator().propagate(gray[0], gray[1], [boxes["green"]])[0]
    assert result.moved and result.points >= 4
    assert result.box.center == pytest.approx(moved["green"].center, abs=0.5)
    assert result.box.width == pytest.approx(60, abs=1.5)


def test_flow_keeps_a_box_without_texture_still():
    flat = np.full((240, 320), 90, np.uint8)
    box = Box2D(100, 100, 140, 140)
    result = FlowPropagator().propagate(flat, flat.copy(), [box])[0]
    assert result.box == box


def test_iou_and_assignment():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    b = np.array([[20, 20, 30, 30], [5, 0, 15, 10]], float)
    iou = iou_matrix(a, b)
    assert iou[1, 0] == pytest.approx(1.0) and iou[0, 1] == pytest.approx(50 / 150)
    pairs, rows, cols = assign(iou, 0.5)
    assert pairs == [(1, 0)] and rows == [0] and cols == [1]


def test_appearance_tells_colours_apart():
    image, boxes = render([(RED, (10, 10)), (BLUE, (100, 10))])
    import cv2
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    red, blue = colour_histogram(hsv, boxes["red"]), colour_histogram(hsv, boxes["blue"])
    similarity = appearance_matrix([red], [red, blue])
    assert similarity[0, 0] == pytest.approx(1.0, abs=1e-5) and similarity[0, 1] < 0.3


# ---------------------------------------------------------------------- association edge cases
def test_boxes_follow_motion_between_detections():
    tracker = HybridTracker()
    boxes = play(tracker, lambda k: {"green": (60 + 3 * k, 80 + k)}, [GREEN], frames=45, detect_every=1000)
    (track,) = tracker.tracked_objects()
    assert track.box.iou(boxes["green"]) > 0.85
    assert track.age == pytest.approx(44 * DT)


def test_a_new_object_gets_a_new_id_and_the_old_keeps_its_own():
    tracker = HybridTracker()
    play(tracker, lambda k: {"red": (40, 100)}, [RED], frames=15)
    first = ids_by_name(tracker, {"red": Box2D(40, 100, 80, 140)})
    boxes = play(tracker, lambda k: {"red": (40 + k, 100), "blue": (200, 60)}, [RED, BLUE], frames=31, start=15)
    ids = ids_by_name(tracker, boxes)
    assert ids["red"] == first["red"] and ids["blue"] != ids["red"]


def test_an_object_that_disappears_is_lost_then_forgotten():
    params = TrackerParams(max_misses=1, max_lost_time=1.0)
    tracker = HybridTracker(params)
    play(tracker, lambda k: {"red": (40, 100), "blue": (200, 60)}, [RED, BLUE], frames=15)
    play(tracker, lambda k: {"red": (40, 100)}, [RED, BLUE], frames=31, start=15)  # 2 updates without blue
    assert [t.label for t in tracker.tracked_objects()] == ["cup"]
    assert len(tracker.tracks) == 2  # blue kept (lost) for re-identification
    play(tracker, lambda k: {"red": (40, 100)}, [RED, BLUE], frames=40, start=46)
    assert len(tracker.tracks) == 1


def test_two_crossing_objects_keep_their_ids():
    """Red moves right in front of blue moving left, same label: colour and flow keep them apart."""
    def positions(k):
        return {"blue": (220 - 3 * k, 100), "red": (60 + 3 * k, 104)}

    tracker = HybridTracker()
    start = play(tracker, positions, [BLUE, RED], frames=1)
    before = ids_by_name(tracker, start)
    end = play(tracker, positions, [BLUE, RED], frames=60, start=1, detect_every=10)
    assert ids_by_name(tracker, end) == before
    assert len(set(before.values())) == 2


def test_reidentified_after_occlusion():
    """Blue goes behind the big green box, is missed, lost, and comes back with its old id."""
    def positions(k):
        return {"blue": (40 + 4 * k, 100), "green": (140, 90)}

    big_green = Patch("green", "box", (40, 200, 60), (90, 70), seed=3)
    params = TrackerParams(max_misses=0)
    tracker = HybridTracker(params)
    start = play(tracker, positions, [BLUE, big_green], frames=1)
    blue_id = ids_by_name(tracker, start)["blue"]
    hidden = lambda k: ("blue",) if 20 <= 40 + 4 * k and 40 + 4 * k + 40 <= 250 else ()  # noqa: E731
    end = play(tracker, positions, [BLUE, big_green], frames=50, start=1, detect_every=5, skip_at=hidden)
    assert tracker.counts["lost"] >= 1 and tracker.counts["reidentified"] >= 1
    assert ids_by_name(tracker, end)["blue"] == blue_id


def test_tentative_tracks_are_not_reported_until_confirmed():
    tracker = HybridTracker(TrackerParams(confirm_hits=2))
    play(tracker, lambda k: {"red": (40, 100)}, [RED], frames=1)
    assert tracker.tracked_objects() == []
    play(tracker, lambda k: {"red": (40, 100)}, [RED], frames=16, start=1)
    assert len(tracker.tracked_objects()) == 1


def test_low_score_detection_keeps_a_track_but_does_not_start_one():
    tracker = HybridTracker(TrackerParams(max_misses=0))
    image, boxes = render([(RED, (40, 100))])
    tracker.add_frame(image, 0.0)
    tracker.add_detections(detections_for(boxes, [RED], score=0.2), 0.0)
    assert tracker.tracks == []
    tracker.add_detections(detections_for(boxes, [RED], score=0.8), 0.0)
    tracker.add_frame(image, DT)
    tracker.add_detections(detections_for(boxes, [RED], score=0.2), DT)
    assert len(tracker.tracked_objects()) == 1


# ---------------------------------------------------------------------- bad input
def test_frames_out_of_order_are_ignored():
    tracker = HybridTracker()
    image, boxes = render([(RED, (40, 100))])
    assert tracker.add_frame(image, 1.0)
    tracker.add_detections(detections_for(boxes, [RED]), 1.0)
    assert not tracker.add_frame(render([(RED, (90, 100))])[0], 0.5)
    assert tracker.counts["out_of_order_frames"] == 1
    assert tracker.tracked_objects()[0].box == boxes["red"]


def test_one_frame_stamped_in_the_future_does_not_freeze_the_tracker():
    """Regression (fuzz suite): a frame stamped 2038 made every later frame "out of order" for good."""
    tracker = HybridTracker()
    image, boxes = render([(RED, (40, 100))])
    assert tracker.add_frame(image, 10.0)
    tracker.add_detections(detections_for(boxes, [RED]), 10.0)
    assert tracker.add_frame(image, 2.0**31)
    assert tracker.add_frame(image, 10.0 + DT) and tracker.counts["clock_jumps"] == 1
    assert tracker.tracked_objects() == []  # started over: the old tracks belonged to the other clock
    tracker.add_detections(detections_for(boxes, [RED]), 10.0 + DT)
    (track,) = tracker.tracked_objects()
    assert track.box == boxes["red"] and track.track_id == 2  # ids are never reused


def test_late_detection_is_placed_on_its_own_frame_and_carried_forward():
    tracker = HybridTracker()
    for k in range(40):  # the detector ran on frame 10; its result arrives at frame 39
        image, boxes = render([(GREEN, (40 + 4 * k, 90))])
        tracker.add_frame(image, k * DT)
        if k == 10:
            boxes_at_10 = boxes
    assert tracker.add_detections(detections_for(boxes_at_10, [GREEN]), 10 * DT) == "applied"
    (track,) = tracker.tracked_objects()
    assert track.box.iou(boxes["green"]) > 0.8  # where the object is now, not where it was detected
    assert track.age == pytest.approx(29 * DT)


def test_catch_up_uses_a_bounded_number_of_flow_steps():
    tracker = HybridTracker(TrackerParams(max_catch_up_steps=4))
    for k in range(60):
        tracker.add_frame(render([(GREEN, (40 + 2 * k, 90))])[0], k * DT)
    calls = []
    propagate = tracker.flow.propagate
    tracker.flow.propagate = lambda *a: calls.append(1) or propagate(*a)
    tracker.add_detections(detections_for(render([(GREEN, (40, 90))])[1], [GREEN]), 0.0)
    assert len(calls) == 4


def test_detection_older_than_the_buffer_is_stale_and_one_from_the_future_waits():
    tracker = HybridTracker(TrackerParams(history_time=1.0))
    for k in range(60):
        image, boxes = render([(RED, (40, 100))])
        tracker.add_frame(image, k * DT)
    assert tracker.add_detections(detections_for(boxes, [RED]), 0.0) == "stale"
    assert tracker.tracks == []
    assert tracker.add_detections(detections_for(boxes, [RED]), 70 * DT) == "pending"
    tracker.add_frame(image, 70 * DT)
    assert len(tracker.tracked_objects()) == 1


def test_detection_whose_frame_the_tracker_skipped_goes_on_the_nearest_frame():
    tracker = HybridTracker()
    for stamp in (0.0, 0.5, 1.0):  # a tracker falling behind sees few frames
        image, boxes = render([(RED, (40, 100))])
        tracker.add_frame(image, stamp)
    assert tracker.add_detections(detections_for(boxes, [RED]), 0.3) == "applied"
    assert tracker.counts["inexact_placements"] == 1 and len(tracker.tracked_objects()) == 1


def test_empty_prompt_keeps_tracks_and_a_new_prompt_drops_other_labels():
    tracker = HybridTracker(TrackerParams(max_misses=5))  # the empty results below must not lose tracks
    image, boxes = render([(RED, (40, 100)), (GREEN, (200, 60))])
    tracker.add_frame(image, 0.0)
    tracker.add_detections(detections_for(boxes, [RED, GREEN]), 0.0, prompt="cup . box")
    tracker.add_frame(image, DT)
    tracker.add_detections([], DT, prompt="")
    assert len(tracker.tracked_objects()) == 2  # an empty prompt says nothing about what to drop
    tracker.add_detections([], DT, prompt="cup .")
    assert [t.label for t in tracker.tracked_objects()] == ["cup"]


def test_sudden_image_size_change_rescales_tracks():
    tracker = HybridTracker()
    image, boxes = render([(GREEN, (100, 80))])
    tracker.add_frame(image, 0.0)
    tracker.add_detections(detections_for(boxes, [GREEN]), 0.0)
    big, big_boxes = render([(Patch("green", "box", GREEN.colour, (120, 100), 3), (200, 160))], size=(640, 480))
    tracker.add_frame(big, 1.0)
    assert tracker.counts["size_changes"] == 1 and tracker.image_size == (640, 480)
    (track,) = tracker.tracked_objects()
    assert track.box.iou(big_boxes["green"]) > 0.9
    # a detection made on the old size, arriving late, cannot be placed: its frame is gone
    assert tracker.add_detections(detections_for(boxes, [GREEN]), 0.0, (320, 240)) == "stale"
    # detections on another pixel grid than the frames are scaled into the frames' pixels
    assert tracker.add_detections(detections_for(boxes, [GREEN]), 1.0, (320, 240)) == "applied"
    (track,) = tracker.tracked_objects()
    assert track.box.iou(big_boxes["green"]) > 0.9 and track.age == 0.0


def test_non_rgb_frame_is_refused():
    with pytest.raises(ValueError, match="RGB"):
        HybridTracker().add_frame(np.zeros((10, 10), np.uint8), 0.0)
