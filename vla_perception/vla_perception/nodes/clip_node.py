"""clip_node: zero-shot classification of a frame, or of boxes in it (open_clip).

Subscribes ``image`` (sensor-data QoS); publishes ``~/classification`` (header = the
image's); services ``~/classify`` and ``~/set_prompt``; ``~/labels`` (std_msgs/String,
"cup . duck . cube") and the ``labels`` parameter change the labels at run time.
"""
from __future__ import annotations

from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import String

from vla_perception import names
from vla_perception.bridge.messages import box_from_msg, box_to_msg
from vla_perception.core.limits import MAX_BOXES, MAX_LABELS, check_count
from vla_perception.core.models import load_classifier, resolve_model_source
from vla_perception.core.parameters import ParamSpec
from vla_perception.core.types import VlaInputError
from vla_perception.nodes.lifecycle import run_node
from vla_perception.nodes.model_node import MODEL_PARAMS, ModelNode
from vla_perception_interfaces.msg import Classification
from vla_perception_interfaces.srv import Classify, SetPrompt


def labels_from_text(text: str) -> list[str]:
    """'cup . duck' or 'cup, duck' -> ['cup', 'duck']."""
    separator = "." if "." in text else ","
    return [label.strip() for label in text.split(separator) if label.strip()]


def checked_labels(labels) -> list[str]:
    labels = [label.strip() for label in labels if label and label.strip()]
    if not labels:
        raise VlaInputError("no labels: give at least one, e.g. ['cup', 'duck']")
    check_count(len(labels), MAX_LABELS, "labels")
    return labels


class ClipNode(ModelNode):
    PARAMS = MODEL_PARAMS + [
        ParamSpec("model", "", "open_clip 'local-dir:PATH', file path or hub id overriding the profile's CLIP "
                  "(read-only after start)", read_only=True),
        ParamSpec("labels", ["cup", "bottle", "duck", "cube"], "labels to score each frame against",
                  lambda value: None if any(str(v).strip() for v in value) else "needs at least one label"),
        ParamSpec("templates", ["a photo of a {}."], "prompt templates; {} is replaced by the label",
                  lambda value: None if value and all("{}" in t for t in value) else "each template needs a {}"),
    ]

    def __init__(self):
        super().__init__(names.CLIP_NODE)
        self.labels = checked_labels(self.get_parameter("labels").value)
        self.create_service(Classify, names.CLASSIFY.private, self._classify, callback_group=self.service_group)
        self.create_service(SetPrompt, names.CLIP_SET_PROMPT.private, self._set_prompt,
                            callback_group=self.service_group)
        self.create_subscription(String, names.CLIP_LABELS.private, self._on_labels_topic, 10)
        self.apply_on_change("labels", self._apply_labels)
        self._classification_pub = self.create_lifecycle_publisher(Classification, names.CLASSIFICATION.private,
                                                                   QoSProfile(depth=10))

    def load_model(self, params):
        source = resolve_model_source(params.profile, "clip", params.model or None)
        model = load_classifier(source, device=params.device, threads=params.threads, templates=params.templates,
                                runtime=params.runtime, precision=params.precision)
        model.check_labels(self.labels)  # labels set before this model loaded must fit it too
        return model

    def _usable_labels(self, labels) -> list[str]:
        """The labels, if the model can use them (at least one, count cap, token limit with each template)."""
        labels = checked_labels(labels)
        with self.model_lock:
            return self.model.check_labels(labels) if self.model is not None else labels

    # run-time label changes: parameter, service, topic
    def _apply_labels(self, labels) -> list[str]:
        self.labels = self._usable_labels(labels)
        self.get_logger().info(f"labels: {self.labels}")
        return self.labels

    def _on_labels_topic(self, msg: String) -> None:
        try:
            self._apply_labels(labels_from_text(msg.data))
        except VlaInputError as error:
            self.get_logger().warning(f"ignored labels from ~/labels: {error}", throttle_duration_sec=5.0)

    def _set_prompt(self, request, response):
        labels = list(request.labels) or labels_from_text(request.prompt)
        return self.answer(response, lambda: setattr(response, "message", f"labels: {self._apply_labels(labels)}"),
                           needs_active=False)

    # classification
    def _run(self, image, header, labels=None, boxes=None) -> list[Classification]:
        with self.model_lock:
            results = self.loaded_model().classify(image, labels or self.labels, boxes or None)
            model_id = self.model.model_id  # read under the lock: a cleanup may free the model next
        return [self._to_msg(result, header, model_id) for result in results]

    @staticmethod
    def _to_msg(result, header, model_id: str) -> Classification:
        msg = Classification(header=header, labels=list(result.labels), scores=[float(s) for s in result.scores],
                             best_label=result.best_label, best_score=float(result.best_score),
                             model_id=model_id, inference_time=float(result.inference_time))
        if result.box is not None:
            msg.has_box, msg.bbox = True, box_to_msg(result.box)
        return msg

    def process_frame(self, msg: Image) -> None:
        image, header = self.image_or_latest(msg)
        self._classification_pub.publish(self._run(image, header)[0])

    def _classify(self, request, response):
        def work():
            image, header = self.image_or_latest(request.image)
            labels = self._usable_labels(request.labels) if request.labels else None
            check_count(len(request.boxes), MAX_BOXES, "boxes")
            response.results = self._run(image, header, labels, [box_from_msg(b) for b in request.boxes])
            response.message = ", ".join(f"{r.best_label} {r.best_score:.2f}" for r in response.results)

        return self.answer(response, work)


DECLARED_PARAMETERS = ClipNode.declared_parameters()


def main(args=None):
    run_node(ClipNode, args)


if __name__ == "__main__":
    main()
