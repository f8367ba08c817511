"""vlm_node: captioning, visual question answering and free prompts over one of four backends.

``backend``: blip (BLIP caption + VQA), blip2, hf_chat (transformers chat-template VLMs: LLaVA,
Qwen2-VL, SmolVLM, ...) or openai (an OpenAI-compatible chat-completions endpoint: vLLM, Ollama,
llama.cpp server, hosted). Subscribes ``image`` (sensor-data QoS) and keeps the latest frame for
the services ``~/caption``, ``~/answer`` and ``~/ask`` (optionally JSON-schema-constrained); with
``stream`` it also captions streamed frames onto ``~/caption`` (std_msgs/String).
"""
from __future__ import annotations

from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import String

from vla_perception import names
from vla_perception.core.models.checks import MAX_NEW_TOKENS_LIMIT, check_torch_only
from vla_perception.core.models.json_answers import parse_schema
from vla_perception.core.models.vlm_backends import BACKENDS, load_vlm_backend
from vla_perception.core.models.vlm_openai import EndpointSettings
from vla_perception.core.parameters import ParamSpec, in_range, non_negative_int, one_of, positive_int
from vla_perception.core.types import VlaInputError
from vla_perception.nodes.lifecycle import run_node
from vla_perception.nodes.model_node import MODEL_PARAMS, ModelNode
from vla_perception_interfaces.srv import AnswerQuestion, Ask, Caption

TOKENS = in_range(1, MAX_NEW_TOKENS_LIMIT)


class VlmNode(ModelNode):
    PARAMS = [spec for spec in MODEL_PARAMS if spec.name not in ("stream", "max_rate")] + [
        ParamSpec("stream", False, "caption streamed frames onto ~/caption (costly: one caption per frame)"),
        ParamSpec("max_rate", 1.0, "at most this many streamed captions per second; 0: no limit",
                  in_range(0.0, 1000.0)),
        ParamSpec("caption_model", "", "hub id or local path overriding the profile's captioning checkpoint "
                  "(read-only after start)", read_only=True),
        ParamSpec("vqa_model", "", "hub id or local path overriding the profile's VQA checkpoint "
                  "(read-only after start)", read_only=True),
        ParamSpec("caption_max_new_tokens", 20, "longest caption, in tokens", TOKENS),
        ParamSpec("answer_max_new_tokens", 10, "longest answer, in tokens", TOKENS),
        ParamSpec("caption_prefix", "", "text every streamed caption starts with (e.g. 'a picture of')"),
        ParamSpec("backend", "blip", "blip, blip2, hf_chat (transformers chat-template VLMs) or openai "
                  "(an OpenAI-compatible /v1/chat/completions endpoint)", one_of(*BACKENDS)),
        ParamSpec("model", "", "blip2 / hf_chat: hub id or local path overriding the profile's checkpoint; "
                  "openai: the server's model name (required)"),
        ParamSpec("ask_max_new_tokens", 128, "longest ~/ask answer, in tokens", TOKENS),
        ParamSpec("base_url", "", "openai: endpoint base URL up to /v1 (https://...; plain http only to "
                  "127.0.0.1/::1/localhost)"),
        ParamSpec("api_key_env", "", "openai: name of the environment variable holding the API key (the key "
                  "itself is never a parameter and never logged); empty: no key sent"),
        ParamSpec("request_timeout", 60.0, "openai: seconds for one whole request attempt",
                  in_range(0.1, 3600.0)),
        ParamSpec("max_retries", 2, "openai: further attempts after a timeout, connection error, 429 or 5xx",
                  non_negative_int),
        ParamSpec("retry_backoff", 1.0, "openai: first retry delay in seconds, doubled per retry",
                  in_range(0.0, 60.0)),
        ParamSpec("max_retry_wait", 30.0, "openai: longest Retry-After wait honoured; longer fails at once",
                  in_range(0.0, 3600.0)),
        ParamSpec("max_image_side", 1024, "openai: images are downscaled so their longer side is at most this",
                  positive_int),
        ParamSpec("ca_bundle", "", "openai: PEM file of CAs to trust instead of the system's (private servers)"),
    ]

    def __init__(self):
        super().__init__(names.VLM_NODE)
        self.create_service(Caption, names.CAPTION.private, self._caption, callback_group=self.service_group)
        self.create_service(AnswerQuestion, names.ANSWER.private, self._answer, callback_group=self.service_group)
        self.create_service(Ask, names.ASK.private, self._ask, callback_group=self.service_group)
        self._caption_pub = self.create_lifecycle_publisher(String, names.CAPTION_TOPIC.private, QoSProfile(depth=10))

    def load_model(self, params):
        check_torch_only(params.backend, params.runtime, params.precision)
        endpoint = None
        if params.backend == "openai":
            endpoint = EndpointSettings(
                base_url=params.base_url, model=params.model, api_key_env=params.api_key_env,
                timeout=params.request_timeout, max_retries=params.max_retries, backoff=params.retry_backoff,
                max_retry_wait=params.max_retry_wait, max_image_side=params.max_image_side,
                ca_bundle=params.ca_bundle)
            key = f" (API key from ${params.api_key_env})" if params.api_key_env else " (no API key)"
            self.get_logger().info(f"backend openai: model {params.model!r} at {params.base_url}{key}")
        return load_vlm_backend(params.backend, params.profile, model=params.model,
                                caption_model=params.caption_model, vqa_model=params.vqa_model,
                                device=params.device, threads=params.threads, endpoint=endpoint)

    def _tokens(self, requested: int, default: int) -> int:
        if requested and TOKENS(requested):
            raise VlaInputError(f"max_new_tokens={requested}: {TOKENS(requested)}")
        return requested or default

    def process_frame(self, msg: Image) -> None:
        image, _ = self.image_or_latest(msg)
        with self.model_lock:
            result = self.loaded_model().caption(image, self.params.caption_prefix, self.params.caption_max_new_tokens)
        self._caption_pub.publish(String(data=result.text))

    def _caption(self, request, response):
        def work():
            image, _ = self.image_or_latest(request.image)
            tokens = self._tokens(request.max_new_tokens, self.params.caption_max_new_tokens)
            with self.model_lock:
                result = self.loaded_model().caption(image, request.prefix, tokens)
            response.caption, response.inference_time = result.text, float(result.inference_time)

        return self.answer(response, work)

    def _answer(self, request, response):
        def work():
            image, _ = self.image_or_latest(request.image)
            tokens = self._tokens(request.max_new_tokens, self.params.answer_max_new_tokens)
            with self.model_lock:
                result = self.loaded_model().answer(image, request.question, tokens)
            response.answer, response.inference_time = result.text, float(result.inference_time)

        return self.answer(response, work)

    def _ask(self, request, response):
        def work():
            image, _ = self.image_or_latest(request.image)
            tokens = self._tokens(request.max_new_tokens, self.params.ask_max_new_tokens)
            schema = parse_schema(request.json_schema) if request.json_schema.strip() else None
            with self.model_lock:
                result = self.loaded_model().ask(image, request.prompt, tokens, schema)
            response.answer, response.inference_time = result.text, float(result.inference_time)

        return self.answer(response, work)


DECLARED_PARAMETERS = VlmNode.declared_parameters()


def main(args=None):
    run_node(VlmNode, args)


if __name__ == "__main__":
    main()
