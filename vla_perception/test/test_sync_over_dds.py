"""pose_node's input pairing over real DDS: message_filters' ApproximateTimeSynchronizer and ours, same inputs.

``bridge.sync.make_synchronizer`` uses message_filters when importable (a robot) and our
synchronizer otherwise. Two subscriber nodes, one per branch, hear the same published streams
(detections, depth and camera_info with jittered stamps, some frames missing on one stream) and
must report the same matched sets. Needs message_filters (skips without it).
"""
import importlib.util
import time

import pytest
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image

from ros_harness import RosClient, wait_for
from vla_perception.bridge.sync import make_synchronizer
from vla_perception_interfaces.msg import Detection2DArray

if importlib.util.find_spec("message_filters") is None:
    pytest.skip("message_filters is not installed: install ROS 2's message_filters, or here "
                "scripts/install_ros2_tools.sh .venv (from ../shared/ros2-tools)", allow_module_level=True)

FRAMES = 12
PERIOD, SLOP = 0.1, 0.03
JITTER = {"detections": [0.0, 0.004, -0.006, 0.002] * 3, "depth": [0.001, -0.003, 0.005, 0.0] * 3,
          "camera_info": [0.0] * 12}
MISSING = {"depth": {3, 7}, "camera_info": {10}}  # frames these streams never publish
FAR_OFF = {"detections": {5: 0.06}}  # this frame's detections are stamped beyond the slop


def stamp_of(frame: int, stream: str) -> float:
    return 1000.0 + frame * PERIOD + JITTER[stream][frame] + FAR_OFF.get(stream, {}).get(frame, 0.0)


def stamped(msg_type, seconds: float):
    msg = msg_type()
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(seconds), round((seconds - int(seconds)) * 1e9)
    return msg


def matched_stamps(matches: list) -> list[tuple]:
    return sorted(tuple(round(m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, 4) for m in match)
                  for match in matches)


def test_message_filters_and_our_synchronizer_pair_the_same_inputs_identically():
    qos = QoSProfile(depth=FRAMES * 2)  # reliable: every message reaches both branches
    inputs = [(Detection2DArray, "/sync_test/detections", qos), (Image, "/sync_test/depth", qos),
              (CameraInfo, "/sync_test/camera_info", qos)]
    results: dict[bool, list] = {True: [], False: []}
    with RosClient("sync_test_branches") as client:
        import rclpy

        nodes = {branch: rclpy.create_node(f"sync_branch_{int(branch)}", context=client.context)
                 for branch in (True, False)}
        kept = []
        for branch, node in nodes.items():
            client.executor.add_node(node)
            kept.append(make_synchronizer(node, inputs, lambda *msgs, b=branch: results[b].append(msgs),
                                          queue_size=FRAMES, slop=SLOP, use_message_filters=branch))
        assert [type(synchronizer).__module__.split(".")[0] for synchronizer, _ in kept] == [
            "message_filters", "vla_perception"]
        publishers = {topic.rsplit("/", 1)[1]: client.node.create_publisher(msg_type, topic, qos)
                      for msg_type, topic, _ in inputs}
        wait_for(lambda: all(p.get_subscription_count() == 2 for p in publishers.values()), 15.0,
                 "both branches subscribed to every stream")
        for frame in range(FRAMES):
            for stream, publisher in publishers.items():
                if frame not in MISSING.get(stream, set()):
                    publisher.publish(stamped(publisher.msg_type, stamp_of(frame, stream)))
            time.sleep(0.02)  # streams arrive in time order, as a camera's do
        expected = FRAMES - len(MISSING["depth"]) - len(MISSING["camera_info"]) - len(FAR_OFF["detections"])
        wait_for(lambda: len(results[True]) >= expected and len(results[False]) >= expected, 15.0,
                 f"{expected} matched sets from each branch (got {len(results[True])}, {len(results[False])})")
        time.sleep(0.3)  # nothing more may arrive
        for node in nodes.values():
            client.executor.remove_node(node)
            node.destroy_node()
    assert matched_stamps(results[True]) == matched_stamps(results[False])
    assert len(results[True]) == expected
    frames_paired = {round((match[1] - 1000.0) / PERIOD) for match in matched_stamps(results[True])}
    assert frames_paired == set(range(FRAMES)) - MISSING["depth"] - MISSING["camera_info"] - set(FAR_OFF["detections"])
