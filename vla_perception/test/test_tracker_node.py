"""tracker_node as its own process over DDS: a scripted sequence of frames and late detections.

Frames are synthetic (test/synthetic_scene.py: two textured patches crossing, so the true
boxes come from the script); detections are the true boxes, published three frames after the
frame they belong to, as a slow detector would. The test checks what a user of ~/tracks sees.
"""
import time

import pytest
from ros_harness import NodeProcess, RosClient, wait_for, write_params
from synthetic_scene import Patch, detections_for, render

from vla_perception.bridge.image import cv2_to_imgmsg

RED = Patch("red", "cup", (230, 40, 40), (40, 40), seed=1)
BLUE = Patch("blue", "cup", (40, 60, 230), (40, 40), seed=2)
FPS, FRAMES, DETECT_EVERY, LATENCY_FRAMES = 30.0, 60, 10, 3
BASE = 100.0


def positions(k):
    return {"red": (40 + 3 * k, 100), "blue": (240 - 3 * k, 106)}


@pytest.fixture(scope="module")
def tracker(tmp_path_factory):
    params = write_params("tracker_node", {"autostart": True}, str(tmp_path_factory.mktemp("params")))
    remaps = ["-r", "image:=/tt/image", "-r", "detections:=/tt/detections", "-r", "camera_info:=/tt/camera_info"]
    with NodeProcess("vla_perception.nodes.tracker_node", ["--params-file", params, *remaps]) as node, \
            RosClient("tracker_test") as client:
        yield node, client


def _stamp(seconds):
    from builtin_interfaces.msg import Time

    return Time(sec=int(seconds), nanosec=int(round((seconds - int(seconds)) * 1e9)))


def _camera_info():
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=320, height=240)
    info.k = [300.0, 0.0, 160.0, 0.0, 300.0, 120.0, 0.0, 0.0, 1.0]
    return info


def play(client, node):
    """Publish the scripted sequence at 30 Hz (one out-of-order frame after frame 30); return the tracks."""
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image
    from visualization_msgs.msg import MarkerArray

    from vla_perception.bridge.messages import detections_to_msg
    from vla_perception_interfaces.msg import Detection2DArray

    tracks = client.collect(Detection2DArray, "/tracker_node/tracks", QoSProfile(depth=100))
    markers = client.collect(MarkerArray, "/tracker_node/markers", QoSProfile(depth=100))
    images = client.node.create_publisher(Image, "/tt/image", qos_profile_sensor_data)
    detections = client.node.create_publisher(Detection2DArray, "/tt/detections", QoSProfile(depth=10))
    info = client.node.create_publisher(CameraInfo, "/tt/camera_info", qos_profile_sensor_data)
    wait_for(lambda: images.get_subscription_count() and detections.get_subscription_count(), 20.0,
             f"tracker_node subscribing\n{node.output()[-2000:]}")
    truth, headers = {}, {}
    start = time.monotonic()
    for k in range(FRAMES):
        time.sleep(max(0.0, start + k / FPS - time.monotonic()))
        image, truth[k] = render([(p, positions(k)[p.name]) for p in (BLUE, RED)])
        msg = cv2_to_imgmsg(image, "rgb8")
        msg.header.stamp, msg.header.frame_id = _stamp(BASE + k / FPS), "camera"
        headers[k] = msg.header
        images.publish(msg)
        info.publish(_camera_info())
        if k == 30:  # a stale frame (older stamp) must be ignored, not tracked
            old = cv2_to_imgmsg(render([(RED, (0, 0))])[0], "rgb8")
            old.header.stamp = _stamp(BASE + 5 / FPS)
            images.publish(old)
        j = k - LATENCY_FRAMES
        if j >= 0 and j % DETECT_EVERY == 0:
            detections.publish(detections_to_msg(detections_for(truth[j], [BLUE, RED]), headers[j], (320, 240),
                                                 "cup ."))
    wait_for(lambda: any(_frame(m) == FRAMES - 1 for m in tracks), 10.0, "the last frame's tracks")
    return tracks, markers, truth


def core_seconds_per_frame(truth):
    """Mean time of HybridTracker.add_frame on the test's frames, with the test's detections."""
    from vla_perception.core.tracking import HybridTracker

    tracker, spent = HybridTracker(), 0.0
    for k in range(FRAMES):
        image = render([(p, positions(k)[p.name]) for p in (BLUE, RED)])[0]
        started = time.perf_counter()
        tracker.add_frame(image, k / FPS)
        spent += time.perf_counter() - started
        if k % DETECT_EVERY == 0:
            tracker.add_detections(detections_for(truth[k], [BLUE, RED]), k / FPS)
    return spent / FRAMES


def _frame(msg):
    return int(round((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9 - BASE) * FPS))


def test_ids_stay_with_their_objects_through_a_crossing(tracker):
    node, client = tracker
    tracks, markers, truth = play(client, node)
    from vla_perception.bridge.messages import box_from_msg

    ids = {"red": set(), "blue": set()}
    assert all(0 <= _frame(m) < FRAMES for m in tracks), "tracks for a frame that was never sent in order"
    # the first detection (of frame 0) is sent after frame 3; from the first frame with tracks on,
    # every frame where the two are apart (neither hides the other) must have both, each with its id
    first = next(k for k, m in enumerate(tracks) if m.detections)
    assert _frame(tracks[first]) < FRAMES // 2
    for msg in tracks[first:]:
        k = _frame(msg)
        if truth[k]["red"].iou(truth[k]["blue"]) > 0.0:
            continue
        for name, box in truth[k].items():
            best = max(msg.detections, key=lambda d: box_from_msg(d.bbox).iou(box))
            assert box_from_msg(best.bbox).iou(box) > 0.5, f"frame {k}: {name} not covered"
            ids[name].add(best.track_id)
            assert best.label == "cup" and best.detection_age >= 0.0
    assert len(ids["red"]) == 1 and len(ids["blue"]) == 1 and ids["red"] != ids["blue"], ids
    assert all(i > 0 for i in ids["red"] | ids["blue"])
    # rate under load: the node answers at least half the frames the tracking itself could afford
    # here and now (measured on the same frames in this process); a slower node has a backlog or overhead
    answered = {_frame(m) for m in tracks}
    affordable = min(1.0, (1.0 / FPS) / core_seconds_per_frame(truth))
    assert len(answered) >= 0.5 * affordable * FRAMES, (
        f"tracks for {len(answered)} of {FRAMES} frames; the core alone affords {affordable:.0%} of 30 Hz\n"
        f"{node.output()[-2000:]}")
    texts = {m.text for array in markers for m in array.markers if m.text}
    assert {f"#{i} cup" for i in ids["red"] | ids["blue"]} <= texts
    assert "frame older than the last one ignored" in node.output()


def test_an_empty_prompt_with_no_detections_keeps_the_tracks(tracker):
    """Runs after the crossing: the tracker holds two tracks; an empty-prompt result must not drop them."""
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from vla_perception_interfaces.msg import Detection2DArray

    node, client = tracker
    tracks = client.collect(Detection2DArray, "/tracker_node/tracks", QoSProfile(depth=100))
    images = client.node.create_publisher(Image, "/tt/image", qos_profile_sensor_data)
    detections = client.node.create_publisher(Detection2DArray, "/tt/detections", QoSProfile(depth=10))
    wait_for(lambda: images.get_subscription_count() and detections.get_subscription_count(), 20.0,
             "tracker_node subscribing")
    k = FRAMES
    image = render([(p, positions(k)[p.name]) for p in (BLUE, RED)])[0]
    detections.publish(Detection2DArray(header=Image().header, prompt=""))
    msg = cv2_to_imgmsg(image, "rgb8")
    msg.header.stamp = _stamp(BASE + k / FPS)
    images.publish(msg)
    wait_for(lambda: any(_frame(m) == k for m in tracks), 10.0, f"tracks of frame {k}\n{node.output()[-2000:]}")
    assert node.alive()
    assert len(next(m for m in tracks if _frame(m) == k).detections) == 2
