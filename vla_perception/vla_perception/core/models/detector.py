"""Open-vocabulary detection behind one interface: Grounding DINO (default) or OWL-ViT (transformers).

Prompts come as "red cup . blue bottle" or ["red cup", "blue bottle"]; boxes are returned in the
input image's pixels, each labelled with the prompt phrase it matched, after class-aware NMS.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from vla_perception.core.models.checks import Prompt, check_image, check_length, prompt_phrases  # noqa: F401
from vla_perception.core.models.loading import as_source, hf_pretrained
from vla_perception.core.models.results import DetectionResult
from vla_perception.core.models.runtime import Runtime, Stopwatch, make_runtime
from vla_perception.core.types import Box2D, Detection

BACKENDS = ("grounding_dino", "owlvit")
SEPARATOR_IDS = (0, 101, 102, 1012)  # [PAD] [CLS] [SEP] "." in Grounding DINO's BERT vocabulary


def label_for(text: str, phrases: Sequence[str]) -> str:
    """Return the prompt phrase a decoded grounding label belongs to (exact, contained, most words)."""
    text = " ".join(text.lower().replace(" ##", "").split())
    if text in phrases:
        return text
    containing = [phrase for phrase in phrases if text and (text in phrase or phrase in text)]
    if containing:
        return containing[0]
    words = set(text.split())
    overlap = [len(words & set(phrase.split())) for phrase in phrases]
    return phrases[int(np.argmax(overlap))]  # no shared word: the first phrase, never a stray word


def class_aware_nms(detections: list[Detection], iou_threshold: float) -> list[Detection]:
    """Drop boxes overlapping a higher-scoring box of the same label by more than ``iou_threshold``."""
    if iou_threshold >= 1.0 or len(detections) < 2:
        return sorted(detections, key=lambda d: -d.score)
    from torchvision.ops import batched_nms

    boxes = torch.tensor(np.array([d.box.as_array() for d in detections]), dtype=torch.float32)
    scores = torch.tensor([d.score for d in detections], dtype=torch.float32)
    names = sorted({d.label for d in detections})
    groups = torch.tensor([names.index(d.label) for d in detections])
    keep = batched_nms(boxes, scores, groups, iou_threshold)
    return [detections[int(i)] for i in keep]


def clipped(detection: Detection, width: int, height: int) -> Detection:
    """Return the detection with its box clipped to the image ([0, width] x [0, height])."""
    box = detection.box
    detection.box = Box2D(
        min(max(box.x_min, 0.0), width),
        min(max(box.y_min, 0.0), height),
        min(max(box.x_max, 0.0), width),
        min(max(box.y_max, 0.0), height),
    )
    return detection


def phrase_spans(input_ids: Sequence[int]) -> list[list[int]]:
    """Token positions of each "."-separated phrase in a Grounding DINO prompt ([CLS] [SEP] "." skipped)."""
    spans, current = [], []
    for position, token in enumerate(input_ids):
        if token in SEPARATOR_IDS:
            if current:
                spans.append(current)
            current = []
        else:
            current.append(position)
    return spans + ([current] if current else [])


def strip_special(text: str) -> str:
    for token in ("[SEP]", "[CLS]", "[PAD]"):
        text = text.replace(token, "")
    return " ".join(text.split())


class OpenVocabDetector:
    backend = "grounding_dino"

    def __init__(self, model, processor, runtime: Runtime, model_id: str):
        self.model, self.processor, self.runtime, self.model_id = model, processor, runtime, model_id

    def close(self) -> None:
        self.model = self.processor = None

    def _inputs(self, image: np.ndarray, phrases: list[str]):
        raise NotImplementedError

    def _raw_detections(
        self, outputs, inputs, phrases, size, box_threshold, text_threshold
    ) -> list[Detection]:
        raise NotImplementedError

    def normalised_prompt(self, phrases: list[str]) -> str:
        return " . ".join(phrases) + " ."

    def check_prompt(self, prompt: Prompt) -> list[str]:
        """The prompt's phrases; raises TextInputError unless this model can use them (phrases, length)."""
        phrases = prompt_phrases(prompt)
        self._check_length(phrases)
        return phrases

    def _check_length(self, phrases: list[str]) -> None:
        raise NotImplementedError

    def detect(
        self,
        image: np.ndarray,
        prompt: Prompt,
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        nms_iou: float = 0.5,
    ) -> DetectionResult:
        image, phrases = check_image(image), prompt_phrases(prompt)
        with Stopwatch() as watch:
            inputs = self._inputs(image, phrases)
            with torch.inference_mode():
                outputs = self.model(**inputs)
            raw = self._raw_detections(
                outputs, inputs, phrases, image.shape[:2], box_threshold, text_threshold
            )
            raw = [clipped(d, image.shape[1], image.shape[0]) for d in raw]
            detections = class_aware_nms(raw, nms_iou)
        return DetectionResult(detections, self.normalised_prompt(phrases), self.model_id, watch.seconds)

    def warm_up(self) -> None:
        self.detect(np.zeros((64, 64, 3), np.uint8), "object")


class GroundingDinoDetector(OpenVocabDetector):
    backend = "grounding_dino"

    def _check_length(self, phrases):
        prompt = self.normalised_prompt(phrases)
        limit = int(getattr(self.model.config, "max_text_len", 256))
        check_length(prompt, len(self.processor.tokenizer(prompt)["input_ids"]), limit, self.model_id)

    def _inputs(self, image, phrases):
        self._check_length(phrases)
        prompt = self.normalised_prompt(phrases)
        from PIL import Image

        inputs = self.processor(images=Image.fromarray(image), text=prompt, return_tensors="pt")
        return self.runtime.move(inputs)

    @staticmethod
    def _span_labels(outputs, inputs, phrases, box_threshold) -> list:
        """For each kept box (post-processing's order), the phrase whose tokens hold its highest logit."""
        probs = torch.sigmoid(outputs.logits[0].float())
        kept = probs[probs.max(dim=-1).values > box_threshold]
        spans = phrase_spans(inputs["input_ids"][0].tolist())
        if len(spans) != len(phrases):  # tokenisation disagrees with our split: match the decoded text
            return [None] * len(kept)
        span_scores = torch.stack([kept[:, span].max(dim=-1).values for span in spans], dim=-1)
        return [phrases[int(i)] for i in span_scores.argmax(dim=-1)]

    def _raw_detections(self, outputs, inputs, phrases, size, box_threshold, text_threshold):
        result = self.processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=box_threshold,
            text_threshold=text_threshold,
            target_sizes=[tuple(size)],
        )[0]
        labels = self._span_labels(outputs, inputs, phrases, box_threshold)
        return [
            Detection(
                label or label_for(strip_special(text), phrases),
                float(score),
                Box2D(*map(float, box)),
                phrase=strip_special(text),
            )
            for score, box, text, label in zip(
                result["scores"].float().cpu(), result["boxes"].float().cpu(), result["text_labels"], labels
            )
        ]


class OwlVitDetector(OpenVocabDetector):
    backend = "owlvit"

    def _check_length(self, phrases):
        limit = int(self.model.config.text_config.max_position_embeddings)
        for phrase in phrases:
            check_length(phrase, len(self.processor.tokenizer(phrase)["input_ids"]), limit, self.model_id)

    def _inputs(self, image, phrases):
        self._check_length(phrases)
        from PIL import Image

        inputs = self.processor(
            text=[phrases], images=Image.fromarray(image), padding="max_length", return_tensors="pt"
        )
        return self.runtime.move(inputs)

    def _raw_detections(self, outputs, inputs, phrases, size, box_threshold, text_threshold):
        outputs.logits, outputs.pred_boxes = outputs.logits.float(), outputs.pred_boxes.float()
        result = self.processor.post_process_grounded_object_detection(
            outputs, threshold=box_threshold, target_sizes=[tuple(size)]
        )[0]
        return [
            Detection(phrases[int(index)], float(score), Box2D(*map(float, box)), phrase=phrases[int(index)])
            for score, box, index in zip(
                result["scores"].cpu(), result["boxes"].cpu(), result["labels"].cpu()
            )
        ]


def load_detector(
    source, backend: str = "grounding_dino", device: str = "auto", threads: int = 0
) -> OpenVocabDetector:
    from transformers import AutoProcessor, GroundingDinoForObjectDetection, OwlViTForObjectDetection

    if backend not in BACKENDS:
        raise ValueError(f"detector backend must be one of {BACKENDS}, got {backend!r}")
    source = as_source(source, backend)
    runtime = make_runtime(device, threads)
    model_cls, detector_cls = {
        "grounding_dino": (GroundingDinoForObjectDetection, GroundingDinoDetector),
        "owlvit": (OwlViTForObjectDetection, OwlVitDetector),
    }[backend]
    model = hf_pretrained(model_cls, source, use_safetensors=True)
    processor = hf_pretrained(AutoProcessor, source)
    model = model.to(runtime.device, runtime.dtype).eval()
    detector = detector_cls(model, processor, runtime, source.model_id)
    detector.warm_up()
    return detector
