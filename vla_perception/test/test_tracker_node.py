"""tracker_node as its own process over DDS: a scripted sequence of frames and late detections.

Frames are synthetic (test/synthetic_scene.py: two textured patches crossing, so the true
boxes come from the script); detections are the true boxes, published three frames after the
frame they belong to, as a slow detector would. The test checks what a user of ~/tracks sees.
"""
import time

import pytest
from ros_harness import NodeProcess, RosClient, wait_for, write_params
from synthetic_scene import Patch, detections_for, render

from vla_perception.bridge import vision
from vla_perception.bridge.image import cv2_to_imgmsg

RED = Patch("red", "cup", (230, 40, 40), (40, 40), seed=1)
BLUE = Patch("blue", "cup", (40, 60, 230), (40, 40), seed=2)
FPS, FRAMES, DETECT_EVERY, LATENCY_FRAMES = 30.0, 60, 10, 3
BASE = 100.0
# Detections and frames travel on two topics, so the first detection (sent after frame 3's tracks)
# may reach the tracker after frame 4: it must be applied by this frame at the latest.
FIRST_TRACKED_BY = LATENCY_FRAMES + 3


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


def publishers(client):
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from vla_perception_interfaces.msg import Detection2DArray

    images = client.node.create_publisher(Image, "/tt/image", qos_profile_sensor_data)
    detections = client.node.create_publisher(Detection2DArray, "/tt/detections", QoSProfile(depth=10))
    info = client.node.create_publisher(CameraInfo, "/tt/camera_info", qos_profile_sensor_data)
    wait_for(lambda: images.get_subscription_count() and detections.get_subscription_count(), 20.0,
             "tracker_node subscribing")
    return images, detections, info


def frame_msg(k, placements=None):
    msg = cv2_to_imgmsg(render(placements or [(p, positions(k)[p.name]) for p in (BLUE, RED)])[0], "rgb8")
    msg.header.stamp, msg.header.frame_id = _stamp(BASE + k / FPS), "camera"
    return msg


def play(client, node):
    """Publish the scripted sequence frame by frame, each once the previous one's tracks came back.

    Lock-step makes the script's content, not this machine's load, decide what the tracker sees;
    detections go out three frames after their own frame, and one stale frame after frame 30.
    """
    from rclpy.duration import Duration
    from rclpy.qos import QoSProfile
    from visualization_msgs.msg import MarkerArray

    from vla_perception.bridge.messages import detections_to_msg
    from vla_perception_interfaces.msg import Detection2DArray

    tracks = client.collect(Detection2DArray, "/tracker_node/tracks", QoSProfile(depth=100), publishers=1)
    markers = client.collect(MarkerArray, "/tracker_node/markers", QoSProfile(depth=100), publishers=1)
    vision_tracks = []
    if vision.available():
        from vision_msgs.msg import Detection2DArray as VisionDetection2DArray

        vision_tracks = client.collect(VisionDetection2DArray, "/tracker_node/tracks_2d", QoSProfile(depth=100),
                                       publishers=1)
    images, detections, info = publishers(client)
    truth, headers = {}, {}
    for k in range(FRAMES):
        msg = frame_msg(k)
        truth[k], headers[k] = render([(p, positions(k)[p.name]) for p in (BLUE, RED)])[1], msg.header
        info.publish(_camera_info())

        images.publish(msg)
        wait_for(lambda: answered(tracks, k, images, msg), 20.0, f"tracks of frame {k}\n{node.output()[-2000:]}")
        if k == 30:  # a stale frame (older stamp) must be ignored, not tracked
            images.publish(frame_msg(5, [(RED, (0, 0))]))
            wait_for(lambda: "frame older than the last one ignored" in node.output(), 10.0, "the stale frame")
        j = k - LATENCY_FRAMES
        if j >= 0 and j % DETECT_EVERY == 0:
            detections.publish(detections_to_msg(detections_for(truth[j], [BLUE, RED]), headers[j], (320, 240),
                                                 "cup ."))
            # reliable, so the tracker's reader has it before the next frame goes out; its executor
            # may still take that frame first, which the test allows (FIRST_TRACKED_BY)
            detections.wait_for_all_acked(Duration(seconds=5.0))
    return tracks, markers, truth, vision_tracks


def answered(tracks, k, images, msg, resend_after=0.5) -> bool:
    """Whether frame k's tracks arrived; resends the frame now and then (best effort may lose it)."""
    if any(_frame(m) == k for m in tracks):
        return True
    now = time.monotonic()
    if now - answered.sent.get(k, now) > resend_after:
        images.publish(msg)  # a duplicate that does arrive is ignored as not newer
        answered.sent[k] = now
    answered.sent.setdefault(k, now)
    return False


answered.sent = {}


def _frame(msg):
    return int(round((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9 - BASE) * FPS))


@pytest.fixture(scope="module")
def crossing(tracker):
    node, client = tracker
    return play(client, node)


def test_ids_stay_with_their_objects_through_a_crossing(crossing):
    tracks, markers, truth, _ = crossing
    from vla_perception.bridge.messages import box_from_msg

    ids = {"red": set(), "blue": set()}
    frames = [_frame(m) for m in tracks]
    assert frames == sorted(set(frames)) and set(frames) == set(range(FRAMES)), "one tracks message per frame"
    # the first detection (of frame 0) is sent after frame 3; from the first frame that has tracks
    # (frame 4, or a little later: FIRST_TRACKED_BY) on, every frame where the two are apart
    # (neither hides the other) has both, each with its own id
    first = next(i for i, msg in enumerate(tracks) if msg.detections)
    assert LATENCY_FRAMES < _frame(tracks[first]) <= FIRST_TRACKED_BY, [len(m.detections) for m in tracks]
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
    texts = {m.text for array in markers for m in array.markers if m.text}
    assert {f"#{i} cup" for i in ids["red"] | ids["blue"]} <= texts


def test_vision_msgs_tracks_2d_carry_the_track_ids(crossing):
    """vision_msgs defines Detection2D.id as what stays with an object across messages: the track id."""
    if not vision.available():
        pytest.skip("vision_msgs is not installed (scripts/install_ros2_tools.sh installs it)")
    tracks, _, _, vision_tracks = crossing
    wait_for(lambda: len(vision_tracks) >= len(tracks), 10.0, "a ~/tracks_2d message per ~/tracks message")
    by_stamp = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in vision_tracks}
    tracked = 0
    for ours in tracks:
        theirs = by_stamp[(ours.header.stamp.sec, ours.header.stamp.nanosec)]
        assert [d.id for d in theirs.detections] == [str(d.track_id) for d in ours.detections]
        assert [d.results[0].hypothesis.class_id for d in theirs.detections] == [d.label for d in ours.detections]
        tracked += len(ours.detections)
    assert tracked > 0 and all(d.id != "0" for m in vision_tracks for d in m.detections)


def test_an_empty_prompt_with_no_detections_keeps_the_tracks(crossing, tracker):
    """Runs after the crossing: the tracker holds two tracks; an empty-prompt result must not drop them."""
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image

    from vla_perception_interfaces.msg import Detection2DArray

    node, client = tracker
    tracks = client.collect(Detection2DArray, "/tracker_node/tracks", QoSProfile(depth=100), publishers=1)
    images, detections, _ = publishers(client)
    detections.publish(Detection2DArray(header=Image().header, prompt=""))
    images.publish(frame_msg(FRAMES))
    wait_for(lambda: any(_frame(m) == FRAMES for m in tracks), 10.0, f"tracks\n{node.output()[-2000:]}")
    assert len(next(m for m in tracks if _frame(m) == FRAMES).detections) == 2


def test_a_burst_faster_than_the_tracker_is_skipped_through_not_queued(crossing, tracker):
    """Rate under load: frames arriving faster than it tracks make it jump to the newest, never lag behind.

    (The rate it reaches is measured by bench/bench_tracking.py.)
    """
    from rclpy.qos import QoSProfile

    from vla_perception_interfaces.msg import Detection2DArray

    node, client = tracker
    tracks = client.collect(Detection2DArray, "/tracker_node/tracks", QoSProfile(depth=200), publishers=1)
    images, _, _ = publishers(client)
    burst = [frame_msg(k) for k in range(FRAMES + 1, FRAMES + 121)]
    for msg in burst:  # 120 frames as fast as this process can send them
        images.publish(msg)
    last = FRAMES + 120

    wait_for(lambda: answered(tracks, last, images, burst[-1]), 20.0,
             f"the burst's last frame\n{node.output()[-2000:]}")
    frames = [_frame(m) for m in tracks]
    assert frames == sorted(set(frames)) and frames[-1] == last
