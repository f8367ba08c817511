"""Fuzz every node over DDS with seeded hostile messages and requests; it must stay alive and right.

Each node runs in its own process (tiny random-weight models: this checks robustness, not
what the models see). Per node, ``VLA_FUZZ_MESSAGES`` messages (default 1,000; the bench
mode sets more) go to its topics and services. Every request the fuzzer built to be
invalid must be answered ``success=false``. After every 100 messages the node must be
alive, answer a known-good request correctly, and its RSS must not have grown more than
5 % over its RSS after the first 100 (the warm-up allocates caches and pools).

A service call that gets no answer within CALL_TIMEOUT counts as a hang and fails the test.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest
from hostile import Hostile
from ros_harness import DISCOVERY_TIMEOUT, NodeProcess, RosClient, ros_env, wait_for, write_params

MESSAGES = int(os.environ.get("VLA_FUZZ_MESSAGES", "1000"))
SEED = int(os.environ.get("VLA_FUZZ_SEED", "17"))
CHECK_EVERY = 100
RSS_GROWTH_LIMIT = 0.05
CALL_TIMEOUT = 60.0
IMAGE_TOPIC = "/fuzz/image"
ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Caller:
    """One persistent client per service: fuzzing must not pay discovery for every call."""

    def __init__(self, ros: RosClient, srv_type, name: str):
        self.name = name
        self.client = ros.node.create_client(srv_type, name)
        assert self.client.wait_for_service(timeout_sec=DISCOVERY_TIMEOUT), f"{name} not available"

    def __call__(self, request):
        future = self.client.call_async(request)
        wait_for(future.done, CALL_TIMEOUT, f"HANG: no answer from {self.name}", interval=0.002)
        return future.result()


class FuzzRun:
    """Counts messages, checks invalid requests are refused, and runs the health check every 100."""

    def __init__(self, process: NodeProcess, known_good):
        self.process, self.known_good = process, known_good
        self.sent = 0
        self.baseline_rss = None
        self.peak_growth = 0.0
        self.refused_invalid = 0

    def expect(self, response, invalid, what: str) -> None:
        if invalid:
            assert not response.success, f"success=true for an invalid {what}: {response.message!r}"
            self.refused_invalid += 1
        elif invalid is False:
            assert response.success, f"a valid {what} failed: {response.message}"

    def count(self) -> None:
        self.sent += 1
        if self.sent % CHECK_EVERY == 0:
            self.check()

    def check(self) -> None:
        assert self.process.alive(), f"{self.process.name} died after {self.sent} messages:\n" \
                                     f"{self.process.output()[-3000:]}"
        self.known_good()
        rss = rss_bytes(self.process.process.pid)
        if self.baseline_rss is None:
            self.baseline_rss = rss
            return
        growth = rss / self.baseline_rss - 1.0
        self.peak_growth = max(self.peak_growth, growth)
        assert growth <= RSS_GROWTH_LIMIT, (f"{self.process.name} RSS grew {growth:.1%} after {self.sent} messages "
                                            f"({self.baseline_rss / 1e6:.0f} -> {rss / 1e6:.0f} MB)")

    def report(self, node: str) -> None:
        print(f"\nfuzz {node}: {self.sent} messages, {self.refused_invalid} invalid requests refused, "
              f"0 deaths, 0 hangs, peak RSS growth {self.peak_growth:.1%}")


@pytest.fixture(scope="module")
def ros():
    with RosClient("fuzz_client") as client:
        yield client


def start(node: str, params: dict, directory, env=None, remap_image=True) -> NodeProcess:
    path = write_params(node, params, str(directory))
    args = ["--params-file", path] + (["-r", f"image:={IMAGE_TOPIC}"] if remap_image else [])
    return NodeProcess(f"vla_perception.nodes.{node}", args, env=env)


def wait_active(ros, node: str) -> None:
    from lifecycle_msgs.srv import GetState

    get_state = Caller(ros, GetState, f"/{node}/get_state")
    wait_for(lambda: get_state(GetState.Request()).current_state.label == "active", 120.0, f"{node} active")


def blank(text: str) -> bool:
    """No phrase at all: only spaces, dots and control whitespace."""
    return not text.replace(".", " ").strip()


# ------------------------------------------------------------------------------------------ model nodes
@pytest.fixture(scope="module")
def tiny_env(tiny_models_dir):
    return ros_env(VLA_PERCEPTION_MODELS=str(tiny_models_dir))


MODEL = {"profile": "tiny", "device": "cpu", "threads": 1, "autostart": True}


def test_fuzz_detector_node(ros, tiny_env, tmp_path):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from vla_perception_interfaces.srv import Detect, SetPrompt

    hostile = Hostile(SEED)
    with start("detector_node", {**MODEL, "prompt": "cup . duck", "box_threshold": 0.0001,
                                 "text_threshold": 0.0001}, tmp_path, tiny_env) as process:
        wait_active(ros, "detector_node")
        detect, set_prompt = Caller(ros, Detect, "/detector_node/detect"), Caller(ros, SetPrompt,
                                                                                   "/detector_node/set_prompt")
        images = ros.node.create_publisher(Image, IMAGE_TOPIC, qos_profile_sensor_data)
        prompts = ros.node.create_publisher(String, "/detector_node/prompt", 10)
        good_image = hostile.rgb_image()

        def known_good():
            response = detect(Detect.Request(image=good_image, prompt="cup . duck"))
            assert response.success, response.message
            assert "cup" in response.detections.prompt and "duck" in response.detections.prompt
            assert response.detections.image_width == good_image.width

        run = FuzzRun(process, known_good)
        while run.sent < MESSAGES:
            kind = hostile.rng.random()
            if kind < 0.4:
                images.publish(hostile.image()[0])
            elif kind < 0.55:
                prompts.publish(String(data=hostile.text()))
            elif kind < 0.85:
                image, bad_image = hostile.image()
                prompt = hostile.text() if hostile.chance(0.5) else ""
                thresholds = [hostile.pick([0.0, 0.3, 1.0, -1.0, 5.0, float("nan"), float("inf")]) for _ in "bt"]
                bad_threshold = any(not 0.0 <= t <= 1.0 for t in thresholds)  # NaN compares False too
                invalid = True if (bad_image or bad_threshold or (prompt and blank(prompt))) else \
                    (None if bad_image is None or prompt else False)
                response = detect(Detect.Request(image=image, prompt=prompt, box_threshold=thresholds[0],
                                                 text_threshold=thresholds[1]))
                run.expect(response, invalid, "detect request")
            else:
                text, labels = hostile.text(), hostile.labels() if hostile.chance(0.3) else []
                used = text or " . ".join(labels)
                response = set_prompt(SetPrompt.Request(prompt=text, labels=labels))
                run.expect(response, True if blank(used) else None, "set_prompt request")
            run.count()
            time.sleep(0.001)
        run.report("detector_node")


def test_fuzz_clip_node(ros, tiny_env, tmp_path):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from vla_perception_interfaces.srv import Classify, SetPrompt

    hostile = Hostile(SEED + 1)
    with start("clip_node", {**MODEL, "labels": ["cup", "duck"]}, tmp_path, tiny_env) as process:
        wait_active(ros, "clip_node")
        classify, set_prompt = Caller(ros, Classify, "/clip_node/classify"), Caller(ros, SetPrompt,
                                                                                    "/clip_node/set_prompt")
        images = ros.node.create_publisher(Image, IMAGE_TOPIC, qos_profile_sensor_data)
        label_topic = ros.node.create_publisher(String, "/clip_node/labels", 10)
        good_image = hostile.rgb_image()

        def known_good():
            response = classify(Classify.Request(image=good_image, labels=["cup", "duck"]))
            assert response.success, response.message
            assert response.results[0].labels == ["cup", "duck"]
            assert abs(sum(response.results[0].scores) - 1.0) < 1e-3

        run = FuzzRun(process, known_good)
        while run.sent < MESSAGES:
            kind = hostile.rng.random()
            if kind < 0.4:
                images.publish(hostile.image()[0])
            elif kind < 0.55:
                label_topic.publish(String(data=hostile.text()))
            elif kind < 0.85:
                image, bad_image = hostile.image()
                labels = hostile.labels() if hostile.chance(0.5) else []
                boxes = [hostile.box() for _ in range(int(hostile.rng.integers(0, 4)))]
                if hostile.chance(0.03):
                    boxes = [hostile.box() for _ in range(150)]
                bad_labels = bool(labels) and (all(not label.strip() for label in labels) or len(labels) > 100)
                bad_boxes = any(bad for _, bad in boxes) or len(boxes) > 100
                invalid = True if (bad_image or bad_labels or bad_boxes) else None
                response = classify(Classify.Request(image=image, labels=labels, boxes=[b for b, _ in boxes]))
                run.expect(response, invalid, "classify request")
            else:
                labels = hostile.labels()
                response = set_prompt(SetPrompt.Request(labels=labels))
                used = [label for label in labels if label.strip()]
                run.expect(response, True if not used or len(used) > 100 else None, "set_prompt request")
            run.count()
            time.sleep(0.001)
        run.report("clip_node")


def test_fuzz_vlm_node(ros, tiny_env, tmp_path):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from vla_perception_interfaces.srv import AnswerQuestion, Caption

    hostile = Hostile(SEED + 2)
    with start("vlm_node", {**MODEL, "caption_max_new_tokens": 5}, tmp_path, tiny_env) as process:
        wait_active(ros, "vlm_node")
        caption, answer = Caller(ros, Caption, "/vlm_node/caption"), Caller(ros, AnswerQuestion, "/vlm_node/answer")
        images = ros.node.create_publisher(Image, IMAGE_TOPIC, qos_profile_sensor_data)
        good_image = hostile.rgb_image()

        def known_good():
            response = answer(AnswerQuestion.Request(image=good_image, question="is there a cup?", max_new_tokens=3))
            assert response.success, response.message
            assert isinstance(response.answer, str) and response.inference_time > 0

        run = FuzzRun(process, known_good)
        while run.sent < MESSAGES:
            kind = hostile.rng.random()
            tokens = hostile.pick([0, 1, 3, 8, 128, 129, 1000, 2**32 - 1])
            if kind < 0.5:
                images.publish(hostile.image()[0])
            elif kind < 0.75:
                image, bad_image = hostile.image()
                prefix = hostile.text() if hostile.chance(0.5) else ""
                response = caption(Caption.Request(image=image, prefix=prefix, max_new_tokens=tokens))
                run.expect(response, True if (bad_image or tokens > 128) else None, "caption request")
            else:
                image, bad_image = hostile.image()
                question = hostile.text()
                response = answer(AnswerQuestion.Request(image=image, question=question, max_new_tokens=tokens))
                run.expect(response, True if (bad_image or tokens > 128 or not question.strip()) else None,
                           "answer request")
            run.count()
            time.sleep(0.001)
        run.report("vlm_node")


# ------------------------------------------------------------------------------------------ pose_node
def _detections(hostile: Hostile, frame_id: str, stamp=None):
    from vla_perception_interfaces.msg import Detection2D, Detection2DArray

    msg = Detection2DArray(image_width=int(hostile.pick([0, 64, 640])), image_height=int(hostile.pick([0, 48, 480])))
    msg.header.frame_id = frame_id
    if stamp is not None:
        msg.header.stamp = stamp
    count = int(hostile.rng.integers(0, 5)) if not hostile.chance(0.03) else 150
    bad = count > 100
    for index in range(count):
        box, bad_box = hostile.box()
        bad = bad or bad_box
        msg.detections.append(Detection2D(id=str(index), label=hostile.text()[:50], score=0.9, bbox=box))
    return msg, bad


def test_fuzz_pose_node(ros, tmp_path):
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from vla_perception.bridge.image import cv2_to_imgmsg
    from vla_perception_interfaces.msg import Detection2D, Detection2DArray
    from vla_perception_interfaces.srv import EstimatePoses

    hostile = Hostile(SEED + 3)
    frame_id = "fuzz_optical_frame"
    with start("pose_node", {"autostart": True}, tmp_path, remap_image=False) as process:
        wait_active(ros, "pose_node")
        estimate = Caller(ros, EstimatePoses, "/pose_node/estimate")
        detections_pub = ros.node.create_publisher(Detection2DArray, "/pose_node/detections", QoSProfile(depth=10))
        depth_pub = ros.node.create_publisher(Image, "/depth", qos_profile_sensor_data)
        info_pub = ros.node.create_publisher(CameraInfo, "/camera_info", qos_profile_sensor_data)
        flat = np.full((48, 64), 0.8, np.float32)

        def good_inputs():
            depth = cv2_to_imgmsg(flat, "32FC1")
            depth.header.frame_id = frame_id
            info = CameraInfo(width=64, height=48, distortion_model="plumb_bob", d=[0.0] * 5,
                              k=[60.0, 0.0, 32.0, 0.0, 60.0, 24.0, 0.0, 0.0, 1.0])
            info.header.frame_id = frame_id
            return depth, info

        def known_good():
            depth, info = good_inputs()
            detections = Detection2DArray(image_width=64, image_height=48)
            detections.header.frame_id = frame_id
            detection = Detection2D(id="0", label="cube", score=0.9)
            detection.bbox.center_x, detection.bbox.center_y, detection.bbox.size_x, detection.bbox.size_y = \
                32.0, 24.0, 20.0, 20.0
            detections.detections.append(detection)
            response = estimate(EstimatePoses.Request(detections=detections, depth=depth, camera_info=info))
            assert response.success, response.message
            (obj,) = response.objects.objects
            assert abs(obj.pose.position.z - 0.8) < 0.01  # a flat surface 0.8 m away, seen head on

        run = FuzzRun(process, known_good)
        while run.sent < MESSAGES:
            kind = hostile.rng.random()
            if kind < 0.2:
                depth, _ = hostile.image(frame_id)
                depth_pub.publish(depth)
            elif kind < 0.35:
                info_pub.publish(hostile.camera_info(64, 48, frame_id)[0])
            elif kind < 0.5:
                detections_pub.publish(_detections(hostile, frame_id)[0])
            else:
                depth, info = good_inputs()
                bad_depth = bad_info = False
                if hostile.chance(0.4):
                    info, bad_info = hostile.camera_info(64, 48, frame_id)
                if hostile.chance(0.4):
                    depth, bad_depth = hostile.image(frame_id)
                    if depth.encoding not in ("16UC1", "32FC1") or (depth.width, depth.height) != (64, 48):
                        bad_depth = bad_depth or None  # a colour or resized "depth": refused, or no object
                    if depth.width == 0:
                        bad_depth = None  # empty: the latest received depth is used
                detections, bad_detections = _detections(hostile, frame_id)
                if hostile.chance(0.1):
                    detections.header.frame_id = "another_frame"
                    bad_detections = True
                response = estimate(EstimatePoses.Request(detections=detections, depth=depth, camera_info=info))
                invalid = True if (bad_info or bad_depth or bad_detections) else None
                run.expect(response, invalid, "estimate request")
            run.count()
            time.sleep(0.001)
        run.report("pose_node")


# ------------------------------------------------------------------------------------------ sim and orchestrator
@pytest.fixture(scope="module")
def sim_graph(ros, tmp_path_factory):
    directory = tmp_path_factory.mktemp("sim_graph")
    sim = start("sim_camera", {"rate": 2.0}, directory, remap_image=False)
    pose = start("pose_node", {"autostart": True}, directory, remap_image=False)
    orchestrator = NodeProcess("vla_perception.nodes.grasp_orchestrator", ["--params-file", write_params(
        "grasp_orchestrator", {"detection_source": "ground_truth", "planner": "embedded", "stage_timeout": 20.0},
        str(directory))])
    try:
        yield sim, pose, orchestrator
    finally:
        for process in (orchestrator, pose, sim):
            process.stop()


def _plan(hostile: Hostile):
    from vla_perception_interfaces.msg import GraspCandidate, GraspPlan

    trajectory, bad = hostile.trajectory(ARM_JOINTS)
    plan = GraspPlan(trajectory=trajectory)
    width = hostile.pick([0.03, 0.05, -0.1, float("nan"), 5.0])
    plan.candidates = [GraspCandidate(gripper_width=width)]
    plan.chosen_candidate = hostile.pick([0, 0, 0, 3, -1])
    bad = bad or not 0.0 <= width <= 0.08 or plan.chosen_candidate != 0
    return plan, bad


def test_fuzz_sim_camera(ros, sim_graph):
    from vla_perception_interfaces.srv import ExecuteGrasp, GetGroundTruth

    sim, _, _ = sim_graph
    hostile = Hostile(SEED + 4)
    execute = Caller(ros, ExecuteGrasp, "/sim_camera/execute")
    truth = Caller(ros, GetGroundTruth, "/sim_camera/ground_truth")
    wait_for(lambda: truth(GetGroundTruth.Request()).success, 60.0, "a first simulated frame")

    def known_good():
        response = truth(GetGroundTruth.Request())
        assert response.success, response.message
        assert "red_mug" in response.names

    run = FuzzRun(sim, known_good)
    while run.sent < MESSAGES:
        plan, bad_plan = _plan(hostile)
        name = hostile.pick(["", "red_mug", "no_such_object", hostile.text()[:30]])
        bad_name = name not in ("", "red_mug")
        response = execute(ExecuteGrasp.Request(plan=plan, object_name=name))
        run.expect(response, True if (bad_plan or bad_name) else None, "execute request")
        run.count()
    run.report("sim_camera")


def test_fuzz_grasp_orchestrator(ros, sim_graph):
    from rclpy.action import ActionClient
    from sensor_msgs.msg import JointState

    from vla_perception_interfaces.action import Pick
    from vla_perception_interfaces.srv import EstimatePoses, GetGroundTruth, PlanGrasp

    _, _, orchestrator = sim_graph
    hostile = Hostile(SEED + 5)
    plan_grasp = Caller(ros, PlanGrasp, "/grasp_orchestrator/plan_grasp")
    truth, estimate = Caller(ros, GetGroundTruth, "/sim_camera/ground_truth"), Caller(ros, EstimatePoses,
                                                                                       "/pose_node/estimate")
    wait_for(lambda: estimate(EstimatePoses.Request(detections=truth(GetGroundTruth.Request()).detections)).success,
             60.0, "sim frames reaching pose_node")
    joints = ros.node.create_publisher(JointState, "/fuzz_joint_states", 10)  # the orchestrator's own is unremapped
    real_joints = ros.node.create_publisher(JointState, "/joint_states", 10)
    pick = ActionClient(ros.node, Pick, "/grasp_orchestrator/pick")
    assert pick.wait_for_server(timeout_sec=DISCOVERY_TIMEOUT)

    def known_good():
        response = plan_grasp(PlanGrasp.Request(command="pick up the red mug"))
        assert response.success, response.message
        assert response.plan.object.label == "red mug"

    run = FuzzRun(orchestrator, known_good)
    while run.sent < MESSAGES:
        kind = hostile.rng.random()
        if kind < 0.6:
            names = hostile.pick([ARM_JOINTS, ARM_JOINTS[:3], [], ["x"] * 7])
            positions = [hostile.pick([0.0, 0.3, float("nan"), float("inf"), 1e9]) for _ in range(
                hostile.pick([7, 3, 0]))]
            (real_joints if hostile.chance(0.5) else joints).publish(JointState(name=names, position=positions))
        elif kind < 0.9:
            command = hostile.text()
            response = plan_grasp(PlanGrasp.Request(command=command))
            run.expect(response, True if blank(command) else None, "plan_grasp request")
        else:
            goal = Pick.Goal(command=hostile.text(), timeout=hostile.pick([0.0, 5.0, -1.0, float("nan")]))
            future = pick.send_goal_async(goal)
            wait_for(future.done, 10.0, "HANG: no accept/reject for a Pick goal", interval=0.002)
            handle = future.result()
            if handle.accepted:
                result = handle.get_result_async()
                wait_for(result.done, CALL_TIMEOUT, "HANG: no Pick result", interval=0.002)
                if blank(goal.command):
                    assert not result.result().result.success
        run.count()
        time.sleep(0.001)
    real_joints.publish(JointState(name=ARM_JOINTS, position=[0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]))
    run.report("grasp_orchestrator")
