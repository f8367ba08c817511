"""grasp_orchestrator end to end over DDS, detector in the loop.

sim_camera, detector_node, clip_node, pose_node, vlm_node and orchestrators run as processes.

detector_node runs its simulation backend (backend:=sim: the simulator's boxes with noise and
distractors, not a model); clip_node and vlm_node run tiny random-weight models, so re-ranking and
the verify answer test the plumbing, not what the scores or answer mean. The slow and stuck detect
services below are test-side stand-ins whose only job is to make a stage take long (for
cancellation and timeouts); the fast path is the production graph.
"""
import threading
import time

import pytest
from ros_harness import NodeProcess, RosClient, ros_env, wait_for, write_params

from vla_perception import names


def orchestrator(name: str, directory: str, **params) -> NodeProcess:
    base = {"planner": "embedded", "stage_timeout": 20.0}
    path = write_params(name, {**base, **params}, directory)
    return NodeProcess("vla_perception.nodes.grasp_orchestrator", ["-r", f"__node:={name}", "--params-file", path],
                       name=name)


def lifecycle_node(name: str, directory: str, tiny_models_dir, **params) -> NodeProcess:
    path = write_params(name, {"autostart": True, "stream": False, **params}, directory)
    return NodeProcess(f"vla_perception.nodes.{name}", ["--params-file", path],
                       env=ros_env(VLA_PERCEPTION_MODELS=str(tiny_models_dir)))


@pytest.fixture(scope="module")
def graph(tmp_path_factory, tiny_models_dir):
    from vla_perception_interfaces.srv import Detect

    directory = str(tmp_path_factory.mktemp("params"))
    processes = [
        NodeProcess("vla_perception.nodes.sim_camera", ["--params-file",
                                                         write_params("sim_camera", {"rate": 2.0}, directory)]),
        lifecycle_node("detector_node", directory, tiny_models_dir, backend="sim"),
        lifecycle_node("clip_node", directory, tiny_models_dir, profile="tiny"),
        NodeProcess("vla_perception.nodes.pose_node", ["--params-file",
                                                        write_params("pose_node", {"autostart": True}, directory)]),
        lifecycle_node("vlm_node", directory, tiny_models_dir, profile="tiny"),
        orchestrator("orch", directory),
        orchestrator("orch_slow", directory, detector_service="/slow/detect"),
        orchestrator("orch_stuck", directory, detector_service="/stuck/detect", stage_timeout=1.0),
        orchestrator("orch_no_detector", directory, detector_service="/nobody/detect", stage_timeout=2.0),
    ]
    client = RosClient("orchestrator_test")
    real_detect = client.node.create_client(Detect, names.DETECT.absolute)

    def slow(request, response):  # forwards to detector_node, 2 s late
        time.sleep(2.0)
        done = threading.Event()
        future = real_detect.call_async(request)
        future.add_done_callback(lambda _: done.set())
        done.wait(10.0)
        return future.result() or response

    def stuck(request, response):
        time.sleep(STUCK_SECONDS)
        return response

    from rclpy.callback_groups import ReentrantCallbackGroup

    group = ReentrantCallbackGroup()
    client.node.create_service(Detect, "/slow/detect", slow, callback_group=group)
    client.node.create_service(Detect, "/stuck/detect", stuck, callback_group=group)
    try:
        wait_until_the_graph_answers(client)
        yield client
    finally:
        client.close()
        for process in reversed(processes):
            process.stop()


STUCK_SECONDS = 4.0


def wait_until_the_graph_answers(client):
    """Until detector_node and clip_node are active and pose_node holds a depth frame."""
    from vla_perception_interfaces.srv import Classify, Detect, EstimatePoses, GetGroundTruth

    client.wait_for_service(GetGroundTruth, names.GROUND_TRUTH.absolute, 180.0)  # pybullet start on a busy machine

    def ready():
        try:
            detected = client.call(Detect, names.DETECT.absolute, Detect.Request(prompt="red mug"))
            return (detected.success and client.call(Classify, names.CLASSIFY.absolute, Classify.Request()).success
                    and client.call(EstimatePoses, names.ESTIMATE.absolute,
                                    EstimatePoses.Request(detections=detected.detections)).success)
        except TimeoutError:  # a node still starting on a loaded machine
            return False

    wait_for(ready, 240.0, "detector_node, clip_node and pose_node answering")


def wait_until_pose_node_has_depth(client):
    """Until sim_camera answers and pose_node localises its true boxes (used by test_grounding_e2e)."""
    from vla_perception_interfaces.srv import EstimatePoses, GetGroundTruth

    client.wait_for_service(GetGroundTruth, names.GROUND_TRUTH.absolute, 120.0)  # pybullet start on a busy machine

    def ready():
        truth = client.call(GetGroundTruth, names.GROUND_TRUTH.absolute, GetGroundTruth.Request())
        return truth.success and client.call(EstimatePoses, names.ESTIMATE.absolute,
                                             EstimatePoses.Request(detections=truth.detections)).success

    wait_for(ready, 60.0, "sim_camera frames reaching pose_node")


def send_pick(client, action: str, command: str, execute=False, cancel_after=None, timeout=60.0):
    from vla_perception_interfaces.action import Pick

    action_client = client.action_client(Pick, action)
    assert action_client.wait_for_server(timeout_sec=20.0), f"{action} not available"
    feedback = []
    goal_future = action_client.send_goal_async(Pick.Goal(command=command, execute=execute),
                                                feedback_callback=lambda msg: feedback.append(msg.feedback))
    wait_for(goal_future.done, 20.0, "goal acceptance")
    handle = goal_future.result()
    assert handle.accepted
    if cancel_after is not None:
        wait_for(lambda: any(f.stage == cancel_after for f in feedback), 20.0, f"feedback '{cancel_after}'")
        cancel_future = handle.cancel_goal_async()
        wait_for(cancel_future.done, 10.0, "cancel response")
    outcome = wait_for_result(handle, timeout, f"result of '{command}'")
    return outcome.status, outcome.result, feedback


def wait_for_result(handle, timeout: float, what: str, ask_again_after: float = 10.0):
    """The goal's result, asked for again now and then.

    A new action client's first result response can be lost while the server has not yet
    discovered the client's reply reader.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        future = handle.get_result_async()
        remaining = deadline - time.monotonic()
        try:
            wait_for(future.done, max(0.0, min(ask_again_after, remaining)), what)
            return future.result()
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} (waited {timeout:.0f} s)") from None


def test_pick_reports_stages_in_order_and_returns_an_executed_plan(graph):
    from action_msgs.msg import GoalStatus
    from visualization_msgs.msg import Marker, MarkerArray

    markers = graph.collect(MarkerArray, "/orch/markers")
    status, result, feedback = send_pick(graph, "/orch/pick", "pick up the red mug", execute=True)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    stages = [f.stage for f in feedback]
    assert stages == ["snapshot", "parsing", "detecting", "re-ranking", "localising", "localising", "planning",
                      "executing"]
    assert [f.elapsed for f in feedback] == sorted(f.elapsed for f in feedback)
    snapshot = result.header.stamp
    assert snapshot.sec > 0 and all(f.snapshot_stamp == snapshot for f in feedback[1:])
    plan = result.plan
    assert plan.object.label == "red mug" and plan.planner == "embedded"
    assert plan.header.frame_id == result.header.frame_id == "panda_link0" and plan.header.stamp == snapshot
    assert len(plan.trajectory.points) > 2 and len(plan.lift_trajectory.points) > 2
    assert 0 <= plan.chosen_candidate < len(plan.candidates)
    assert plan.candidates[plan.chosen_candidate].approach_type in ("top", "side")
    assert result.object_found and result.object.label == "red mug" and result.object.pose == plan.object.pose
    assert result.executed and result.lifted and result.measured_object == "red_mug", result.execution_report
    assert 0.05 < result.lift_height < 0.3
    assert list(result.stage_names) == ["snapshot", "parsing", "detecting", "re-ranking", "localising",
                                        "planning", "executing"]
    assert all(seconds >= 0 for seconds in result.stage_seconds) and sum(result.stage_seconds) > 0
    wait_for(lambda: markers, 10.0, "the orchestrator's markers")
    by_namespace = {}
    for marker in markers[-1].markers:
        by_namespace.setdefault(marker.ns, []).append(marker.type)
    assert by_namespace["chosen_object"] == [Marker.CUBE, Marker.TEXT_VIEW_FACING]
    assert len(by_namespace["grasp_candidates"]) == len(plan.candidates)
    assert by_namespace["planned_path"] == [Marker.LINE_STRIP]


def test_verify_asks_the_vlm_after_execution(graph):
    from action_msgs.msg import GoalStatus
    from vla_perception_interfaces.action import Pick
    from vla_perception_interfaces.srv import AnswerQuestion

    question = AnswerQuestion.Request(question="is it there?")
    wait_for(lambda: graph.call(AnswerQuestion, names.ANSWER.absolute, question).success, 90.0,
             "vlm_node loaded and holding a camera frame")
    client = graph.action_client(Pick, "/orch/pick")
    assert client.wait_for_server(timeout_sec=20.0)
    feedback = []
    goal = client.send_goal_async(Pick.Goal(command="pick up the green cube", execute=True, verify=True),
                                  feedback_callback=lambda msg: feedback.append(msg.feedback.stage))
    wait_for(goal.done, 20.0, "goal acceptance")
    result_future = goal.result().get_result_async()
    wait_for(result_future.done, 90.0, "the verified pick")
    outcome = result_future.result()
    assert outcome.status == GoalStatus.STATUS_SUCCEEDED, outcome.result.message
    assert feedback[-2:] == ["executing", "verifying"]
    result = outcome.result
    assert f"verify: {result.verify_answer}" in result.message
    # the question is about a frame taken after the lift, not the pick's snapshot
    seconds = [stamp.sec + stamp.nanosec * 1e-9 for stamp in (result.header.stamp, result.verify_stamp)]
    assert seconds[1] > seconds[0] > 0


def test_plan_grasp_service_names_the_failing_stage(graph):
    from vla_perception_interfaces.srv import PlanGrasp

    response = graph.call(PlanGrasp, "/orch/plan_grasp", PlanGrasp.Request(command="pick up the purple giraffe"),
                          timeout=60.0)
    assert not response.success
    assert response.failed_stage == "detecting"
    # the simulated detector's distractor boxes are all it finds, and all below the threshold
    assert response.message.startswith("detecting: no 'purple giraffe' above threshold 0.35; best was "
                                       "'purple giraffe' at 0."), response.message
    response = graph.call(PlanGrasp, "/orch/plan_grasp", PlanGrasp.Request(command="   "), timeout=60.0)
    assert not response.success and response.failed_stage == "parsing"


def test_cancel_during_a_slow_stage_stops_before_the_next(graph):
    from action_msgs.msg import GoalStatus

    status, result, feedback = send_pick(graph, "/orch_slow/pick", "pick up the red mug", cancel_after="detecting")
    assert status == GoalStatus.STATUS_CANCELED
    assert "cancelled" in result.message
    assert "planning" not in [f.stage for f in feedback]


def test_a_stage_that_does_not_answer_times_out_with_a_clear_message(graph):
    from action_msgs.msg import GoalStatus

    status, result, _ = send_pick(graph, "/orch_stuck/pick", "pick up the red mug")
    assert status == GoalStatus.STATUS_ABORTED
    assert result.failed_stage == "detecting"
    assert "no answer from /stuck/detect within 1 s" in result.message
    # the stage gave up at its 1 s timeout, before the stuck service would have answered
    assert 1.0 <= dict(zip(result.stage_names, result.stage_seconds))["detecting"] < STUCK_SECONDS


def test_the_goal_timeout_stops_the_pick_within_a_slow_stage(graph):
    from action_msgs.msg import GoalStatus
    from vla_perception_interfaces.action import Pick

    client = graph.action_client(Pick, "/orch_slow/pick")  # its detection takes 2 s
    assert client.wait_for_server(timeout_sec=20.0)
    goal = client.send_goal_async(Pick.Goal(command="pick up the red mug", timeout=1.0))
    wait_for(goal.done, 20.0, "goal acceptance")
    result_future = goal.result().get_result_async()
    wait_for(result_future.done, 30.0, "the timed-out pick")
    outcome = result_future.result()
    assert outcome.status == GoalStatus.STATUS_ABORTED
    # the goal's own timeout bounds the slow detection call itself, not just the gaps between stages
    assert outcome.result.failed_stage == "detecting", outcome.result.message
    assert "the goal's timeout of 1.0 s passed" in outcome.result.message


def test_a_missing_node_fails_its_stage_instead_of_hanging(graph):
    from action_msgs.msg import GoalStatus

    status, result, _ = send_pick(graph, "/orch_no_detector/pick", "pick up the red mug")
    assert status == GoalStatus.STATUS_ABORTED
    assert result.failed_stage == "detecting"
    assert "/nobody/detect is not available" in result.message
