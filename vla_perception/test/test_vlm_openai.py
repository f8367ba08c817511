"""The openai backend against a loopback OpenAI-compatible server started by each test (127.0.0.1 only).

The server checks each request's schema and answers with recorded completions or scripted failures;
what is asserted is the client's behaviour: the request it builds, TLS checks, retries, time bounds,
the errors it reports, and that the API key never appears in a message or a log line.
"""
import json
import logging
import time

import numpy as np
import pytest
from fake_chat_server import FakeChatServer, Reply, completion, image_size

from vla_perception.core.models.json_answers import ModelOutputError
from vla_perception.core.models.vlm_openai import EndpointError, EndpointSettings, OpenAIChatModel
from vla_perception.core.types import VlaInputError

KEY = "sk-test-5c1f0e9a7b3d-never-log-me"
KEY_ENV = "VLA_TEST_OPENAI_KEY"
SCHEMA = {"type": "object", "properties": {"id": {"type": "integer", "minimum": 0}}, "required": ["id"],
          "additionalProperties": False}


def frame(width=160, height=120):
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)



@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


class Sleeps(list):
    """Records the backoff waits and sleeps them for real (the server sees the pause)."""

    def __call__(self, seconds):
        self.append(seconds)
        time.sleep(seconds)


def model_for(server, certificate=None, sleeps=None, **settings) -> OpenAIChatModel:
    values = dict(base_url=server.base_url, model="recorded-vlm", api_key_env=KEY_ENV, timeout=5.0,
                  max_retries=2, backoff=0.05, max_retry_wait=5.0, max_image_side=1024,
                  ca_bundle=str(certificate[0]) if certificate else "")
    values.update(settings)
    return OpenAIChatModel(EndpointSettings(**values), sleep=sleeps if sleeps is not None else Sleeps())


def test_https_caption_sends_a_well_formed_request_and_returns_the_completion(certificate, key):
    with FakeChatServer([Reply()], certificate) as server:
        result = model_for(server, certificate).caption(frame(), "", 24)
        request = server.requests[0]
    assert result.text == "a red mug and a yellow duck on a table" and result.inference_time > 0
    assert request["path"] == "/v1/chat/completions" and request["problems"] == []
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["body"]["model"] == "recorded-vlm" and request["body"]["max_tokens"] == 24
    assert "response_format" not in request["body"]


def test_answer_and_ask_put_the_question_and_prompt_in_the_text_part(certificate, key):
    with FakeChatServer([Reply(body=completion("two")), Reply(body=completion("a duck"))], certificate) as server:
        model = model_for(server, certificate)
        assert model.answer(frame(), "how many mugs?", 5).text == "two"
        assert model.ask(frame(), "what is yellow?", 7).text == "a duck"
        texts = [[p["text"] for p in r["body"]["messages"][-1]["content"] if p["type"] == "text"][0]
                 for r in server.requests]
    assert "how many mugs?" in texts[0] and texts[1] == "what is yellow?"
    assert [r["body"]["max_tokens"] for r in server.requests] == [5, 7]


def test_images_are_downscaled_to_max_image_side_keeping_the_aspect(certificate, key):
    with FakeChatServer([Reply(), Reply()], certificate) as server:
        model_for(server, certificate, max_image_side=64).caption(frame(640, 480))
        model_for(server, certificate, max_image_side=1024).caption(frame(640, 480))
        sizes = [image_size(r["body"]) for r in server.requests]
    assert sizes == [(64, 48), (640, 480)]


def test_ask_with_a_schema_uses_response_format_and_validates_the_answer(certificate, key):
    replies = [Reply(body=completion('{"id": 3}')), Reply(body=completion('{"id": "three"}')),
               Reply(body=completion("the third one"))]
    with FakeChatServer(replies, certificate) as server:
        model = model_for(server, certificate)
        assert json.loads(model.ask(frame(), "which?", 16, SCHEMA).text) == {"id": 3}
        with pytest.raises(ModelOutputError, match=r"\$\.id: expected integer"):
            model.ask(frame(), "which?", 16, SCHEMA)
        with pytest.raises(ModelOutputError, match="not JSON"):
            model.ask(frame(), "which?", 16, SCHEMA)
        sent = server.requests[0]["body"]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"] == SCHEMA


def test_a_certificate_the_client_does_not_trust_is_refused(certificate, key):
    with FakeChatServer([Reply()], certificate) as server:
        with pytest.raises(EndpointError, match="certificate"):
            model_for(server, None).caption(frame())  # system trust store: the self-signed CA is unknown


def test_plain_http_is_allowed_to_loopback_only(key):
    with FakeChatServer([Reply()]) as server:
        assert model_for(server).caption(frame()).text
    for url in ("http://192.0.2.10:8000/v1", "http://example.com/v1", "ftp://127.0.0.1/v1", "127.0.0.1:8000"):
        with pytest.raises(VlaInputError, match="base_url"):
            OpenAIChatModel(EndpointSettings(base_url=url, model="m"))


def test_a_missing_key_variable_fails_at_load_naming_the_variable(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(VlaInputError, match=KEY_ENV):
        OpenAIChatModel(EndpointSettings(base_url="https://127.0.0.1:9/v1", model="m", api_key_env=KEY_ENV))


def test_401_is_not_retried_and_names_the_key_variable(certificate, key):
    with FakeChatServer([Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})],
                        certificate) as server:
        with pytest.raises(EndpointError, match=f"401.*{KEY_ENV}") as error:
            model_for(server, certificate).caption(frame())
        assert len(server.requests) == 1
    assert KEY not in str(error.value) and "***" in str(error.value)


def test_429_waits_as_long_as_retry_after_asks_then_succeeds(certificate, key):
    sleeps = Sleeps()
    with FakeChatServer([Reply(429, {"error": "slow down"}, {"Retry-After": "0.3"}), Reply()],
                        certificate) as server:
        assert model_for(server, certificate, sleeps).caption(frame()).text
        assert len(server.requests) == 2
    assert sleeps == [0.3]


def test_429_asking_for_longer_than_max_retry_wait_fails_at_once(certificate, key):
    with FakeChatServer([Reply(429, {"error": "quota"}, {"Retry-After": "120"})], certificate) as server:
        with pytest.raises(EndpointError, match="retry after 120 s"):
            model_for(server, certificate, max_retry_wait=10.0).caption(frame())
        assert len(server.requests) == 1


def test_500s_are_retried_with_doubling_backoff_then_reported(certificate, key):
    sleeps = Sleeps()
    with FakeChatServer([Reply(500, "boom")] * 3, certificate) as server:
        with pytest.raises(EndpointError, match="HTTP 500.*gave up after 3 attempt"):
            model_for(server, certificate, sleeps, max_retries=2, backoff=0.05).caption(frame())
        assert len(server.requests) == 3
    assert sleeps == [0.05, 0.1]


def test_a_server_that_does_not_answer_in_time_is_given_up_on(certificate, key):
    with FakeChatServer([Reply(delay=3.0)], certificate) as server:
        started = time.monotonic()
        with pytest.raises(EndpointError, match="timeout"):
            model_for(server, certificate, timeout=0.5, max_retries=0).caption(frame())
        elapsed = time.monotonic() - started
    assert elapsed < 3.0, f"the 0.5 s timeout should end the call before the 3 s reply ({elapsed:.2f} s)"


def test_a_trickled_answer_is_bounded_by_the_whole_attempt_timeout(certificate, key):
    # every single byte arrives well within the timeout, but the whole body would take about 8 s
    body = json.dumps(completion("x" * 40)).encode()
    with FakeChatServer([Reply(body=body, trickle=8.0 / len(body))], certificate) as server:
        started = time.monotonic()
        with pytest.raises(EndpointError, match="timeout"):
            model_for(server, certificate, timeout=1.0, max_retries=0).caption(frame())
        elapsed = time.monotonic() - started
    assert elapsed < 4.0, f"a per-read timeout alone would wait for the whole trickle ({elapsed:.2f} s)"


@pytest.mark.parametrize("body, match", [("{not json", "not JSON"), ({"choices": []}, "choices"),
                                         ({"choices": [{"message": {"content": 7}}]}, "not text")])
def test_malformed_answers_are_clear_failures(certificate, key, body, match):
    with FakeChatServer([Reply(body=body)], certificate) as server:
        with pytest.raises(EndpointError, match=match):
            model_for(server, certificate).caption(frame())


def test_the_key_never_appears_in_any_message_or_log_line(certificate, key, caplog):
    caplog.set_level(logging.DEBUG)
    echo = {"error": {"message": f"bad request from key {KEY}"}}
    replies = [Reply(401, echo), Reply(429, echo, {"Retry-After": "999"}), Reply(500, echo), Reply(500, echo),
               Reply(body=f"not json {KEY}"), Reply(body=completion(f"the key is {KEY}")), Reply(400, echo)]
    messages = []
    with FakeChatServer(replies, certificate) as server:
        model = model_for(server, certificate, max_retries=1)
        messages.append(model.model_id)
        for call in [lambda: model.caption(frame()), lambda: model.caption(frame()), lambda: model.caption(frame()),
                     lambda: model.caption(frame()), lambda: model.ask(frame(), "which?", 8, SCHEMA),
                     lambda: model.caption(frame())]:
            with pytest.raises(VlaInputError) as error:
                call()
            messages.append(str(error.value))
    assert len(messages) == 7 and all("***" in m for m in messages[1:]), messages
    everything = "\n".join(messages + [record.getMessage() for record in caplog.records])
    assert KEY not in everything
