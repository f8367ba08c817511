"""grasp_orchestrator: "pick up the red cup on the left" -> a grasp plan, every stage visible.

Action ``~/pick`` (feedback per stage, cancellable) and service ``~/plan_grasp`` run the
same pipeline (vla_perception.core.pick_pipeline) over the other nodes' services:
detector_node ``~/detect``, clip_node ``~/classify`` to re-rank, pose_node ``~/estimate``, then
the planner in-process; with execution, sim_camera ``~/execute``; with verify, vlm_node
``~/answer``; with ``grounding`` rules_then_vlm or vlm, vlm_node ``~/ask`` chooses the object.
Publishes ``~/markers``: the chosen object, the grasp candidates and the planned path.

One snapshot per pick: the node pairs ``image``, ``depth`` and ``camera_info`` by stamp; when a
pick starts it takes the newest set and sends that same colour image to detect and classify,
the same depth and camera_info (and image) to estimate, and looks the camera pose up at the
same stamp, so every stage sees one moment even when the camera or the scene moves. The
result's header and the feedback carry that stamp. (``pin_snapshot:=false`` sends no images
and lets each node use its latest frame: for debugging only.)
"""
from __future__ import annotations

import json
import math
import sys
import threading
import time
from typing import Optional

import rclpy
from builtin_interfaces.msg import Time
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from vla_perception import names
from vla_perception.bridge.grasp_messages import grasp_plan_msg, plan_markers
from vla_perception.bridge.messages import (
    box_to_msg,
    detections_from_msg,
    detections_to_msg,
    object_from_msg,
    object_to_msg,
)
from vla_perception.bridge.services import ServiceCallError, call_service
from vla_perception.bridge.snapshot import SnapshotSource
from vla_perception.bridge.transforms import CameraExtrinsics
from vla_perception.core import grounding, orchestration
from vla_perception.core.pick_pipeline import Execution, PickSteps, run_pick
from vla_perception.core.planning import PlannerUnavailable, make_planner
from vla_perception.nodes.lifecycle import GuardedNode, run_node
from vla_perception_interfaces.action import Pick
from vla_perception_interfaces.srv import (
    AnswerQuestion, Ask, Classify, Detect, EstimatePoses, ExecuteGrasp, GetGroundTruth, PlanGrasp)

SERVICES = {  # client key -> (service type, parameter naming it)
    "detect": (Detect, "detector_service"), "classify": (Classify, "classifier_service"),
    "estimate": (EstimatePoses, "pose_service"), "answer": (AnswerQuestion, "vlm_service"),
    "ask": (Ask, "ask_service"),
    "ground_truth": (GetGroundTruth, "ground_truth_service"), "execute": (ExecuteGrasp, "execute_service"),
}

DECLARED_PARAMETERS = orchestration.PARAMS


# Requests queued per action service: rclpy's default (10) silently dropped half of a burst of 20 goals.
ACTION_QUEUE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)

# Parameters the node builds its planner, extrinsics and service clients from: fixed after start.
BUILT_AT_START = ("planner", "base_frame", "camera_pose", "use_tf", "sync_slop",
                  *(param for _, param in SERVICES.values()))


class GraspOrchestrator(GuardedNode):
    def __init__(self):
        super().__init__(names.GRASP_ORCHESTRATOR)
        self.declare_specs(orchestration.PARAMS, read_only=BUILT_AT_START)
        self.params = orchestration.Settings(**self.read_specs(orchestration.PARAMS))
        # the other parameters apply from the next pick on (a running pick keeps its settings)
        self.add_post_set_parameters_callback(self._reread_parameters)
        # logs "planner: <name> (<why>)"; an explicit planner that cannot start raises PlannerUnavailable
        self.planner = make_planner(self.params.planner, namespace=self.get_namespace(),
                                    log=self.get_logger().info)
        self.extrinsics = CameraExtrinsics(self, self.params.base_frame, self.params.camera_in_base(),
                                           self.params.use_tf)
        self.get_logger().info(f"detection source: {self.params.detection_source}; "
                               f"camera extrinsics from {self.extrinsics.source}; one snapshot per pick: "
                               f"{self.params.pin_snapshot}")
        group = ReentrantCallbackGroup()
        self._service_clients = {key: self.create_client(srv_type, getattr(self.params, param), callback_group=group)
                         for key, (srv_type, param) in SERVICES.items()}
        self._joints = None
        self.snapshots = SnapshotSource(self, self.params.sync_slop)
        self.create_subscription(JointState, "joint_states", self._on_joints, 10, callback_group=group)
        self._markers = self.create_publisher(MarkerArray, names.GRASP_MARKERS.private, 10)
        self._busy = threading.Lock()  # one pick at a time: the arm cannot do two
        self.create_service(PlanGrasp, names.PLAN_GRASP.private, self._plan_grasp, callback_group=group)
        self._action = ActionServer(
            self, Pick, names.PICK.private,
            execute_callback=self.guard.action(names.PICK.private, self._execute_pick, Pick.Result),
            goal_callback=self.guard.callback(f"{names.PICK.private} goal", self._accept,
                                              lambda *_: GoalResponse.REJECT),
            cancel_callback=lambda _: CancelResponse.ACCEPT, callback_group=group,
            goal_service_qos_profile=ACTION_QUEUE, cancel_service_qos_profile=ACTION_QUEUE,
            result_service_qos_profile=ACTION_QUEUE)

    def _reread_parameters(self, _parameters) -> None:
        self.params = orchestration.Settings(**self.read_specs(orchestration.PARAMS))

    def _on_joints(self, msg: JointState) -> None:
        joints = orchestration.arm_joints_from_state(msg.name, msg.position)
        if joints is None:
            self.get_logger().warning("ignored a joint_states message without 7 finite arm joints",
                                      throttle_duration_sec=5.0)
            return
        self._joints = joints

    def _call(self, key: str, request, stage_timeout: float = 0.0, deadline: float = math.inf):
        """Call one of the other nodes' services within the stage timeout and the goal's deadline."""
        stage_timeout = stage_timeout or self.params.stage_timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServiceCallError(f"the goal's timeout passed before calling {self._service_clients[key].srv_name}")
        return call_service(self._service_clients[key], request, min(stage_timeout, remaining))

    def _header(self, context: Optional[orchestration.PickContext] = None) -> Header:
        """Base-frame header stamped with the pick's snapshot; unpinned, its detections' frame; else now."""
        stamp = context.stamp or getattr(context.header, "stamp", None) if context is not None else None
        return Header(stamp=stamp or self.get_clock().now().to_msg(), frame_id=self.params.base_frame)

    # ----- the stages' work: calls to the other nodes ----------------------------------------
    def _ask_vlm_for_object(self, command, detections, objects, image: Image) -> int:
        request = Ask.Request(image=image, prompt=grounding.grounding_prompt(command, detections, objects),
                              json_schema=json.dumps(grounding.ANSWER_SCHEMA), max_new_tokens=16)
        response = self._call("ask", request)  # the pick's snapshot (empty, unpinned: vlm_node's latest frame)
        if not response.success:
            raise grounding.GroundingError(f"the VLM could not choose: {response.message}")
        return grounding.parse_choice(response.answer, len(detections))

    def _steps(self, context: orchestration.PickContext, on_stage, deadline: float) -> PickSteps:
        p = self.params

        def call(key, request):
            return self._call(key, request, p.stage_timeout, deadline)

        def image():  # the snapshot is taken by the first stage: read it when a stage runs
            return context.snapshot.image if context.snapshot is not None else Image()

        def detect(phrase):
            if p.detection_source == "ground_truth":
                truth = call("ground_truth", GetGroundTruth.Request(stamp=context.stamp or Time()))
                context.names = list(truth.names)
                found = truth.detections
                matched = orchestration.match_ground_truth(phrase, detections_from_msg(found))
            else:
                found = call("detect", Detect.Request(image=image(), prompt=phrase, box_threshold=p.query_threshold,
                                                      text_threshold=p.query_threshold)).detections
                matched = orchestration.accept_detections(phrase, detections_from_msg(found), p.box_threshold)
            context.remember_frame(found.header, (found.image_width, found.image_height), found.prompt)
            return matched

        def rerank(phrase, detections):
            request = Classify.Request(image=image(), labels=orchestration.rerank_labels(phrase, detections),
                                       boxes=[box_to_msg(d.box) for d in detections])
            return [result.scores[0] for result in call("classify", request).results]

        def localise(detections):
            request = EstimatePoses.Request(detections=detections_to_msg(detections, context.header,
                                                                         context.image_size, context.prompt))
            if context.snapshot is not None:
                snapshot = context.snapshot
                request.depth, request.camera_info, request.image = snapshot.depth, snapshot.camera_info, image()
            response = call("estimate", request)
            pairs = [(o.id, object_from_msg(o)) for o in response.objects.objects]
            return orchestration.align_objects(len(detections), pairs), list(response.rejected)

        def plan(target, obstacles):
            orchestration.require_in_workspace(target, p.support_plane_z, p.max_reach, p.base_frame)
            start = self._joints or p.start_joints
            return orchestration.require_plan(self.planner.plan_for(target, obstacles, start))

        def execute(plan_result, index):
            if self.planner.executes:  # MoveIt: its own trajectory execution on the robot; no lift measured
                report = self.planner.execute(plan_result)
                context.executed_at = self.get_clock().now().nanoseconds * 1e-9
                return Execution(False, 0.0, report)
            request = ExecuteGrasp.Request(plan=grasp_plan_msg(plan_result, None, self._header()),
                                           object_name=context.object_name(context.detections[index]))
            response = call("execute", request)
            context.executed_at = self.get_clock().now().nanoseconds * 1e-9
            return Execution(response.lifted, float(response.lift_height), response.message,
                             response.measured_object)

        def verify():
            question = p.verify_question.format(object=context.phrase)
            frame = self._verify_frame(context)
            context.verify_stamp = frame.header.stamp
            return call("answer", AnswerQuestion.Request(image=frame, question=question)).answer

        def parse(command):
            parsed = orchestration.parse(command)
            context.phrase = parsed.phrase
            return parsed

        def select(parsed, detections, objects, references):
            context.detections = detections
            choice = grounding.choose(
                p.grounding, lambda: orchestration.select(parsed, detections, objects, references),
                lambda: self._ask_vlm_for_object(parsed.text, detections, objects, image()))
            if p.grounding != "rules":  # say which path chose when more than one could have
                on_stage("localising", f"'{detections[choice.index].label}' {choice.describe()}")
            return choice.index

        rerank_step = rerank if p.rerank and p.detection_source == "detector" else None
        return PickSteps(parse=parse, detect=detect, localise=localise, select=select, plan=plan,
                         rerank=rerank_step, execute=execute, verify=verify,
                         references_optional=p.grounding != "rules")

    def _verify_frame(self, context: orchestration.PickContext) -> Image:
        """After execution: a frame taken after it ended; else the pick's snapshot. Not pinned: vlm_node's latest."""
        if context.snapshot is None:
            return Image()
        if context.executed_at is not None:
            return self.snapshots.take(self.params.snapshot_timeout, after=context.executed_at).image
        return context.snapshot.image

    # ----- entry points -----------------------------------------------------------------------
    def _run(self, command: str, execute: bool, verify: bool, on_stage, cancelled,
             context: orchestration.PickContext, deadline: float = math.inf):
        steps = self._steps(context, on_stage, deadline)
        if self.params.pin_snapshot:
            steps.snapshot = lambda: self._take_snapshot(context)
        camera_in_base = lambda: self.extrinsics.camera_in_base(context.frame_id, context.stamp)  # noqa: E731
        result = run_pick(command, steps, camera_in_base, execute, verify, on_stage, cancelled)
        header = self._header(context)
        plan_msg = grasp_plan_msg(result.plan, result.target, header) if result.plan is not None else None
        if result.target is not None:
            path = self._tcp_path(result.plan)
            self._markers.publish(plan_markers(result.target, result.plan, header, path))
        timings = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in result.stage_times.items())
        self.get_logger().info(f"'{command}': {result.message} [{timings}]")
        return result, plan_msg

    def _take_snapshot(self, context: orchestration.PickContext) -> str:
        context.snapshot = self.snapshots.take(self.params.snapshot_timeout)
        stamp = context.stamp
        return f"{context.snapshot.header.frame_id} at {stamp.sec}.{stamp.nanosec:09d}"

    def _tcp_path(self, plan):
        if plan is None or plan.trajectory.empty or not hasattr(self.planner, "tcp_pose"):
            return None
        return [self.planner.tcp_pose(q)[:3, 3] for q in plan.trajectory.positions]

    def _plan_grasp(self, request, response):
        if not self._busy.acquire(blocking=False):
            response.success, response.message = False, "busy: another pick is running"
            return response
        try:
            result, plan_msg = self._run(request.command, request.execute, False, lambda *_: None,
                                         lambda: False, orchestration.PickContext())
        finally:
            self._busy.release()
        response.success, response.message = result.success, result.message
        response.failed_stage = result.failed_stage
        if plan_msg is not None:
            response.plan = plan_msg
        return response

    def _accept(self, goal_request) -> GoalResponse:
        """Accept only when idle, and hold the arm for the accepted goal until it ends.

        Taking the lock here, not in execute, makes accept/reject atomic: a burst of goals
        gets one accept and fast rejects, never several accepts queued behind the lock.
        A timeout that is negative or not finite is rejected: it would mean "no timeout".
        """
        if not (math.isfinite(goal_request.timeout) and goal_request.timeout >= 0.0):
            self.get_logger().warning(f"rejected a Pick goal with timeout {goal_request.timeout}: must be >= 0 "
                                      "(0: the per-stage timeouts)", throttle_duration_sec=5.0)
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT if self._busy.acquire(blocking=False) else GoalResponse.REJECT

    def _execute_pick(self, goal_handle):
        try:
            return self._pick(goal_handle)
        finally:
            self._busy.release()  # taken by _accept

    def _pick(self, goal_handle):
        goal = goal_handle.request
        started = time.monotonic()
        deadline = started + goal.timeout if goal.timeout > 0 else math.inf
        context = orchestration.PickContext()

        def on_stage(stage, detail):
            elapsed = float(time.monotonic() - started)
            goal_handle.publish_feedback(Pick.Feedback(stage=stage, detail=detail, elapsed=elapsed,
                                                       snapshot_stamp=context.stamp or Time()))

        def out_of_time() -> bool:
            return goal.timeout > 0 and time.monotonic() - started > goal.timeout

        result, plan_msg = self._run(goal.command, goal.execute, goal.verify, on_stage,
                                     lambda: goal_handle.is_cancel_requested or out_of_time(), context, deadline)
        if out_of_time() and not goal_handle.is_cancel_requested and not result.success:
            stopped_between_stages = result.message == f"{result.failed_stage}: cancelled"
            cause = "" if stopped_between_stages else f" ({result.message.split(': ', 1)[-1]})"
            result.message = f"{result.failed_stage}: the goal's timeout of {goal.timeout:.1f} s passed{cause}"
        outcome = pick_result_msg(result, plan_msg, self._header(context), context.verify_stamp)
        if result.success:  # a cancel that came after the last stage started did not stop the pick
            goal_handle.succeed()
        elif goal_handle.is_cancel_requested:
            goal_handle.canceled()
        else:
            goal_handle.abort()
        return outcome


def pick_result_msg(result, plan_msg, header: Header, verify_stamp) -> Pick.Result:
    """The action's result from the pipeline's: outcome, chosen object, execution, verify answer, stage times."""
    outcome = Pick.Result(success=result.success, message=result.message, failed_stage=result.failed_stage,
                          header=header, verify_answer=result.verify_answer,
                          stage_names=list(result.stage_times),
                          stage_seconds=[float(seconds) for seconds in result.stage_times.values()])
    if result.target is not None:
        outcome.object_found, outcome.object = True, object_to_msg(result.target, result.chosen)
    if plan_msg is not None:
        outcome.plan = plan_msg
    if result.execution is not None:
        execution = result.execution
        outcome.executed, outcome.lifted = True, bool(execution.lifted)
        outcome.lift_height, outcome.execution_report = float(execution.lift_height), str(execution)
        outcome.measured_object = execution.measured_object
    if verify_stamp is not None:
        outcome.verify_stamp = verify_stamp
    return outcome


def main(args=None):
    try:
        run_node(GraspOrchestrator, args)
    except PlannerUnavailable as error:  # one clear line, no traceback: the node cannot do its job
        rclpy.logging.get_logger("grasp_orchestrator").fatal(str(error))
        rclpy.try_shutdown()
        sys.exit(1)


if __name__ == "__main__":
    main()
