"""pose_node with mask_source:=clipseg (tiny random-weight CLIPSeg) beside sim_camera, over DDS.

The tiny CLIPSeg's masks mean nothing, so its threshold is 0: every pixel of each box passes,
and the masked path must then localise the simulator's objects as well as the box path does
(same tolerances as test_pose_and_sim_nodes.py). This checks the plumbing -- the model loaded
at configure, the colour image paired or taken as the latest, masks handed to the estimator --
not what CLIPSeg recognises.
"""
import numpy as np
import pytest
from ros_harness import NodeProcess, RosClient, ros_env, wait_for, write_params
from test_pose_and_sim_nodes import EXACT_SHAPES, _request_with, _xyz, estimate, ground_truth, wait_and_estimate

from vla_perception.bridge.image import cv2_to_imgmsg


@pytest.fixture(scope="module")
def graph(tmp_path_factory, tiny_models_dir):
    directory = str(tmp_path_factory.mktemp("params"))
    sim_params = write_params("sim_camera", {"rate": 4.0, "seed": 3}, directory)
    pose_params = write_params("pose_node", {"autostart": True, "max_stamp_gap": 60.0,  # a static scene
                                             "mask_source": "clipseg", "mask_threshold": 0.0,
                                             "profile": "tiny", "device": "cpu", "threads": 1}, directory)
    remaps = ["-r", "detections:=/test/detections", "-r", "depth:=/depth", "-r", "camera_info:=/camera_info",
              "-r", "image:=/image"]
    env = ros_env(VLA_PERCEPTION_MODELS=str(tiny_models_dir))
    with NodeProcess("vla_perception.nodes.sim_camera", ["--params-file", sim_params]) as sim, \
            NodeProcess("vla_perception.nodes.pose_node", ["--params-file", pose_params, *remaps], env=env) as pose, \
            RosClient("pose_clipseg_test") as client:
        yield sim, pose, client


def test_masked_path_localises_as_well_as_the_box_path(graph):
    _, pose, client = graph
    truth = ground_truth(client)
    response = wait_and_estimate(client, _request_with(truth), timeout=60.0)
    assert response.success, response.message
    assert "loading CLIPSeg" in pose.output() and "clipseg" in pose.output()
    count = len(truth.detections.detections)
    assert f"CLIPSeg masked {count} of {count} box(es)" in response.message, response.message
    by_label = {o.label: o for o in response.objects.objects}
    checked = 0
    for name, true_obj in zip(truth.names, truth.objects.objects):
        if true_obj.label not in by_label or name == "grey_tray":
            continue
        centre_error = np.linalg.norm(_xyz(by_label[true_obj.label].pose.position) - _xyz(true_obj.pose.position))
        assert centre_error < (0.005 if name in EXACT_SHAPES else 0.020), f"{name}: {centre_error * 1000:.1f} mm"
        checked += 1
    assert checked >= 3


def test_streamed_detections_are_paired_with_the_colour_image(graph):
    from rclpy.qos import QoSProfile

    from vla_perception_interfaces.msg import Detection2DArray, Object3DArray

    _, pose, client = graph
    objects = client.collect(Object3DArray, "/pose_node/objects")
    publisher = client.node.create_publisher(Detection2DArray, "/test/detections", QoSProfile(depth=10))

    def published():
        publisher.publish(ground_truth(client).detections)  # stamped like the sim frame they came from
        return bool(objects)

    wait_for(published, 60.0, f"objects from pose_node\n{pose.output()[-2000:]}")
    assert len(objects[-1].objects) >= 3


def test_a_colour_image_of_another_size_is_refused_and_the_node_keeps_working(graph):
    _, pose, client = graph
    truth = ground_truth(client)
    small = cv2_to_imgmsg(np.zeros((240, 320, 3), np.uint8), "rgb8")
    response = estimate(client, _request_with(truth, image=small))
    assert not response.success and "colour image is 320x240" in response.message, response.message
    assert pose.alive()
    assert estimate(client, _request_with(truth)).success
