"""vlm_node with each backend as its own process, over DDS: one set of services for all four.

blip, blip2 and hf_chat run tiny random-weight models (plumbing, not answer quality); openai talks to
a loopback HTTPS server started by the test that checks the request schema and answers with
recorded completions. The API key must not appear in the node's output.
"""
import json

import pytest
from fake_chat_server import FakeChatServer, Reply, completion
from ros_harness import NodeProcess, RosClient, ros_env, wait_for, write_params

from vla_perception.bridge.image import cv2_to_imgmsg

KEY = "sk-node-test-2b7e51d9-never-log-me"
SCHEMA = json.dumps({"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}},
                     "additionalProperties": False})


@pytest.fixture(scope="module")
def client():
    with RosClient("vlm_backend_test") as ros_client:
        yield ros_client



def frame():
    import numpy as np

    return cv2_to_imgmsg(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8), "rgb8")


def start_vlm(name, params, env, directory) -> NodeProcess:
    defaults = {"profile": "tiny", "device": "cpu", "threads": 1, "autostart": True}
    path = write_params(name, {**defaults, **params}, str(directory))
    return NodeProcess("vla_perception.nodes.vlm_node", ["--params-file", path, "-r", f"__node:={name}"],
                       env=env, name=name)


def wait_active(client, name, process):
    from lifecycle_msgs.srv import GetState

    def active():
        if not process.alive():
            raise AssertionError(f"{name} exited:\n{process.output()[-3000:]}")
        try:  # the node answers only once its autostart configure (model loading) is done
            state = client.call(GetState, f"/{name}/get_state", GetState.Request(), timeout=10.0)
        except TimeoutError:
            return False
        return state.current_state.label == "active"

    wait_for(active, 300.0, f"{name} active")


def ask_all(client, name):
    from vla_perception_interfaces.srv import AnswerQuestion, Ask, Caption

    caption = client.call(Caption, f"/{name}/caption", Caption.Request(image=frame(), max_new_tokens=4))
    answer = client.call(AnswerQuestion, f"/{name}/answer",
                         AnswerQuestion.Request(image=frame(), question="is there a duck?", max_new_tokens=3))
    ask = client.call(Ask, f"/{name}/ask", Ask.Request(image=frame(), prompt="which object?", max_new_tokens=4))
    constrained = client.call(Ask, f"/{name}/ask", Ask.Request(image=frame(), prompt="which object id?",
                                                               json_schema=SCHEMA, max_new_tokens=8))
    return caption, answer, ask, constrained


@pytest.mark.parametrize("backend", ["blip", "blip2", "hf_chat"])
def test_local_backends_answer_caption_answer_and_ask(backend, client, tiny_models_dir, tmp_path):
    from vla_perception_interfaces.srv import Ask

    name = f"vlm_{backend}"
    env = ros_env(VLA_PERCEPTION_MODELS=str(tiny_models_dir))
    with start_vlm(name, {"backend": backend}, env, tmp_path) as process:
        wait_active(client, name, process)
        caption, answer, ask, constrained = ask_all(client, name)
        assert caption.success and answer.success and ask.success, (caption.message, answer.message, ask.message)
        assert min(caption.inference_time, answer.inference_time, ask.inference_time) > 0
        # random weights do not write JSON: the schema check must say so rather than pass text through
        assert not constrained.success and ("not JSON" in constrained.message or "long" in constrained.message)
        bad = client.call(Ask, f"/{name}/ask", Ask.Request(image=frame(), prompt="x", json_schema="{oops"))
        assert not bad.success and "json_schema" in bad.message
        assert process.alive()


def test_openai_backend_over_https_with_the_same_services(client, certificate, tmp_path):
    replies = [Reply(body=completion("a duck on a table")), Reply(body=completion("yes")),
               Reply(body=completion("the duck")), Reply(body=completion('{"id": 2}')),
               Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})]
    name = "vlm_openai"
    env = ros_env(VLA_TEST_VLM_KEY=KEY)
    with FakeChatServer(replies, certificate) as server:
        params = {"backend": "openai", "base_url": server.base_url, "model": "recorded-vlm",
                  "api_key_env": "VLA_TEST_VLM_KEY", "ca_bundle": str(certificate[0]), "max_retries": 0}
        with start_vlm(name, params, env, tmp_path) as process:
            wait_active(client, name, process)
            caption, answer, ask, constrained = ask_all(client, name)
            from vla_perception_interfaces.srv import Caption

            refused = client.call(Caption, f"/{name}/caption", Caption.Request(image=frame()))
            assert process.alive()
            output = process.output()
        requests = server.requests
    assert (caption.caption, answer.answer, ask.answer) == ("a duck on a table", "yes", "the duck")
    assert constrained.success and json.loads(constrained.answer) == {"id": 2}
    assert [r["problems"] for r in requests] == [[]] * 5
    assert [r["body"]["max_tokens"] for r in requests[:4]] == [4, 3, 4, 8]
    assert requests[3]["body"]["response_format"]["json_schema"]["schema"] == json.loads(SCHEMA)
    assert not refused.success and "401" in refused.message and "VLA_TEST_VLM_KEY" in refused.message
    assert KEY not in refused.message and KEY not in output
    assert "VLA_TEST_VLM_KEY" in output  # the log names the variable, never its value


def test_openai_backend_refuses_plain_http_to_another_host(client, tmp_path):
    from lifecycle_msgs.srv import GetState

    name = "vlm_openai_refused"
    params = {"backend": "openai", "base_url": "http://192.0.2.1:8000/v1", "model": "m"}
    with start_vlm(name, params, ros_env(), tmp_path) as process:
        wait_for(lambda: "configure failed" in process.output(), 60.0, "configure to fail")
        state = client.call(GetState, f"/{name}/get_state", GetState.Request()).current_state.label
    assert state == "unconfigured" and "loopback host only" in process.output()
