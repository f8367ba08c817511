"""Every custom message and a service cross a real process boundary over DDS (loopback only)."""
import time

import numpy as np
import pytest
from ros_harness import TEST_DIR, NodeProcess, RosClient, wait_for

from vla_perception.bridge.image import cv2_to_imgmsg


@pytest.fixture(scope="module")
def echo_peer():
    with NodeProcess(str(TEST_DIR / "interface_echo_node.py")) as peer, RosClient("interface_test") as client:
        yield peer, client


def sample_messages():
    from geometry_msgs.msg import Pose
    from trajectory_msgs.msg import JointTrajectoryPoint

    from vla_perception_interfaces import msg as m

    box = m.BoundingBox2D(center_x=320.5, center_y=240.25, size_x=40.0, size_y=30.0)
    detection = m.Detection2D(id="0", label="red cup", phrase="red cup", score=0.75, bbox=box)
    detection.mask = cv2_to_imgmsg(np.eye(4, dtype=np.uint8) * 255, "mono8")
    detections = m.Detection2DArray(prompt="red cup .", model_id="tiny", inference_time=0.5, detections=[detection])
    detections.header.frame_id = "camera_color_optical_frame"
    classification = m.Classification(labels=["cup", "duck"], scores=[0.25, 0.75], best_label="duck", best_score=0.75)
    obj = m.Object3D(id="0", label="red cup", score=0.75, num_points=1234, confidence=0.875, bbox=box)
    obj.pose = Pose()
    obj.pose.position.z = 0.8
    obj.size.x, obj.size.y, obj.size.z = 0.08, 0.08, 0.1
    objects = m.Object3DArray(objects=[obj, obj])
    candidate = m.GraspCandidate(approach_type="top", gripper_width=0.0625, score=0.875)
    candidate.approach.z = -1.0
    plan = m.GraspPlan(object=obj, candidates=[candidate], chosen_candidate=0, planner="embedded", planning_time=0.125)
    plan.trajectory.joint_names = [f"panda_joint{i}" for i in range(1, 8)]
    plan.trajectory.points = [JointTrajectoryPoint(positions=[0.1 * i for i in range(7)])]
    return {
        "BoundingBox2D": box, "Detection2D": detection, "Detection2DArray": detections,
        "Classification": classification, "Object3D": obj, "Object3DArray": objects,
        "GraspCandidate": candidate, "GraspPlan": plan,
    }


@pytest.mark.parametrize("type_name", list(sample_messages()))
def test_message_round_trip(echo_peer, type_name):
    """The echo process returns a message equal to the one sent, field by field."""
    from vla_perception_interfaces import msg as m

    peer, client = echo_peer
    msg_type = getattr(m, type_name)
    sent = sample_messages()[type_name]  # float32 fields hold values exact in float32
    received = client.collect(msg_type, f"echo/out/{type_name}")
    publisher = client.node.create_publisher(msg_type, f"echo/in/{type_name}", 10)

    def delivered():
        publisher.publish(sent)  # repeat until discovery has matched both hops
        time.sleep(0.05)
        return bool(received)

    wait_for(delivered, 20.0, f"{type_name} echoed back (peer alive: {peer.alive()})\n{peer.output()}")
    assert received[0] == sent


def test_service_call_crosses_processes(echo_peer):
    """The peer's answer is built from the request's fields, so they crossed the boundary intact."""
    from vla_perception_interfaces.srv import Detect

    _, client = echo_peer
    request = Detect.Request(prompt="red cup . blue bottle")
    request.image = cv2_to_imgmsg(np.zeros((48, 64, 3), np.uint8), "rgb8")
    request.image.header.frame_id = "cam"
    response = client.call(Detect, "echo/detect", request)
    assert response.success
    assert response.message == "64x48 'red cup . blue bottle'"
    assert response.detections.prompt == "red cup . blue bottle"
    assert response.detections.header.frame_id == "cam"
