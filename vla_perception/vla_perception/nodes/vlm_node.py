"""vlm_node: image captioning and visual question answering (BLIP).

Subscribes ``image`` (sensor-data QoS) and keeps the latest frame for the services
``~/caption`` and ``~/answer``; with ``publish_caption`` it also captions streamed frames
onto ``~/caption`` (std_msgs/String).
"""
from __future__ import annotations

from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import String

from vla_perception.core.models import load_vlm, resolve_model_source
from vla_perception.core.parameters import ParamSpec, in_range
from vla_perception.core.types import VlaInputError
from vla_perception.nodes.lifecycle import run_node
from vla_perception.nodes.model_node import MODEL_PARAMS, ModelNode
from vla_perception_interfaces.srv import AnswerQuestion, Caption

TOKENS = in_range(1, 200)


class VlmNode(ModelNode):
    PARAMS = [spec for spec in MODEL_PARAMS if spec.name != "stream"] + [
        ParamSpec("stream", False, "caption streamed frames onto ~/caption (costly: one caption per frame)"),
        ParamSpec("caption_model", "", "hub id or local path overriding the profile's captioning checkpoint"),
        ParamSpec("vqa_model", "", "hub id or local path overriding the profile's VQA checkpoint"),
        ParamSpec("caption_max_new_tokens", 20, "longest caption, in tokens", TOKENS),
        ParamSpec("answer_max_new_tokens", 10, "longest answer, in tokens", TOKENS),
        ParamSpec("caption_prefix", "", "text every streamed caption starts with (e.g. 'a picture of')"),
    ]

    def __init__(self):
        super().__init__("vlm_node")
        self.create_service(Caption, "~/caption", self._caption, callback_group=self.service_group)
        self.create_service(AnswerQuestion, "~/answer", self._answer, callback_group=self.service_group)
        self._caption_pub = self.create_lifecycle_publisher(String, "~/caption", QoSProfile(depth=10))

    def load_model(self, params):
        caption = resolve_model_source(params.profile, "blip_caption", params.caption_model or None)
        vqa = resolve_model_source(params.profile, "blip_vqa", params.vqa_model or None)
        return load_vlm(caption, vqa, device=params.device, threads=params.threads)

    def _model(self):
        if self.model is None:
            raise VlaInputError("no model loaded: configure the node first")
        return self.model

    def _tokens(self, requested: int, default: int) -> int:
        if requested and TOKENS(requested):
            raise VlaInputError(f"max_new_tokens={requested}: {TOKENS(requested)}")
        return requested or default

    def process_frame(self, msg: Image) -> None:
        image, _ = self.image_or_latest(msg)
        with self.model_lock:
            result = self._model().caption(image, self.params.caption_prefix, self.params.caption_max_new_tokens)
        self._caption_pub.publish(String(data=result.text))

    def _caption(self, request, response):
        def work():
            image, _ = self.image_or_latest(request.image)
            tokens = self._tokens(request.max_new_tokens, self.params.caption_max_new_tokens)
            with self.model_lock:
                result = self._model().caption(image, request.prefix, tokens)
            response.caption, response.inference_time = result.text, float(result.inference_time)

        return self.answer(response, work)

    def _answer(self, request, response):
        def work():
            image, _ = self.image_or_latest(request.image)
            tokens = self._tokens(request.max_new_tokens, self.params.answer_max_new_tokens)
            with self.model_lock:
                result = self._model().answer(image, request.question, tokens)
            response.answer, response.inference_time = result.text, float(result.inference_time)

        return self.answer(response, work)


def main(args=None):
    run_node(VlmNode, args)


if __name__ == "__main__":
    main()
