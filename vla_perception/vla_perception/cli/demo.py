"""``vla-perception demo [sentence]``: the simulated pick, end to end, with a picture of the plan.

Starts the ``sim_demo`` graph of config/graph.yaml with the bringup supervisor (only the
nodes the mode needs), waits until it is ready, sends the orchestrator's ``~/pick`` goal
with execution, prints every stage with its timing and whether the object was lifted,
writes the camera frame with the detections and the planned approach drawn in
(``--output``, default out/demo.png), and stops every process it started.

Both modes run detector_node -> clip_node re-rank -> pose_node -> planner over DDS; which
detector and CLIP, is chosen by what is on this machine (``--profile`` forces one):

- real: the default profile's Grounding DINO weights are present (Hugging Face cache or
  local path): detector_node finds the object, clip_node re-ranks when CLIP's weights
  are there too;
- sim: no real weights. detector_node runs its simulation backend (``backend:=sim``: the
  simulator's boxes with noise, confusions and distractor boxes; not a model) and clip_node
  re-ranks with the tiny random-weight CLIP (built on the fly; its scores carry no meaning,
  the message path is the production one). The output says so.

Exit code 0 when the object was lifted, 1 otherwise (2 for a graph that did not come up).
"""
from __future__ import annotations

import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np

from vla_perception import names
from vla_perception.bringup.environment import ros_environment
from vla_perception.bringup.graph import bringup_nodes, load_graph, resolve_arguments
from vla_perception.cli.pick import format_feedback, send_pick, wait_until

DEFAULT_SENTENCE = "pick up the red mug"
DEMO_BRINGUP = "sim_demo"
UNUSED_NODES = {names.VLM_NODE}  # the demo does not verify (vla-perception pick --verify does)
ACTIVE = 3  # lifecycle_msgs/State id


class DemoError(RuntimeError):
    """The graph did not come up or a node died; the message says which and why."""


# ----- which mode: real weights or tiny + ground truth ---------------------------------------------------
@dataclass
class Mode:
    real: bool
    profile: str
    nodes: list[str]
    parameters: dict[str, dict]  # node key -> parameter overrides
    notes: list[str] = field(default_factory=list)  # one line per stage: what it runs on
    missing: str = ""  # sim mode: why real weights are not used


def cached_weights(family: str) -> tuple[bool, str]:
    """Tell whether the default profile's weights of ``family`` are on disk, and name what was looked for.

    Looks only (never downloads): a local path must exist; a hub checkpoint must have its
    config and weights in the Hugging Face cache.
    """
    from vla_perception.core.models import resolve_model_source

    source = resolve_model_source("default", family, None)
    if source.local_path is not None:
        return source.local_path.exists(), str(source.local_path)
    if family == "clip":
        from vla_perception.cli.models import hub_repo

        repo, configs = hub_repo(source), ["open_clip_config.json"]
        weights = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    else:
        repo, configs, weights = source.hub_id, ["config.json"], ["model.safetensors", "pytorch_model.bin"]
    from huggingface_hub import try_to_load_from_cache

    def cached(filename: str) -> bool:
        found = try_to_load_from_cache(repo, filename, cache_dir=os.environ.get("HF_HUB_CACHE"))
        return isinstance(found, str)

    return all(map(cached, configs)) and any(map(cached, weights)), repo


def demo_nodes(graph: dict) -> list[str]:
    """The sim_demo bringup's nodes (config/graph.yaml) that a pick uses."""
    return [name for name in bringup_nodes(graph, DEMO_BRINGUP) if name not in UNUSED_NODES]


def choose_mode(requested: str, graph: Optional[dict] = None) -> Mode:
    nodes = demo_nodes(graph or load_graph())
    services_only = {"stream": False}  # the orchestrator calls them; streaming would only load the CPU
    stages = "localising/planning/execution: production code (pose_node on simulated depth, the embedded " \
             "roboplan planner, pybullet execution)"
    detector_ok, detector_id = (False, "") if requested == "tiny" else cached_weights("grounding_dino")
    if requested == "default" and not detector_ok:
        raise DemoError(f"--profile default: the Grounding DINO weights ({detector_id}) are not on this "
                        "machine; fetch them with `vla-perception models fetch`")
    if detector_ok:
        clip_ok, clip_id = cached_weights("clip")
        return Mode(True, "default", nodes if clip_ok else [n for n in nodes if n != names.CLIP_NODE],
                    {names.GRASP_ORCHESTRATOR: {"rerank": clip_ok}, names.DETECTOR_NODE: services_only,
                     names.CLIP_NODE: services_only}, [
                        f"detecting: Grounding DINO, real weights ({detector_id})",
                        f"re-ranking: CLIP, real weights ({clip_id})" if clip_ok
                        else f"re-ranking: skipped (no real CLIP weights: {clip_id})", stages,
                        "verifying: not run by the demo (vla-perception pick --verify with vlm_node)"])
    without = "tiny profile asked for" if requested == "tiny" else "no real detector weights"
    return Mode(False, "tiny", nodes, {names.GRASP_ORCHESTRATOR: {"rerank": True},
                                       names.DETECTOR_NODE: {**services_only, "backend": "sim"},
                                       names.CLIP_NODE: services_only}, [
        f"detecting: detector_node's simulation backend ({without}): the simulator's boxes with noise and "
        "distractors, through the Detect service (not a model)",
        "re-ranking: clip_node with the tiny random-weight CLIP (plumbing only: its scores mean nothing)",
        stages, "verifying: skipped (no real BLIP model in use)",
    ], missing="" if requested == "tiny" else f"{detector_id} is not in the Hugging Face cache")


def tiny_models_for(mode: Mode, directory: Path) -> None:
    """Sim mode: build the tiny CLIP the children load, unless VLA_PERCEPTION_MODELS names a set already."""
    from vla_perception.core.models.sources import TINY_ROOT_ENV

    if mode.real or os.environ.get(TINY_ROOT_ENV):
        return
    from vla_perception.core.models.tiny import make_tiny_models

    os.environ[TINY_ROOT_ENV] = str(make_tiny_models(directory / "tiny", families=("clip",)))


# ----- the graph ----------------------------------------------------------------------------------------
def graph_supervisor(graph: dict, mode: Mode, params_dir: Path, log):
    """Return a supervisor (not started) of the mode's sim_demo nodes, writing their output to ``log``."""
    from vla_perception.bringup.commands import node_command
    from vla_perception.bringup.graph import resolve_bringup
    from vla_perception.bringup.supervisor import ChildSpec, Supervisor

    specs = resolve_bringup(graph, "sim_demo", {"profile": mode.profile, "nodes": ",".join(mode.nodes)})
    specs = [replace(spec, parameters={**spec.parameters, **mode.parameters.get(spec.key, {})})
             for spec in specs]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    supervisor = Supervisor([ChildSpec(spec.name, node_command(spec, params_dir), env) for spec in specs],
                            output=log, stop_timeout=5.0, term_timeout=3.0,
                            report=lambda line: print(f"[supervisor] {line}", file=log, flush=True))
    return supervisor, specs


class DemoClient:
    """The demo's own rclpy node: camera frames, the orchestrator's markers, service calls."""

    def __init__(self, supervisor, topics: dict[str, str]):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from rclpy.signals import SignalHandlerOptions
        from sensor_msgs.msg import CameraInfo, Image
        from visualization_msgs.msg import MarkerArray

        self._rclpy, self.supervisor = rclpy, supervisor
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(f"vla_perception_demo_{os.getpid()}", context=self.context,
                                      start_parameter_services=False)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.image = self.camera_info = None
        self.path_points: Optional[np.ndarray] = None
        sensor_qos = qos_profile_sensor_data
        self.node.create_subscription(Image, topics["image_topic"], self._on_image, sensor_qos)
        self.node.create_subscription(CameraInfo, topics["camera_info_topic"], self._on_info, sensor_qos)
        self.node.create_subscription(MarkerArray, names.GRASP_MARKERS.absolute, self._on_markers, 10)

    def _on_image(self, msg) -> None:
        self.image = msg

    def _on_info(self, msg) -> None:
        self.camera_info = msg

    def _on_markers(self, msg) -> None:
        for marker in msg.markers:
            if marker.ns == "planned_path" and len(marker.points) >= 2:
                self.path_points = np.array([[p.x, p.y, p.z] for p in marker.points])

    def spin_once(self, seconds: float) -> None:
        """Spin, and fail at once when a node of the graph died."""
        exits = self.supervisor.poll()
        if exits:
            raise DemoError("\n".join(exited.describe() for exited in exits))
        self.executor.spin_once(timeout_sec=seconds)

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        """Response of one service call; None when the service is absent or silent within ``timeout``."""
        client = self.node.create_client(srv_type, name)
        try:
            if not wait_until(client.service_is_ready, timeout, self.spin_once):
                return None
            future = client.call_async(request)
            return future.result() if wait_until(future.done, timeout, self.spin_once) else None
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)


def wait_ready(client: DemoClient, mode: Mode, timeout: float) -> None:
    """Until frames reach the demo and pose_node, and every node answers (lifecycle nodes: active)."""
    from lifecycle_msgs.srv import GetState
    from vla_perception_interfaces.srv import EstimatePoses, GetGroundTruth

    lifecycle_models = [name for name in mode.nodes if name in (names.DETECTOR_NODE, names.CLIP_NODE)]

    def ready() -> bool:
        if client.image is None or client.camera_info is None:
            return False
        truth = client.call(GetGroundTruth, names.GROUND_TRUTH.absolute, GetGroundTruth.Request(), 2.0)
        if truth is None or not truth.success:
            return False
        estimate = client.call(EstimatePoses, names.ESTIMATE.absolute,
                               EstimatePoses.Request(detections=truth.detections), 2.0)
        if estimate is None or not estimate.success:  # pose_node has no depth frame yet
            return False
        for name in lifecycle_models:
            state = client.call(GetState, f"/{name}/get_state", GetState.Request(), 2.0)
            if state is None or state.current_state.id != ACTIVE:
                return False
        return True

    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise DemoError(f"the graph was not ready within {timeout:.0f} s (see the node log)")
        wait_until(lambda: False, 0.3, client.spin_once)


# ----- reporting ----------------------------------------------------------------------------------------
def world_height(truth, name: str) -> Optional[float]:
    if truth is None or not truth.success or name not in truth.names:
        return None
    return float(truth.world_poses[list(truth.names).index(name)].position.z)


# ----- the picture --------------------------------------------------------------------------------------
def demo_picture(before, after, detections, chosen: int, camera_info, camera_pose, plan, path_points,
                 caption_after: str) -> np.ndarray:
    """Frame before the pick with detections and the projected plan (if any), beside the frame after it."""
    from vla_perception.bridge.image import imgmsg_to_cv2
    from vla_perception.bridge.messages import pose_from_msg
    from vla_perception.core.drawing import draw_detections
    from vla_perception.core.geometry import CameraIntrinsics
    from vla_perception.core.projection import draw_plan, project_base_points

    frame = draw_detections(np.array(imgmsg_to_cv2(before, "rgb8")), detections,
                            highlight=chosen if chosen >= 0 else None)
    position, orientation = pose_from_msg(camera_pose)
    intrinsics = CameraIntrinsics.from_camera_info(camera_info)

    def project(points):
        return project_base_points(np.asarray(points, float), position, orientation, intrinsics)[0]

    approach = None
    if plan is not None and 0 <= plan.chosen_candidate < len(plan.candidates):
        candidate = plan.candidates[plan.chosen_candidate]
        approach = project([[p.position.x, p.position.y, p.position.z]
                            for p in (candidate.pre_grasp, candidate.grasp)])
    frame = draw_plan(frame, project(path_points) if path_points is not None else None, approach)
    title = "before: detections, planned path (blue), approach (green)" if plan is not None else \
        "before: detections (no plan)"
    panels = [caption(frame, title)]
    if after is not None:
        panels.append(caption(np.array(imgmsg_to_cv2(after, "rgb8")), f"after: {caption_after}"))
    return np.hstack(panels) if len(panels) == 2 and panels[0].shape == panels[1].shape else panels[0]


def caption(image: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((4, 4), text)
    draw.rectangle([0, 0, right + 4, bottom + 4], fill=(0, 0, 0))
    draw.text((4, 4), text, fill=(255, 255, 255))
    return np.asarray(canvas)


def picture_detections(mode: Mode, truth, plan):
    """Return the detections to draw (tiny: the simulator's boxes; real: the chosen one), chosen index."""
    from vla_perception.bridge.messages import box_from_msg, detections_from_msg
    from vla_perception.core.types import Detection

    use_truth = not mode.real and truth is not None and truth.success
    detections = detections_from_msg(truth.detections) if use_truth else []
    if plan is None:
        return detections, -1
    chosen_box = box_from_msg(plan.object.bbox)
    if not detections:
        return [Detection(plan.object.label, float(plan.object.score), chosen_box)], 0
    if chosen_box.area <= 0:
        return detections, -1
    overlaps = [chosen_box.iou(detection.box) for detection in detections]
    best = int(np.argmax(overlaps))
    return detections, best if overlaps[best] > 0.5 else -1


# ----- the command --------------------------------------------------------------------------------------
def add_arguments(parser, command):
    parser.add_argument("sentence", nargs="?", default=DEFAULT_SENTENCE,
                        help="what to pick (default: %(default)s)")
    parser.add_argument("--output", default="out/demo.png", help="picture to write (default: %(default)s)")
    parser.add_argument("--profile", choices=["auto", "default", "tiny"], default="auto",
                        help="auto: real weights when they are here, else the detector's simulation backend + "
                             "tiny CLIP")
    parser.add_argument("--ready-timeout", type=float, default=None,
                        help="seconds for the graph to come up (default: 180 sim mode, 300 with real models)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds for the pick (default: %(default)s)")
    parser.add_argument("--log", help="node output goes here (default: next to --output, .log)")


def say(line: str = "") -> None:
    print(line, flush=True)


def run(args) -> int:
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    ros_environment()
    started = time.monotonic()
    try:
        mode = choose_mode(args.profile)
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 2
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    log_path = Path(args.log) if args.log else output.with_suffix(".log")
    if not mode.real and not mode.missing:
        say("demo: --profile tiny: no real models; detector_node's simulation backend stands in for a "
            "detector model")
    elif not mode.real:
        say(f"demo: real model weights are not available here ({mode.missing}) -> running detector_node's "
            "simulation backend and the tiny CLIP instead; get real weights with `vla-perception models fetch`")
    kind = "real models" if mode.real else "tiny profile"
    say(f"demo: '{args.sentence}' in the simulated tabletop ({kind})")
    for note in mode.notes:
        say(f"  {note}")
    ready_timeout = args.ready_timeout or (300.0 if mode.real else 180.0)
    with open(log_path, "w") as log, tempfile.TemporaryDirectory(prefix="vla_demo_") as params_dir:
        graph = load_graph()
        tiny_models_for(mode, Path(params_dir))
        supervisor, specs = graph_supervisor(graph, mode, Path(params_dir), log)
        client = None
        previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` must stop the nodes too
        try:
            supervisor.start()
            say(f"demo: started {', '.join(spec.name for spec in specs)} "
                f"(ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, node output in {log_path})")
            client = DemoClient(supervisor, resolve_arguments(graph))
            return pick_and_draw(client, mode, args, output, ready_timeout, started)
        except DemoError as error:
            say(f"demo: FAILED: {error}")
            return 2
        except KeyboardInterrupt:
            say("demo: interrupted")
            return 130
        finally:
            if client is not None:
                client.close()
            stop_graph(supervisor)
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def pick_and_draw(client: DemoClient, mode: Mode, args, output: Path, ready_timeout: float,
                  started: float) -> int:
    from vla_perception_interfaces.srv import GetGroundTruth

    wait_ready(client, mode, ready_timeout)
    say(f"demo: graph ready after {time.monotonic() - started:.1f} s")
    before_truth = client.call(GetGroundTruth, names.GROUND_TRUTH.absolute, GetGroundTruth.Request())
    before_image = client.image
    say(f"demo: sending the pick goal (execute) to {names.PICK.absolute}")
    sent = time.monotonic()
    outcome = send_pick(client.node, client.spin_once, names.PICK.absolute, args.sentence, execute=True,
                        timeout=args.timeout, on_feedback=lambda *fb: say("  " + format_feedback(*fb)))
    total = time.monotonic() - sent
    if outcome.interrupted:
        raise KeyboardInterrupt
    if outcome.result is None:
        raise DemoError(outcome.error)
    result = outcome.result
    durations = ", ".join(f"{stage} {seconds:.2f} s"
                          for stage, seconds in zip(result.stage_names, result.stage_seconds))
    say(f"demo: stage timings: {durations} (total {total:.2f} s)")
    if not (outcome.status == 4 and result.success):
        say(f"demo: the pick failed at {result.failed_stage or '?'}: {result.message}")
        write_picture(client, mode, output, before_image, before_truth, None,
                      f"pick failed at {result.failed_stage or '?'}")
        return 1
    say(f"demo: {result.message}")
    plan = result.plan
    candidate = plan.candidates[plan.chosen_candidate] if 0 <= plan.chosen_candidate < len(plan.candidates) \
        else None
    say(f"demo: chose '{plan.object.label}'; planner {plan.planner} in {plan.planning_time:.2f} s, "
        f"{len(plan.trajectory.points)} + {len(plan.lift_trajectory.points)} trajectory points"
        + (f", {candidate.approach_type} grasp" if candidate else ""))
    # the lift takes a frame to show: wait for one rendered after the result (and for the path markers)
    after_image = client.image
    wait_until(lambda: client.image is not after_image and client.path_points is not None, 2.0,
               client.spin_once)
    after_truth = client.call(GetGroundTruth, names.GROUND_TRUTH.absolute, GetGroundTruth.Request())
    stamp = result.header.stamp
    say(f"demo: every stage used the snapshot stamped {stamp.sec}.{stamp.nanosec:09d}")
    if not result.executed:
        say("demo: the plan was not executed")
        return 1
    say(f"demo: executor: {result.execution_report}")
    name = picked_name(before_truth, result.object)
    z_before, z_after = world_height(before_truth, name), world_height(after_truth, name)
    if z_before is not None and z_after is not None:
        say(f"demo: ground truth: '{name}' centre z {z_before:.3f} m -> {z_after:.3f} m")
    say(f"demo: '{result.object.label}' {'LIFTED' if result.lifted else 'NOT lifted'} "
        f"({result.lift_height * 1000:.0f} mm)")
    write_picture(client, mode, output, before_image, before_truth, plan, result.execution_report)
    return 0 if result.lifted else 1


def picked_name(truth, chosen) -> str:
    """The simulator's name of the object whose true 2D box overlaps the chosen object's box most."""
    from vla_perception.bridge.messages import box_from_msg, detections_from_msg

    if truth is None or not truth.success or not truth.names:
        return ""
    box = box_from_msg(chosen.bbox)
    overlaps = [box.iou(detection.box) for detection in detections_from_msg(truth.detections)]
    return truth.names[int(np.argmax(overlaps))] if max(overlaps) > 0 else ""


def write_picture(client: DemoClient, mode: Mode, output: Path, before_image, before_truth, plan,
                  caption_after: str) -> None:
    from PIL import Image

    camera_pose = before_truth.camera_pose if before_truth is not None and before_truth.success else None
    if camera_pose is None or before_image is None or client.camera_info is None:
        say("demo: no picture: the camera frame or pose is missing")
        return
    detections, chosen = picture_detections(mode, before_truth, plan)
    path = client.path_points if plan is not None else None
    picture = demo_picture(before_image, client.image, detections, chosen, client.camera_info, camera_pose,
                           plan, path, caption_after)
    Image.fromarray(picture).save(output)
    say(f"demo: picture written to {output} ({picture.shape[1]}x{picture.shape[0]})")


def stop_graph(supervisor) -> None:
    """Stop every node (SIGINT, then SIGTERM, then SIGKILL) and say whether any process stayed behind."""
    from vla_perception.bringup.supervisor import group_running

    pids = supervisor.pids()
    codes = supervisor.stop()
    left = [name for name, pid in pids.items() if group_running(pid)]
    summary = ", ".join(f"{name} ({code})" for name, code in codes.items())
    say(f"demo: stopped {summary}; " + (f"STILL RUNNING: {', '.join(left)}" if left else "no process left"))
