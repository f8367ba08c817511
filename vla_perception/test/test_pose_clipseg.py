"""pose_node with mask_source:=clipseg (tiny random-weight CLIPSeg) beside sim_camera, over DDS.

The tiny CLIPSeg's masks mean nothing, so two thresholds are checked. At 0 every pixel of each
box passes, and the masked path must localise the simulator's objects as well as the box path
does (same tolerances as test_pose_and_sim_nodes.py). At a threshold chosen here (with the same
tiny model in this process) so that the masks keep about half of each box, the node must use
exactly those smaller masks: its objects then rest on fewer depth points than the boxes hold, and
equal what this process computes from the same frame, masks and estimator. This checks the
plumbing -- the model loaded at configure, the colour image paired or taken as the latest, masks
handed to the estimator -- not what CLIPSeg recognises.
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


@pytest.fixture(scope="module")
def half_masks(tmp_path_factory, tiny_models_dir):
    """A frame of the same scene rendered here, its true boxes, and a threshold keeping about half of them."""
    import os

    from vla_perception.core.models import load_segmenter, resolve_model_source
    from vla_perception.core.models.segmenter import refine_detections
    from vla_perception.core.types import Detection
    from vla_perception.sim.scene import TabletopScene

    os.environ["VLA_PERCEPTION_MODELS"] = str(tiny_models_dir)
    segmenter = load_segmenter(resolve_model_source("tiny", "clipseg", None), "cpu", 1)
    with TabletopScene(seed=3) as scene:
        frame = scene.render()
        truths = [t for t in scene.ground_truth(frame) if t.box is not None and t.visible_pixels >= 150]
    detections = [Detection(t.label, 1.0, t.box) for t in truths]

    def kept(threshold):
        refined, _ = refine_detections(segmenter, frame.rgb, detections, threshold, 0)
        return sum(int(d.mask.sum()) for d in refined) / sum(d.box.area for d in detections), refined

    low, high = 0.0, 1.0
    for _ in range(14):  # bisection: the kept fraction falls as the threshold rises
        middle = (low + high) / 2
        low, high = (middle, high) if kept(middle)[0] > 0.5 else (low, middle)
    fraction, refined = kept(low)
    segmenter.close()
    assert 0.2 < fraction < 0.8, f"no threshold keeps about half of the boxes (kept {fraction:.2f})"
    return frame, detections, refined, low


@pytest.fixture(scope="module")
def half_mask_node(half_masks, tmp_path_factory, tiny_models_dir):
    threshold = half_masks[3]
    params = write_params("pose_half", {"autostart": True, "mask_source": "clipseg", "mask_threshold": threshold,
                                        "min_mask_pixels": 0, "profile": "tiny", "device": "cpu", "threads": 1},
                          str(tmp_path_factory.mktemp("half")))
    env = ros_env(VLA_PERCEPTION_MODELS=str(tiny_models_dir))
    with NodeProcess("vla_perception.nodes.pose_node", ["-r", "__node:=pose_half", "--params-file", params],
                     name="pose_half", env=env) as node, RosClient("pose_half_test") as client:
        yield node, client


def test_masks_smaller_than_the_box_are_the_ones_the_node_localises_with(half_masks, half_mask_node):
    from std_msgs.msg import Header

    from vla_perception.bridge.messages import detections_to_msg
    from vla_perception.core.geometry import decode_depth
    from vla_perception.core.localise import estimate_objects
    from vla_perception.nodes.pose_node import PoseNode
    from vla_perception.nodes.sim_camera import SimCamera
    from vla_perception_interfaces.srv import EstimatePoses

    frame, detections, refined, _ = half_masks
    node, client = half_mask_node
    header = Header(frame_id="sim_camera_color_optical_frame")
    size = (frame.rgb.shape[1], frame.rgb.shape[0])
    request = EstimatePoses.Request(
        detections=detections_to_msg(detections, header, size), image=cv2_to_imgmsg(frame.rgb, "rgb8", header),
        depth=cv2_to_imgmsg(frame.depth, "32FC1", header), camera_info=SimCamera._camera_info(frame, header))

    def answered():
        answered.response = client.call(EstimatePoses, "/pose_half/estimate", request, timeout=60.0)
        return answered.response.success or "not active" not in answered.response.message
    try:
        wait_for(answered, 90.0, "pose_half active")
    except TimeoutError as error:
        raise AssertionError(f"{error}: {answered.response.message}\n{node.output()[-3000:]}") from None
    response = answered.response
    assert response.success, response.message
    count = len(detections)
    assert f"CLIPSeg masked {count} of {count} box(es)" in response.message, response.message
    max_range = next(spec.default for spec in PoseNode.PARAMS if spec.name == "max_range")
    depth = decode_depth(frame.depth, "32FC1", None, max_range=max_range)  # as pose_node decodes it
    masked, _ = estimate_objects(depth, frame.intrinsics, refined, size)
    boxed, _ = estimate_objects(depth, frame.intrinsics, detections, size)
    by_id = {int(o.id): o for o in response.objects.objects}
    assert by_id and set(by_id) == {i for i, o in enumerate(masked) if o is not None}
    for index, obj in by_id.items():
        assert refined[index].mask.sum() < detections[index].box.area
        assert obj.num_points == masked[index].num_points < boxed[index].num_points, detections[index].label
        np.testing.assert_allclose(_xyz(obj.pose.position), masked[index].position, atol=1e-5)


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
