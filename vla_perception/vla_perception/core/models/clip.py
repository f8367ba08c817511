"""Zero-shot classification with open_clip: labels x prompt templates -> softmax scores.

Text embeddings are kept in an LRU cache keyed by (labels, templates), so a frame with a label set
seen before only runs the image tower. Crops of several boxes go through the image tower in one batch.
Both towers can run on ONNX Runtime or OpenVINO (``runtime``, see accelerated.py).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np
import torch

from vla_perception.core.models.accelerated import Part, RuntimeSettings, accelerate, weights_hash
from vla_perception.core.models.checks import (check_image, check_labels, check_length, check_runtime, check_text,
                                               crop_bounds)
from vla_perception.core.models.errors import ModelNotAvailableError, TextInputError
from vla_perception.core.models.loading import as_source, fetch_command, hf_cache_dir, offline, require_local
from vla_perception.core.models.results import ClassificationResult
from vla_perception.core.models.runtime import Runtime, Stopwatch, make_runtime
from vla_perception.core.models.sources import ModelSource
from vla_perception.core.types import Box2D

DEFAULT_TEMPLATES = ("a photo of a {}",)


def check_template(template: str) -> str:
    """Return the stripped template; it must hold exactly one ``{}`` where the label goes."""
    text = check_text(template, "prompt template")
    if text.count("{}") != 1:
        raise TextInputError(f"prompt template {template!r} must contain exactly one '{{}}' for the label")
    return text


class ClipClassifier:
    def __init__(
        self,
        model,
        preprocess,
        tokenizer,
        runtime: Runtime,
        model_id: str,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        cache_size: int = 32,
    ):
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.runtime, self.model_id = runtime, model_id
        self.templates = tuple(check_template(t) for t in (templates or DEFAULT_TEMPLATES))
        self.context_length = int(getattr(model, "context_length", 77))
        self.cache_size = cache_size
        self._text_cache: OrderedDict = OrderedDict()
        self.encode_image, self.encode_text = ImageTower(model), TextTower(model)
        self.runtime_name = "torch"

    def accelerate(self, settings: RuntimeSettings) -> str:
        """Run both towers under ``settings`` (exported and cached at this call); returns the runtime used."""
        weights = None if check_runtime(settings.runtime) == "torch" else weights_hash(self.model)  # reads every weight
        pixels = torch.zeros(1, 3, *self.image_size(), device=self.runtime.device, dtype=self.runtime.dtype)
        tokens = self.tokenizer(["a photo of a cup"]).to(self.runtime.device)
        self.encode_image, image_runtime = accelerate(ImageTower(self.model), [pixels], IMAGE_PART, settings,
                                                      self.runtime.device, weights)
        self.encode_text, text_runtime = accelerate(TextTower(self.model), [tokens], TEXT_PART, settings,
                                                    self.runtime.device, weights)
        self.runtime_name = image_runtime if image_runtime == text_runtime else f"{image_runtime}+{text_runtime}"
        return self.runtime_name

    def image_size(self) -> tuple[int, int]:
        size = getattr(self.model.visual, "image_size", 224)
        return tuple(size) if isinstance(size, (tuple, list)) else (size, size)

    def close(self) -> None:
        self.model, self._text_cache = None, OrderedDict()

    def _check_prompt_length(self, prompt: str) -> None:
        encode = getattr(self.tokenizer, "encode", None)
        if encode is not None:  # + start and end tokens
            check_length(prompt, len(encode(prompt)) + 2, self.context_length, self.model_id)

    def check_labels(self, labels: Sequence[str]) -> list[str]:
        """The stripped labels; raises TextInputError unless each fits every template within the text limit."""
        labels = check_labels(labels)
        for prompt in (template.format(label) for label in labels for template in self.templates):
            self._check_prompt_length(prompt)
        return labels

    def text_embeddings(self, labels: Sequence[str]) -> torch.Tensor:
        """(num_labels, dim) normalised mean-over-templates embeddings, from the LRU cache when possible."""
        key = (tuple(labels), self.templates)
        if key in self._text_cache:
            self._text_cache.move_to_end(key)
            return self._text_cache[key]
        prompts = [template.format(label) for label in labels for template in self.templates]
        for prompt in prompts:
            self._check_prompt_length(prompt)
        tokens = self.tokenizer(prompts).to(self.runtime.device)
        with torch.inference_mode():
            features = self.encode_text(tokens).float()
        features = features / features.norm(dim=-1, keepdim=True)
        features = features.reshape(len(labels), len(self.templates), -1).mean(dim=1)
        embeddings = features / features.norm(dim=-1, keepdim=True)
        self._text_cache[key] = embeddings
        while len(self._text_cache) > self.cache_size:
            self._text_cache.popitem(last=False)
        return embeddings

    def image_batch(self, image: np.ndarray, boxes: Optional[Sequence[Box2D]]) -> torch.Tensor:
        from PIL import Image

        height, width = image.shape[:2]
        crops = (
            [image]
            if not boxes
            else [
                image[y0:y1, x0:x1] for x0, y0, x1, y1 in (crop_bounds(box, width, height) for box in boxes)
            ]
        )
        batch = torch.stack([self.preprocess(Image.fromarray(np.ascontiguousarray(c))) for c in crops])
        return batch.to(self.runtime.device, self.runtime.dtype)

    def classify(
        self, image: np.ndarray, labels: Sequence[str], boxes: Optional[Sequence[Box2D]] = None
    ) -> list[ClassificationResult]:
        """One result per box (or one for the whole frame when ``boxes`` is empty/None)."""
        image, labels = check_image(image), check_labels(labels)
        with Stopwatch() as watch:
            text = self.text_embeddings(labels)
            with torch.inference_mode():
                features = self.encode_image(self.image_batch(image, boxes)).float()
                features = features / features.norm(dim=-1, keepdim=True)
                probs = (
                    (self.model.logit_scale.exp().float() * features @ text.T).softmax(dim=-1).cpu().numpy()
                )
        return [
            self._result(labels, row, box, watch.seconds)
            for row, box in zip(probs, list(boxes) if boxes else [None])
        ]

    @staticmethod
    def _result(labels, row: np.ndarray, box, seconds: float) -> ClassificationResult:
        best = int(np.argmax(row))
        return ClassificationResult(
            list(labels), [float(p) for p in row], labels[best], float(row[best]), box, seconds
        )

    def warm_up(self) -> None:
        self.classify(np.zeros((32, 32, 3), np.uint8), ["object"])
        self._text_cache.clear()


class ImageTower(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)


class TextTower(ImageTower):
    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(tokens)


IMAGE_PART = Part("clip_image", ["pixels"], ["features"], {"pixels": {0: "batch"}, "features": {0: "batch"}})
TEXT_PART = Part("clip_text", ["tokens"], ["features"], {"tokens": {0: "prompts"}, "features": {0: "prompts"}})


def create_open_clip(source: ModelSource, runtime: Runtime):
    """(model, preprocess, tokenizer) from a local dir/file or an open_clip architecture + pretrained tag."""
    import open_clip

    kwargs = dict(device=runtime.device, precision="fp16" if runtime.is_cuda else "fp32")
    if source.local_path is not None:
        path = require_local(source)
        if path.is_dir():
            name, pretrained = f"local-dir:{path}", None
        else:  # a checkpoint file; the architecture comes from the hub_id part (ARCH) or ViT-B-32
            name, pretrained = source.hub_id or "ViT-B-32", str(path)
    else:
        name, pretrained = source.hub_id, source.pretrained or None
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained, **kwargs)
    except (RuntimeError, OSError) as error:
        where = [clip_cache_path(source)]
        reason = "HF_HUB_OFFLINE=1 and not in the cache" if offline() else str(error)
        raise ModelNotAvailableError(source.model_id, where, fetch_command(source), reason) from error
    return model.eval(), preprocess, open_clip.get_tokenizer(name)


def clip_cache_path(source: ModelSource) -> str:
    """Name the HF cache directory open_clip downloads this architecture + tag into."""
    from open_clip.pretrained import get_pretrained_cfg

    repo = (
        (get_pretrained_cfg(source.hub_id, source.pretrained) or {}).get("hf_hub", "")
        if source.pretrained
        else ""
    )
    repo = repo.strip("/") or source.hub_id
    return f"Hugging Face cache {hf_cache_dir()}/models--{repo.replace('/', '--')}"


def load_classifier(
    source, device: str = "auto", threads: int = 0, templates: Optional[Sequence[str]] = None,
    runtime: str = "torch", precision: str = "auto",
) -> ClipClassifier:
    source = as_source(source, "clip")
    torch_runtime = make_runtime(device, threads)
    model, preprocess, tokenizer = create_open_clip(source, torch_runtime)
    classifier = ClipClassifier(
        model, preprocess, tokenizer, torch_runtime, source.model_id, templates or DEFAULT_TEMPLATES
    )
    classifier.accelerate(RuntimeSettings(runtime, precision, threads))
    classifier.warm_up()
    return classifier
