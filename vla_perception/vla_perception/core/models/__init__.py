"""ROS-free model layer: CLIP classification, open-vocabulary detection, BLIP caption/VQA.

Public API (what the nodes use)::

    from vla_perception.core.models import (ModelSource, resolve_model_source, load_classifier,
                                            load_detector, load_vlm, ModelNotAvailableError)
    source = resolve_model_source("default" | "tiny", "clip" | "grounding_dino" | "owlvit"
                                  | "blip_caption" | "blip_vqa" | "clipseg" | "blip2" | "hf_chat",
                                  override=None or hub id / local path)
    clf = load_classifier(source, device="auto", threads=0, templates=["a photo of a {}"],
                          runtime="torch" | "onnxruntime" | "openvino" | "auto", precision="auto" | "fp32" | "int8")
    clf.classify(rgb_uint8_hxwx3, labels, boxes=None) -> list[ClassificationResult]
    det = load_detector(source, backend="grounding_dino" | "owlvit", device="auto", threads=0)
    det.detect(image, "red cup . blue bottle" or ["red cup", ...], box_threshold=0.35,
               text_threshold=0.25) -> DetectionResult(detections, prompt, model_id, inference_time)
    vlm = load_vlm(caption_source, vqa_source, device="auto", threads=0)
    vlm.caption(image, prefix="", max_new_tokens=20) -> TextResult(text, inference_time)
    vlm.answer(image, question, max_new_tokens=10) -> TextResult
    vlm.ask(image, prompt, max_new_tokens=20, schema=None) -> TextResult   # JSON checked against schema
    # vlm_node's other backends (blip2, hf_chat, openai), same caption/answer/ask interface:
    from vla_perception.core.models.vlm_backends import load_vlm_backend
    vlm = load_vlm_backend("blip" | "blip2" | "hf_chat" | "openai", profile, model=..., endpoint=...)
    seg = load_segmenter(source, device="auto", threads=0)            # family "clipseg"
    seg.segment(image, boxes, phrases, threshold=0.4) -> MaskResult(masks, inference_time)

Every model has ``.model_id`` and ``.close()``. Bad input raises a ``VlaInputError`` subclass
(ImageInputError, TextInputError, TextTooLongError); missing weights raise ModelNotAvailableError
(a RuntimeError) whose message names the model, where it looked and the command that fetches it.
Torch and the model libraries are imported only when a loader is called.
"""

from vla_perception.core.models.errors import (
    ImageInputError,
    ModelNotAvailableError,
    TextInputError,
    TextTooLongError,
)
from vla_perception.core.models.results import ClassificationResult, DetectionResult, TextResult
from vla_perception.core.models.sources import FAMILIES, ModelSource, resolve_model_source


def load_classifier(source, device="auto", threads=0, templates=None, runtime="torch", precision="auto"):
    from vla_perception.core.models.clip import load_classifier as load

    return load(source, device=device, threads=threads, templates=templates, runtime=runtime, precision=precision)


def load_detector(source, backend="grounding_dino", device="auto", threads=0, runtime="torch", precision="auto"):
    from vla_perception.core.models.checks import check_torch_only
    from vla_perception.core.models.detector import load_detector as load

    check_torch_only(backend, runtime, precision)
    return load(source, backend=backend, device=device, threads=threads)


def load_vlm(caption_source, vqa_source, device="auto", threads=0, runtime="torch", precision="auto"):
    from vla_perception.core.models.checks import check_torch_only
    from vla_perception.core.models.vlm import load_vlm as load

    check_torch_only("blip_caption", runtime, precision)
    return load(caption_source, vqa_source, device=device, threads=threads)


def load_segmenter(source, device="auto", threads=0):
    from vla_perception.core.models.segmenter import load_segmenter as load

    return load(source, device=device, threads=threads)


__all__ = [
    "ClassificationResult",
    "DetectionResult",
    "FAMILIES",
    "ImageInputError",
    "ModelNotAvailableError",
    "ModelSource",
    "TextInputError",
    "TextResult",
    "TextTooLongError",
    "load_classifier",
    "load_detector",
    "load_segmenter",
    "load_vlm",
    "resolve_model_source",
]
