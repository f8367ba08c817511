"""The orchestrator's VLM grounding fallback over DDS, in the simulator.

sim_camera, pose_node, vlm_node (backend openai) and orchestrators run as processes; vlm_node
talks to a loopback chat-completions server started by this test that plays the VLM: it reads
the numbered candidates out of the grounding prompt and answers the id of the one the test names
(or, to test validation, an id that does not exist or text that is not JSON). Detections are the
simulator's ground truth (detection_source:=ground_truth), so localising and planning are the
production code.
"""
import json
import re

import pytest
from fake_chat_server import FakeChatServer, Reply, completion, prompt_text
from ros_harness import NodeProcess, ros_env, running_graph, write_params
from test_orchestrator_e2e import orchestrator, send_pick, wait_until_pose_node_has_depth

VLM = {"choose": "blue box"}  # what the scripted VLM answers: a label to find, or a raw answer


def scripted_vlm(body: dict) -> Reply:
    prompt = prompt_text(body)
    if "Answer with JSON" not in prompt:
        return Reply(body=completion("a table with objects"))
    if VLM.get("raw") is not None:
        return Reply(body=completion(VLM["raw"]))
    lines = re.findall(r"^(\d+): '([^']*)'", prompt, re.MULTILINE)
    chosen = [index for index, label in lines if label == VLM["choose"]]
    return Reply(body=completion(json.dumps({"id": int(chosen[0])}) if chosen else "none of them"))


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("grounding"))
    with FakeChatServer(respond=scripted_vlm) as server:
        vlm_params = {"autostart": True, "backend": "openai", "base_url": server.base_url, "model": "scripted",
                      "max_retries": 0}
        processes = [
            NodeProcess("vla_perception.nodes.sim_camera",
                        ["--params-file", write_params("sim_camera", {"rate": 2.0}, directory)]),
            NodeProcess("vla_perception.nodes.pose_node",
                        ["--params-file", write_params("pose_node", {"autostart": True}, directory)]),
            NodeProcess("vla_perception.nodes.vlm_node",
                        ["--params-file", write_params("vlm_node", vlm_params, directory), "-r", "image:=/image"],
                        env=ros_env()),
            orchestrator("orch_vlm", directory, grounding="vlm", detection_source="ground_truth"),
            orchestrator("orch_fallback", directory, grounding="rules_then_vlm", detection_source="ground_truth"),
            orchestrator("orch_rules", directory, detection_source="ground_truth"),
        ]
        with running_graph(processes, "grounding_test") as client:
            wait_until_pose_node_has_depth(client)
            yield client, server


def localising_details(feedback):
    return [f.detail for f in feedback if f.stage == "localising"]


def test_vlm_grounding_chooses_what_the_vlm_names_and_says_so(graph):
    from action_msgs.msg import GoalStatus

    client, server = graph
    VLM.update(choose="blue box", raw=None)
    status, result, feedback = send_pick(client, "/orch_vlm/pick", "pick up the yellow or blue thing")
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert result.plan.object.label == "blue box"
    assert "'blue box' chosen by the VLM" in localising_details(feedback)
    prompt = prompt_text(server.requests[-1]["body"])
    assert "pick up the yellow or blue thing" in prompt
    assert re.search(r"^\d+: 'yellow duck', score [\d.]+, box \[[-\d, ]+\] px, position \[", prompt, re.MULTILINE)
    assert server.requests[-1]["body"]["response_format"]["type"] == "json_schema"


def test_rules_then_vlm_asks_only_when_the_reference_cannot_be_resolved(graph):
    from action_msgs.msg import GoalStatus

    client, server = graph
    VLM.update(choose="green cube", raw=None)
    asked = len(server.requests)
    status, result, feedback = send_pick(client, "/orch_fallback/pick", "pick up the red mug")
    assert status == GoalStatus.STATUS_SUCCEEDED and len(server.requests) == asked
    assert "'red mug' chosen by the rules" in localising_details(feedback)

    status, result, feedback = send_pick(client, "/orch_fallback/pick", "pick up the cube next to the laptop")
    assert status == GoalStatus.STATUS_SUCCEEDED, result.message
    assert result.plan.object.label == "green cube" and len(server.requests) == asked + 1
    detail = [d for d in localising_details(feedback) if "chosen by" in d][0]
    assert "chosen by the VLM" in detail and "laptop" in detail

    status, result, _ = send_pick(client, "/orch_rules/pick", "pick up the cube next to the laptop")
    assert status == GoalStatus.STATUS_ABORTED and "laptop" in result.message  # rules alone: no fallback


@pytest.mark.parametrize("raw, match", [('{"id": 42}', "only ids 0..0 exist"), ("the cube, I think", "not JSON")])
def test_an_unusable_vlm_answer_fails_the_pick_instead_of_guessing(graph, raw, match):
    from action_msgs.msg import GoalStatus

    client, _ = graph
    VLM.update(raw=raw)
    status, result, _ = send_pick(client, "/orch_vlm/pick", "pick up the green cube")
    VLM.update(raw=None)
    assert status == GoalStatus.STATUS_ABORTED and result.failed_stage == "localising"
    assert match in result.message and result.plan.object.label == ""
