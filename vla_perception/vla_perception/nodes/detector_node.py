"""detector_node: open-vocabulary detection (Grounding DINO, or OWL-ViT with backend:=owlvit).

``backend:=sim`` is a simulation backend, not a model: boxes of sim_camera's scene with noise and
distractors (nodes/sim_detector.py), for running the pick pipeline in the simulator.

Subscribes ``image`` (sensor-data QoS); publishes ``~/detections`` (Detection2DArray,
header = the image's) and ``~/debug_image``; services ``~/detect`` and ``~/set_prompt``;
``~/prompt`` (std_msgs/String) and the ``prompt`` parameter change the prompt at run time.
With vision_msgs installed and ``publish_vision_msgs`` true it also publishes the same detections
as ``~/detections_2d`` (vision_msgs/Detection2DArray) and the prompt as ``~/label_info`` (latched).
"""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String

from vla_perception import names
from vla_perception.bridge import vision
from vla_perception.bridge.image import cv2_to_imgmsg
from vla_perception.bridge.messages import detections_to_msg
from vla_perception.core.drawing import draw_detections
from vla_perception.core.limits import MAX_LABELS, check_count
from vla_perception.core.models import load_detector, resolve_model_source
from vla_perception.core.models.detector import prompt_phrases
from vla_perception.core.parameters import ParamSpec, in_range, one_of
from vla_perception.core.types import VlaInputError
from vla_perception.nodes.lifecycle import run_node
from vla_perception.nodes.model_node import MODEL_PARAMS, ModelNode
from vla_perception_interfaces.msg import Detection2DArray
from vla_perception_interfaces.srv import Detect, SetPrompt


class DetectorNode(ModelNode):
    PARAMS = MODEL_PARAMS + [
        ParamSpec("backend", "grounding_dino", "grounding_dino or owlvit (models), or sim: the simulator's boxes "
                  "with noise and distractors (a simulation backend for sim_camera scenes, not a model)",
                  one_of("grounding_dino", "owlvit", "sim")),
        ParamSpec("sim_latency", 0.0, "backend sim only: seconds each detection takes, standing in for a "
                  "model's inference time", in_range(0.0, 60.0)),
        ParamSpec("model", "", "hub id or local path overriding the profile's detector checkpoint (read-only "
                  "after start)", read_only=True),
        ParamSpec("prompt", "cup . bottle . duck . cube", "what to look for: 'red cup . blue bottle'"),
        ParamSpec("box_threshold", 0.35, "minimum box confidence", in_range(0.0, 1.0)),
        ParamSpec("text_threshold", 0.25, "minimum phrase-token confidence (Grounding DINO)", in_range(0.0, 1.0)),
        ParamSpec("debug_image", True, "publish ~/debug_image with boxes, labels and scores drawn"),
        ParamSpec("publish_vision_msgs", True, "also publish ~/detections_2d (vision_msgs/Detection2DArray) and "
                  "~/label_info (vision_msgs/LabelInfo, latched) when vision_msgs is installed"),
    ]

    def __init__(self):
        super().__init__(names.DETECTOR_NODE)
        self.prompt = self.get_parameter("prompt").value
        self.create_service(Detect, names.DETECT.private, self._detect, callback_group=self.service_group)
        self.create_service(SetPrompt, names.DETECTOR_SET_PROMPT.private, self._set_prompt,
                            callback_group=self.service_group)
        self.create_subscription(String, names.DETECTOR_PROMPT.private, lambda msg: self._apply_prompt(msg.data), 10)
        self.apply_on_change("prompt", self._apply_prompt)
        self._detections_pub = self.create_lifecycle_publisher(Detection2DArray, names.DETECTIONS.private,
                                                               QoSProfile(depth=10))
        self._debug_pub = self.create_lifecycle_publisher(Image, names.DETECTOR_DEBUG_IMAGE.private,
                                                          QoSProfile(depth=2))
        self._vision_pub = vision.lifecycle_publisher(self, "Detection2DArray", names.DETECTIONS_2D.private)
        self._label_info_pub = None
        if self._vision_pub is not None:
            from vision_msgs.msg import LabelInfo

            self._label_info_pub = self.create_publisher(LabelInfo, names.LABEL_INFO.private, QoSProfile(
                depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
            self._publish_label_info()

    def load_model(self, params):
        if params.backend == "sim":
            from vla_perception.nodes.sim_detector import SimulatedDetector

            return SimulatedDetector(self, params.sim_latency)
        source = resolve_model_source(params.profile, params.backend, params.model or None)
        model = load_detector(source, backend=params.backend, device=params.device, threads=params.threads,
                              runtime=params.runtime, precision=params.precision)
        model.check_prompt(self.prompt)  # a prompt set before this model loaded must fit it too
        return model

    # run-time prompt changes: parameter, service, topic
    def _apply_prompt(self, prompt: str) -> str:
        """Make ``prompt`` the node's prompt if the model can use it (phrases, count, token limit)."""
        self._check_prompt(prompt)
        self.prompt = prompt.strip()
        self.get_logger().info(f"prompt: {self.prompt}")
        self._publish_label_info()
        return self.prompt

    def _check_prompt(self, prompt: str) -> None:
        try:
            phrases = prompt_phrases(prompt)
        except VlaInputError as error:
            raise VlaInputError(f"{error}: give phrases such as 'red cup . blue bottle'") from None
        check_count(len(phrases), MAX_LABELS, "prompt phrases")
        with self.model_lock:
            if self.model is not None:
                self.model.check_prompt(prompt)

    def _publish_label_info(self) -> None:
        if self._label_info_pub is not None:
            threshold = self.get_parameter("box_threshold").value
            header = Header(stamp=self.get_clock().now().to_msg())
            self._label_info_pub.publish(vision.label_info(prompt_phrases(self.prompt), threshold, header))

    def _set_prompt(self, request, response):
        text = request.prompt or " . ".join(request.labels)
        return self.answer(response, lambda: setattr(response, "message", f"prompt: {self._apply_prompt(text)}"),
                           needs_active=False)

    # detection
    def _run(self, image, header, prompt=None, box_threshold=0.0, text_threshold=0.0):
        with self.model_lock:
            frame = {"stamp": header.stamp} if self.params.backend == "sim" else {}  # which simulator frame
            prompt = prompt.strip() if prompt and prompt.strip() else self.prompt
            result = self.loaded_model().detect(image, prompt, box_threshold=box_threshold or self.params.box_threshold,
                                                text_threshold=text_threshold or self.params.text_threshold, **frame)
        msg = detections_to_msg(result.detections, header, (image.shape[1], image.shape[0]), result.prompt,
                                result.model_id, result.inference_time)
        if self.params.debug_image:
            self._debug_pub.publish(cv2_to_imgmsg(draw_detections(image, result.detections), "rgb8", header))
        return msg

    def process_frame(self, msg: Image) -> None:
        image, header = self.image_or_latest(msg)
        detections = self._run(image, header)
        self._detections_pub.publish(detections)
        if self._vision_pub is not None:
            self._vision_pub.publish(vision.detections_2d(detections))

    def _detect(self, request, response):
        def work():
            for name in ("box_threshold", "text_threshold"):
                problem = in_range(0.0, 1.0)(getattr(request, name))
                if problem:
                    raise VlaInputError(f"{name}={getattr(request, name)}: {problem} (0 means the node's default)")
            if request.prompt:
                self._check_prompt(request.prompt)
            image, header = self.image_or_latest(request.image)
            response.detections = self._run(image, header, request.prompt, request.box_threshold,
                                            request.text_threshold)
            response.message = f"{len(response.detections.detections)} detection(s)"

        return self.answer(response, work)


DECLARED_PARAMETERS = DetectorNode.declared_parameters()


def main(args=None):
    run_node(DetectorNode, args)


if __name__ == "__main__":
    main()
