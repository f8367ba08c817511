"""grasp_orchestrator end to end over DDS: sim_camera, pose_node and the orchestrator as processes.

Detections come from the simulator's ground truth (detection_source:=ground_truth): tiny
random models detect nothing meaningful, and this keeps the 3D, grasp, planning and
execution stages on production code. The slow and stuck ground-truth services below are
test-side stand-ins whose only job is to make a stage take long (for cancellation and
timeouts); the fast path uses the real simulator.
"""
import threading
import time

import pytest
from ros_harness import NodeProcess, RosClient, ros_env, wait_for, write_params


def orchestrator(name: str, directory: str, **params) -> NodeProcess:
    base = {"detection_source": "ground_truth", "planner": "embedded", "stage_timeout": 20.0}
    path = write_params(name, {**base, **params}, directory)
    return NodeProcess("vla_perception.nodes.grasp_orchestrator", ["-r", f"__node:={name}", "--params-file", path],
                       name=name)


@pytest.fixture(scope="module")
def graph(tmp_path_factory, tiny_models_dir):
    from vla_perception_interfaces.srv import GetGroundTruth

    directory = str(tmp_path_factory.mktemp("params"))
    processes = [
        NodeProcess("vla_perception.nodes.sim_camera", ["--params-file",
                                                         write_params("sim_camera", {"rate": 2.0}, directory)]),
        NodeProcess("vla_perception.nodes.pose_node", ["--params-file",
                                                        write_params("pose_node", {"autostart": True}, directory)]),
        NodeProcess("vla_perception.nodes.vlm_node",  # tiny BLIP: the verify step's plumbing, not its answer
                    ["--params-file", write_params("vlm_node", {"autostart": True, "profile": "tiny"}, directory),
                     "-r", "image:=/image"], env=ros_env(VLA_PERCEPTION_MODELS=str(tiny_models_dir))),
        orchestrator("orch", directory),
        orchestrator("orch_slow", directory, ground_truth_service="/slow/ground_truth"),
        orchestrator("orch_stuck", directory, ground_truth_service="/stuck/ground_truth", stage_timeout=1.0),
        orchestrator("orch_no_detector", directory, detection_source="detector", detector_service="/nobody/detect",
                     stage_timeout=2.0),
    ]
    client = RosClient("orchestrator_test")
    real_truth = client.node.create_client(GetGroundTruth, "/sim_camera/ground_truth")

    def slow(request, response):  # forwards to the simulator, 2 s late
        time.sleep(2.0)
        done = threading.Event()
        future = real_truth.call_async(request)
        future.add_done_callback(lambda _: done.set())
        done.wait(10.0)
        return future.result() or response

    def stuck(request, response):
        time.sleep(4.0)
        return response

    from rclpy.callback_groups import ReentrantCallbackGroup

    group = ReentrantCallbackGroup()
    client.node.create_service(GetGroundTruth, "/slow/ground_truth", slow, callback_group=group)
    client.node.create_service(GetGroundTruth, "/stuck/ground_truth", stuck, callback_group=group)
    try:
        wait_until_pose_node_has_depth(client)
        yield client
    finally:
        client.close()
        for process in reversed(processes):
            process.stop()


def wait_until_pose_node_has_depth(client):
    from vla_perception_interfaces.srv import GetGroundTruth, EstimatePoses

    client.wait_for_service(GetGroundTruth, "/sim_camera/ground_truth", 120.0)  # pybullet start on a busy machine

    def ready():
        truth = client.call(GetGroundTruth, "/sim_camera/ground_truth", GetGroundTruth.Request())
        return truth.success and client.call(EstimatePoses, "/pose_node/estimate",
                                             EstimatePoses.Request(detections=truth.detections)).success

    wait_for(ready, 60.0, "sim_camera frames reaching pose_node")


def send_pick(client, action: str, command: str, execute=False, cancel_after=None, timeout=60.0):
    from rclpy.action import ActionClient

    from vla_perception_interfaces.action import Pick

    action_client = ActionClient(client.node, Pick, action)
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
    result_future = handle.get_result_async()
    wait_for(result_future.done, timeout, f"result of '{command}'")
    outcome = result_future.result()
    action_client.destroy()
    return outcome.status, outcome.result, feedback


def test_pick_reports_stages_in_order_and_returns_an_executed_plan(graph):
    from action_msgs.msg import GoalStatus

    from visualization_msgs.msg import Marker, MarkerArray

    markers = graph.collect(MarkerArray, "/orch/markers")
    status, result, feedback = send_pick(graph, "/orch/pick", "pick up the red mug", execute=True)
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    stages = [f.stage for f in feedback]
    assert stages == ["parsing", "detecting", "localising", "localising", "planning", "executing"]
    assert [f.elapsed for f in feedback] == sorted(f.elapsed for f in feedback)
    plan = result.plan
    assert plan.object.label == "red mug" and plan.planner == "embedded"
    assert plan.header.frame_id == "panda_link0"
    assert len(plan.trajectory.points) > 2 and len(plan.lift_trajectory.points) > 2
    assert 0 <= plan.chosen_candidate < len(plan.candidates)
    assert plan.candidates[plan.chosen_candidate].approach_type in ("top", "side")
    assert "'red_mug' lifted" in result.message, result.message
    wait_for(lambda: markers, 10.0, "the orchestrator's markers")
    by_namespace = {}
    for marker in markers[-1].markers:
        by_namespace.setdefault(marker.ns, []).append(marker.type)
    assert by_namespace["chosen_object"] == [Marker.CUBE, Marker.TEXT_VIEW_FACING]
    assert len(by_namespace["grasp_candidates"]) == len(plan.candidates)
    assert by_namespace["planned_path"] == [Marker.LINE_STRIP]


def test_verify_asks_the_vlm_after_execution(graph):
    from action_msgs.msg import GoalStatus
    from rclpy.action import ActionClient

    from vla_perception_interfaces.action import Pick
    from vla_perception_interfaces.srv import AnswerQuestion

    question = AnswerQuestion.Request(question="is it there?")
    wait_for(lambda: graph.call(AnswerQuestion, "/vlm_node/answer", question).success, 90.0,
             "vlm_node loaded and holding a camera frame")
    client = ActionClient(graph.node, Pick, "/orch/pick")
    assert client.wait_for_server(timeout_sec=20.0)
    feedback = []
    goal = client.send_goal_async(Pick.Goal(command="pick up the green cube", execute=True, verify=True),
                                  feedback_callback=lambda msg: feedback.append(msg.feedback.stage))
    wait_for(goal.done, 20.0, "goal acceptance")
    result_future = goal.result().get_result_async()
    wait_for(result_future.done, 90.0, "the verified pick")
    outcome = result_future.result()
    client.destroy()
    assert outcome.status == GoalStatus.STATUS_SUCCEEDED, outcome.result.message
    assert feedback[-2:] == ["executing", "verifying"]
    assert "verify: " in outcome.result.message
    assert outcome.result.verify_answer in outcome.result.message


def test_plan_grasp_service_names_the_failing_stage(graph):
    from vla_perception_interfaces.srv import PlanGrasp

    response = graph.call(PlanGrasp, "/orch/plan_grasp", PlanGrasp.Request(command="pick up the purple giraffe"),
                          timeout=60.0)
    assert not response.success
    assert response.failed_stage == "detecting"
    assert response.message == "detecting: nothing matching 'purple giraffe' was detected"
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

    started = time.monotonic()
    status, result, _ = send_pick(graph, "/orch_stuck/pick", "pick up the red mug")
    assert status == GoalStatus.STATUS_ABORTED
    assert result.failed_stage == "detecting"
    assert "no answer from /stuck/ground_truth within 1 s" in result.message
    assert time.monotonic() - started < 15.0


def test_the_goal_timeout_stops_the_pick_within_a_slow_stage(graph):
    from action_msgs.msg import GoalStatus
    from rclpy.action import ActionClient

    from vla_perception_interfaces.action import Pick

    client = ActionClient(graph.node, Pick, "/orch_slow/pick")  # its detection takes 2 s
    assert client.wait_for_server(timeout_sec=20.0)
    goal = client.send_goal_async(Pick.Goal(command="pick up the red mug", timeout=1.0))
    wait_for(goal.done, 20.0, "goal acceptance")
    result_future = goal.result().get_result_async()
    wait_for(result_future.done, 30.0, "the timed-out pick")
    outcome = result_future.result()
    client.destroy()
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
