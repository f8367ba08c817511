"""Fuzz every node over DDS with seeded hostile messages and requests; it must stay alive and right.

Each node runs in its own process (tiny random-weight models: this checks robustness, not
what the models see), all started at once so their start-up overlaps. Per node,
``VLA_FUZZ_CASES`` cases (default 120, a CI budget; docs/development.md gives the longer
run) go to its topics and services. Checked for every case: a service answers within
CALL_TIMEOUT (else a hang), a request the fuzzer built to be invalid is answered
``success=false``, a valid one ``success=true``, and no refusal is an unexpected exception
("internal error: ..."). After every CHECK_EVERY cases and after the last: the process is
alive, it answers a known-good request correctly, and its RSS has not grown more than 5 %
over its RSS at the first check (the warm-up allocates caches and pools).

Seeded: ``VLA_FUZZ_SEED`` (default 17) drives every generator; a failure names its case and
prints the command that replays the same sequence up to it.
"""
from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
from hostile import Hostile
from ros_harness import DISCOVERY_TIMEOUT, NodeProcess, RosClient, ros_env, wait_for, write_params

CASES = int(os.environ.get("VLA_FUZZ_CASES", "120"))
SEED = int(os.environ.get("VLA_FUZZ_SEED", "17"))
CHECK_EVERY = 100
RSS_GROWTH_LIMIT = 0.05
CALL_TIMEOUT = 30.0
START_TIMEOUT = 180.0  # eight processes importing torch/pybullet at once on a small machine
ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
HOME = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
MODEL = {"profile": "tiny", "device": "cpu", "threads": 1, "autostart": True}
FUZZED = {  # node -> (namespace, parameters); each in its own namespace so no fuzzed topic reaches another
    "detector_node": ("/fz_detector", {**MODEL, "prompt": "cup . duck", "box_threshold": 0.0001,
                                       "text_threshold": 0.0001}),
    "clip_node": ("/fz_clip", {**MODEL, "labels": ["cup", "duck"]}),
    "vlm_node": ("/fz_vlm", {**MODEL, "caption_max_new_tokens": 5}),
    "pose_node": ("/fz_pose", {"autostart": True}),
    "tracker_node": ("/fz_tracker", {"autostart": True}),
}

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
        assert self.client.wait_for_service(timeout_sec=START_TIMEOUT), f"{name} not available"

    def __call__(self, request, timeout: float = CALL_TIMEOUT):
        future = self.client.call_async(request)
        wait_for(future.done, timeout, f"HANG: no answer from {self.name}", interval=0.002)
        return future.result()


class FuzzRun:
    """Plays CASES seeded cases against one node: expectations per case, health checks, replay hint."""

    def __init__(self, test: str, seed: int, process: NodeProcess):
        self.test, self.seed, self.process = test, seed, process
        self.hostile = Hostile(seed)
        self.baseline_rss = None
        self.peak_growth = 0.0
        self.refused_invalid = 0
        self.case = ""  # what the current case sent, for the failure message
        print(f"\nfuzz {test}: seed {seed}, {CASES} cases")

    def play(self, one_case, known_good) -> None:
        """Run one_case(hostile) CASES times; known_good() is the health check's request."""
        self.known_good = known_good
        for index in range(CASES):
            try:
                self.case = ""
                one_case(self.hostile)
                if (index + 1) % CHECK_EVERY == 0 or index + 1 == CASES:
                    self.case = "health check"
                    self.check()
            except (AssertionError, TimeoutError) as error:
                raise AssertionError(
                    f"{self.process.name}, case {index} ({self.case}): {error}\n"
                    f"replay: VLA_FUZZ_SEED={SEED} VLA_FUZZ_CASES={index + 1} python -m pytest -p no:cacheprovider "
                    f"'test/fuzz/test_fuzz_nodes.py::{self.test}'\n--- node output ---\n"
                    f"{self.process.output()[-3000:]}") from error
            time.sleep(0.001)
        print(f"fuzz {self.test}: {CASES} cases, {self.refused_invalid} invalid requests refused, 0 deaths, "
              f"0 hangs, peak RSS growth {self.peak_growth:.1%}")

    def expect(self, response, invalid, what: str) -> None:
        """invalid: True (must be refused), False (must succeed), None (either, but never by accident)."""
        self.case = f"{what}: {response.success}, {response.message[:200]!r}"
        assert not response.message.startswith("internal error"), f"unexpected exception for a {what}"
        if invalid:
            assert not response.success, f"success=true for an invalid {what}"
            self.refused_invalid += 1
        elif invalid is False:
            assert response.success, f"a valid {what} failed"

    def check(self) -> None:
        assert self.process.alive(), f"{self.process.name} died"
        self.known_good()
        rss = rss_bytes(self.process.process.pid)
        if self.baseline_rss is None:
            self.baseline_rss = rss
            return
        growth = rss / self.baseline_rss - 1.0
        self.peak_growth = max(self.peak_growth, growth)
        assert growth <= RSS_GROWTH_LIMIT, (f"RSS grew {growth:.1%} "
                                            f"({self.baseline_rss / 1e6:.0f} -> {rss / 1e6:.0f} MB)")


def start(node: str, params: dict, directory, env=None, namespace: str = "") -> NodeProcess:
    path = write_params("/**", params, str(directory))
    args = ["--params-file", path] + (["-r", f"__ns:={namespace}"] if namespace else [])
    return NodeProcess(f"vla_perception.nodes.{node}", args, name=node, env=env)


MODEL_NODES = ("detector_node", "clip_node", "vlm_node")


@pytest.fixture(scope="module")
def graph(request, tmp_path_factory):
    """Every node at once: the five fuzzed ones, each in its namespace, and a sim graph for the orchestrator.

    The nodes without models start first, so their start-up overlaps the tiny models' build.
    """
    directory = tmp_path_factory.mktemp("fuzz")
    processes = {name: start(name, params, directory, namespace=namespace)
                 for name, (namespace, params) in FUZZED.items() if name not in MODEL_NODES}
    # a quarter of the default pixels at 1 fps: its renders (0.25 s each at VGA) would take a core's quarter
    processes["sim_camera"] = start("sim_camera", {"rate": 1.0, "width": 320, "height": 240}, directory)
    processes["sim_pose_node"] = start("pose_node", {"autostart": True}, directory)
    processes["grasp_orchestrator"] = start("grasp_orchestrator", {
        "detection_source": "ground_truth", "planner": "embedded", "stage_timeout": 20.0}, directory)
    try:
        tiny_env = ros_env(VLA_PERCEPTION_MODELS=str(request.getfixturevalue("tiny_models_dir")))
        processes.update({name: start(name, FUZZED[name][1], directory, tiny_env, FUZZED[name][0])
                          for name in MODEL_NODES})
        with RosClient("fuzz_client") as ros:
            yield ros, processes
    finally:
        for process in reversed(list(processes.values())):
            process.stop()


def fuzzed(graph, node: str):
    """(ros, process, namespace) of a fuzzed node, once it is active."""
    from lifecycle_msgs.srv import GetState

    ros, processes = graph
    namespace = FUZZED[node][0]
    get_state = Caller(ros, GetState, f"{namespace}/{node}/get_state")
    # while it starts (configure loads the model), a loaded machine may keep the answer waiting
    wait_for(lambda: get_state(GetState.Request(), START_TIMEOUT).current_state.label == "active", START_TIMEOUT,
             f"{node} active\n{processes[node].output()[-2000:]}")
    return ros, processes[node], namespace


def blank(text: str) -> bool:
    """No phrase at all: only spaces, dots and control whitespace."""
    return not text.replace(".", " ").strip()


def sensor_publisher(ros, msg_type, topic):
    from rclpy.qos import qos_profile_sensor_data

    return ros.node.create_publisher(msg_type, topic, qos_profile_sensor_data)


# ------------------------------------------------------------------------------------------ model nodes
def model_node(graph, node: str, **services):
    """(ros, process, namespace, image publisher, one Caller per named service) of an active model node."""
    from sensor_msgs.msg import Image

    ros, process, ns = fuzzed(graph, node)
    callers = [Caller(ros, srv_type, f"{ns}/{node}/{name}") for name, srv_type in services.items()]
    return ros, process, ns, sensor_publisher(ros, Image, f"{ns}/image"), callers


def test_fuzz_detector_node(graph):
    from std_msgs.msg import String

    from vla_perception_interfaces.srv import Detect, SetPrompt

    ros, process, ns, images, (detect, set_prompt) = model_node(graph, "detector_node", detect=Detect,
                                                                set_prompt=SetPrompt)
    prompts = ros.node.create_publisher(String, f"{ns}/detector_node/prompt", 10)
    run = FuzzRun("test_fuzz_detector_node", SEED, process)
    good_image = run.hostile.rgb_image()

    def known_good():
        response = detect(Detect.Request(image=good_image, prompt="cup . duck"))
        assert response.success, response.message
        assert "cup" in response.detections.prompt and "duck" in response.detections.prompt
        assert response.detections.image_width == good_image.width

    def one_case(hostile):
        kind = hostile.rng.random()
        if kind < 0.4:
            images.publish(hostile.image()[0])
        elif kind < 0.55:
            prompts.publish(String(data=hostile.text()))
        elif kind < 0.85:
            image, bad_image = hostile.image(colour=True)
            prompt = hostile.text() if hostile.chance(0.5) else ""
            thresholds = [hostile.pick([0.0, 0.3, 1.0, -1.0, 5.0, float("nan"), float("inf")]) for _ in "bt"]
            bad_threshold = any(not 0.0 <= t <= 1.0 for t in thresholds)  # NaN compares False too
            invalid = True if (bad_image or bad_threshold or (prompt and blank(prompt))) else \
                (None if bad_image is None or prompt else False)
            response = detect(Detect.Request(image=image, prompt=prompt, box_threshold=thresholds[0],
                                             text_threshold=thresholds[1]))
            run.expect(response, invalid, f"detect request ({image.encoding} {image.width}x{image.height})")
        else:
            text, labels = hostile.text(), hostile.labels() if hostile.chance(0.3) else []
            response = set_prompt(SetPrompt.Request(prompt=text, labels=labels))
            run.expect(response, True if blank(text or " . ".join(labels)) else None, "set_prompt request")

    run.play(one_case, known_good)


def test_fuzz_clip_node(graph):
    from std_msgs.msg import String

    from vla_perception_interfaces.srv import Classify, SetPrompt

    ros, process, ns, images, (classify, set_prompt) = model_node(graph, "clip_node", classify=Classify,
                                                                  set_prompt=SetPrompt)
    label_topic = ros.node.create_publisher(String, f"{ns}/clip_node/labels", 10)
    run = FuzzRun("test_fuzz_clip_node", SEED + 1, process)
    good_image = run.hostile.rgb_image()

    def known_good():
        response = classify(Classify.Request(image=good_image, labels=["cup", "duck"]))
        assert response.success, response.message
        assert response.results[0].labels == ["cup", "duck"]
        assert abs(sum(response.results[0].scores) - 1.0) < 1e-3

    def one_case(hostile):
        kind = hostile.rng.random()
        if kind < 0.4:
            images.publish(hostile.image()[0])
        elif kind < 0.55:
            label_topic.publish(String(data=hostile.text()))
        elif kind < 0.85:
            image, bad_image = hostile.image(colour=True)
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
            used = [label for label in labels if label.strip()]
            response = set_prompt(SetPrompt.Request(labels=labels))
            run.expect(response, True if not used or len(used) > 100 else None, "set_prompt request")

    run.play(one_case, known_good)


def test_fuzz_vlm_node(graph):
    from vla_perception_interfaces.srv import AnswerQuestion, Caption

    _, process, _, images, (caption, answer) = model_node(graph, "vlm_node", caption=Caption, answer=AnswerQuestion)
    run = FuzzRun("test_fuzz_vlm_node", SEED + 2, process)
    good_image = run.hostile.rgb_image()

    def known_good():
        response = answer(AnswerQuestion.Request(image=good_image, question="is there a cup?", max_new_tokens=3))
        assert response.success, response.message
        assert isinstance(response.answer, str) and response.inference_time > 0

    def one_case(hostile):
        kind = hostile.rng.random()
        tokens = hostile.pick([0, 1, 3, 8, 128, 129, 1000, 2**32 - 1])
        if kind < 0.5:
            images.publish(hostile.image()[0])
        elif kind < 0.75:
            image, bad_image = hostile.image(colour=True)
            prefix = hostile.text() if hostile.chance(0.5) else ""
            response = caption(Caption.Request(image=image, prefix=prefix, max_new_tokens=tokens))
            run.expect(response, True if (bad_image or tokens > 128) else None, "caption request")
        else:
            image, bad_image = hostile.image(colour=True)
            question = hostile.text()
            response = answer(AnswerQuestion.Request(image=image, question=question, max_new_tokens=tokens))
            run.expect(response, True if (bad_image or tokens > 128 or not question.strip()) else None,
                       "answer request")

    run.play(one_case, known_good)


# ------------------------------------------------------------------------------------------ pose_node
def _detections(hostile: Hostile, frame_id: str):
    from vla_perception_interfaces.msg import Detection2D, Detection2DArray

    msg = Detection2DArray(image_width=int(hostile.pick([0, 64, 640])), image_height=int(hostile.pick([0, 48, 480])))
    msg.header.frame_id = frame_id
    msg.header.stamp = hostile.stamp() if hostile.chance(0.3) else msg.header.stamp
    msg.prompt = hostile.text() if hostile.chance(0.3) else ""
    count = int(hostile.rng.integers(0, 5)) if not hostile.chance(0.03) else 150
    bad = count > 100
    for index in range(count):
        box, bad_box = hostile.box()
        bad = bad or bad_box
        msg.detections.append(Detection2D(id=str(index), label=hostile.text()[:50], score=0.9, bbox=box))
    return msg, bad


def test_fuzz_pose_node(graph):
    from sensor_msgs.msg import CameraInfo, Image

    from rclpy.qos import QoSProfile
    from vla_perception.bridge.image import cv2_to_imgmsg
    from vla_perception_interfaces.msg import Detection2D, Detection2DArray
    from vla_perception_interfaces.srv import EstimatePoses

    ros, process, ns = fuzzed(graph, "pose_node")
    frame_id = "fuzz_optical_frame"
    estimate = Caller(ros, EstimatePoses, f"{ns}/pose_node/estimate")
    detections_pub = ros.node.create_publisher(Detection2DArray, f"{ns}/pose_node/detections", QoSProfile(depth=10))
    depth_pub = sensor_publisher(ros, Image, f"{ns}/depth")
    info_pub = sensor_publisher(ros, CameraInfo, f"{ns}/camera_info")
    scene = np.full((48, 64), 0.8, np.float32)  # a table 0.8 m under a camera looking straight down
    scene[16:32, 24:40] = 0.7  # and a 10 cm block at the image centre

    def good_inputs():
        depth = cv2_to_imgmsg(scene, "32FC1")
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
        assert response.success and len(response.objects.objects) == 1, (response.message, response.rejected)
        position = response.objects.objects[0].pose.position
        assert abs(position.x) < 0.02 and abs(position.y) < 0.02 and abs(position.z - 0.75) < 0.01  # half-way up

    def one_case(hostile):
        kind = hostile.rng.random()
        if kind < 0.2:
            depth_pub.publish(hostile.image(frame_id)[0])
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
            run.expect(response, True if (bad_info or bad_depth or bad_detections) else None, "estimate request")

    run = FuzzRun("test_fuzz_pose_node", SEED + 3, process)
    run.play(one_case, known_good)


# ------------------------------------------------------------------------------------------ tracker_node
def test_fuzz_tracker_node(graph):
    """No services: the known-good check is a good frame (newest stamp) answered on ~/tracks."""
    from sensor_msgs.msg import CameraInfo, Image

    from builtin_interfaces.msg import Time
    from rclpy.qos import QoSProfile
    from vla_perception_interfaces.msg import Detection2DArray

    ros, process, ns = fuzzed(graph, "tracker_node")
    frame_id = "fuzz_optical_frame"
    images = sensor_publisher(ros, Image, f"{ns}/image")
    infos = sensor_publisher(ros, CameraInfo, f"{ns}/camera_info")
    detections = ros.node.create_publisher(Detection2DArray, f"{ns}/detections", QoSProfile(depth=10))
    tracks = ros.collect(Detection2DArray, f"{ns}/tracker_node/tracks")
    run = FuzzRun("test_fuzz_tracker_node", SEED + 4, process)
    good_clock = [1000.0]

    def known_good():
        good_clock[0] += 1.0
        frame = run.hostile.rgb_image(frame_id=frame_id)
        frame.header.stamp = Time(sec=int(good_clock[0]))

        def answered():
            images.publish(frame)  # best effort, newest only: sent again until it is answered
            return any(t.header.stamp == frame.header.stamp and t.image_width == frame.width for t in tracks[-20:])

        wait_for(answered, CALL_TIMEOUT, "HANG: no ~/tracks for a good frame", interval=0.2)

    def one_case(hostile):
        kind = hostile.rng.random()
        if kind < 0.5:
            image = hostile.image(frame_id)[0]
            image.header.stamp = hostile.stamp() if hostile.chance(0.3) else Time(sec=int(good_clock[0]))
            images.publish(image)
        elif kind < 0.85:
            detections.publish(_detections(hostile, frame_id)[0])
        else:
            infos.publish(hostile.camera_info(int(hostile.pick([0, 64, 640])), 48, frame_id)[0])

    run.play(one_case, known_good)


# ------------------------------------------------------------------------------------------ sim and orchestrator
def _plan(hostile: Hostile):
    from vla_perception_interfaces.msg import GraspCandidate, GraspPlan

    trajectory, bad = hostile.trajectory(ARM_JOINTS)
    plan = GraspPlan(trajectory=trajectory)
    width = hostile.pick([0.03, 0.05, -0.1, float("nan"), 5.0])
    plan.candidates = [GraspCandidate(gripper_width=width)]
    plan.chosen_candidate = hostile.pick([0, 0, 0, 3, -1])
    bad = bad or not 0.0 <= width <= 0.08 or plan.chosen_candidate != 0
    return plan, bad


def sim_ready(graph):
    from vla_perception_interfaces.srv import GetGroundTruth

    ros, processes = graph
    truth = Caller(ros, GetGroundTruth, "/sim_camera/ground_truth")
    wait_for(lambda: truth(GetGroundTruth.Request()).success, START_TIMEOUT, "a first simulated frame")
    return ros, processes, truth


def test_sim_camera_refuses_non_finite_joints_and_keeps_streaming(graph):
    """Defect 3 over DDS: a NaN (or inf) joint once froze sim_camera for good, lock held in pybullet's IK."""
    from builtin_interfaces.msg import Duration
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from vla_perception_interfaces.msg import GraspCandidate, GraspPlan
    from vla_perception_interfaces.srv import ExecuteGrasp, GetGroundTruth

    ros, processes, truth = sim_ready(graph)
    execute = Caller(ros, ExecuteGrasp, "/sim_camera/execute")
    frames = ros.collect(Image, "/image", qos=qos_profile_sensor_data)
    for bad in (float("nan"), float("inf"), float("-inf")):
        plan = GraspPlan(candidates=[GraspCandidate(gripper_width=0.04)], trajectory=JointTrajectory(
            joint_names=ARM_JOINTS, points=[JointTrajectoryPoint(positions=HOME, time_from_start=Duration(sec=t))
                                            for t in (1, 2)]))
        plan.trajectory.points[-1].positions[3] = bad
        response = execute(ExecuteGrasp.Request(plan=plan, object_name="red_mug"))  # bounded: CALL_TIMEOUT
        assert not response.success and "finite" in response.message, response.message
        seen = len(frames)
        wait_for(lambda seen=seen: len(frames) > seen, 10.0, "a camera frame after the refused trajectory")  # 1 fps
        assert truth(GetGroundTruth.Request()).success
    assert processes["sim_camera"].alive()


def test_fuzz_sim_camera(graph):
    from vla_perception_interfaces.srv import ExecuteGrasp, GetGroundTruth

    ros, processes, truth = sim_ready(graph)
    execute = Caller(ros, ExecuteGrasp, "/sim_camera/execute")

    def known_good():
        response = truth(GetGroundTruth.Request())
        assert response.success, response.message
        assert "red_mug" in response.names

    def one_case(hostile):
        plan, bad_plan = _plan(hostile)
        name = hostile.pick(["", "red_mug", "no_such_object", hostile.text()[:30]])
        response = execute(ExecuteGrasp.Request(plan=plan, object_name=name))
        run.expect(response, True if (bad_plan or name not in ("", "red_mug")) else None, "execute request")

    run = FuzzRun("test_fuzz_sim_camera", SEED + 5, processes["sim_camera"])
    run.play(one_case, known_good)


def test_fuzz_grasp_orchestrator(graph):
    from rclpy.action import ActionClient
    from sensor_msgs.msg import JointState

    from vla_perception_interfaces.action import Pick
    from vla_perception_interfaces.srv import EstimatePoses, GetGroundTruth, PlanGrasp

    ros, processes, truth = sim_ready(graph)
    plan_grasp = Caller(ros, PlanGrasp, "/grasp_orchestrator/plan_grasp")
    estimate = Caller(ros, EstimatePoses, "/pose_node/estimate")
    wait_for(lambda: estimate(EstimatePoses.Request(detections=truth(GetGroundTruth.Request()).detections)).success,
             60.0, "sim frames reaching pose_node")
    joint_states = ros.node.create_publisher(JointState, "/joint_states", 10)
    pick = ActionClient(ros.node, Pick, "/grasp_orchestrator/pick")
    assert pick.wait_for_server(timeout_sec=DISCOVERY_TIMEOUT)

    def known_good():
        """The orchestrator plans from the latest joint state: a sane one first (a fuzzed one may collide)."""
        def planned():
            joint_states.publish(JointState(name=ARM_JOINTS, position=HOME))
            response = plan_grasp(PlanGrasp.Request(command="pick up the red mug"))
            return response.success and response.plan.object.label == "red mug"

        wait_for(planned, CALL_TIMEOUT, "a known-good plan after restoring the home joint state", interval=0.2)

    def one_case(hostile):
        kind = hostile.rng.random()
        if kind < 0.6:
            names = hostile.pick([ARM_JOINTS, ARM_JOINTS[:3], [], ["x"] * 7])
            positions = [hostile.pick([0.0, 0.3, float("nan"), float("inf"), 1e9])
                         for _ in range(hostile.pick([7, 3, 0]))]
            joint_states.publish(JointState(name=names, position=positions))
        elif kind < 0.9:
            command = hostile.text()
            response = plan_grasp(PlanGrasp.Request(command=command))
            run.expect(response, True if blank(command) else None, f"plan_grasp request {command[:40]!r}")
        else:
            goal = Pick.Goal(command=hostile.text(), timeout=hostile.pick([0.0, 5.0, -1.0, float("nan")]))
            future = pick.send_goal_async(goal)
            wait_for(future.done, 10.0, "HANG: no accept/reject for a Pick goal", interval=0.002)
            handle = future.result()
            if handle.accepted:
                result = handle.get_result_async()
                wait_for(result.done, CALL_TIMEOUT, "HANG: no Pick result", interval=0.002)
                bad_goal = blank(goal.command) or not math.isfinite(goal.timeout) or goal.timeout < 0
                run.expect(result.result().result, True if bad_goal else None, f"Pick goal {goal.command[:40]!r}")

    run = FuzzRun("test_fuzz_grasp_orchestrator", SEED + 6, processes["grasp_orchestrator"])
    run.play(one_case, known_good)


def test_a_pick_goal_with_a_negative_or_nan_timeout_is_rejected(graph):
    """Regression (fuzz suite): such a goal was accepted and run with no timeout at all."""
    from rclpy.action import ActionClient

    from vla_perception_interfaces.action import Pick

    ros, processes = graph
    pick = ActionClient(ros.node, Pick, "/grasp_orchestrator/pick")
    assert pick.wait_for_server(timeout_sec=START_TIMEOUT)
    for timeout in (-1.0, float("nan"), float("inf")):
        future = pick.send_goal_async(Pick.Goal(command="pick up the red mug", timeout=timeout))
        wait_for(future.done, CALL_TIMEOUT, "HANG: no accept/reject for a Pick goal", interval=0.002)
        assert not future.result().accepted, f"a goal with timeout {timeout} was accepted"
    assert processes["grasp_orchestrator"].alive()
