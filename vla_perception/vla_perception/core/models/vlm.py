"""BLIP captioning (optionally conditioned on a text prefix) and visual question answering (backend ``blip``)."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from vla_perception.core.models.checks import check_image, check_length, check_max_new_tokens, check_text
from vla_perception.core.models.json_answers import ask_for_json
from vla_perception.core.models.loading import as_source, hf_pretrained
from vla_perception.core.models.results import TextResult
from vla_perception.core.models.runtime import Runtime, Stopwatch, make_runtime
from vla_perception.core.models.sources import ModelSource

class BlipModels:
    """Caption and VQA BLIP models, each with its processor; ``None`` where not loaded."""

    def __init__(self, caption, vqa, runtime: Runtime, caption_id: str, vqa_id: str):
        self.caption_model, self.caption_processor = caption or (None, None)
        self.vqa_model, self.vqa_processor = vqa or (None, None)
        self.runtime = runtime
        self.model_id = " + ".join(i for i in (caption_id, vqa_id) if i)

    def close(self) -> None:
        self.caption_model = self.caption_processor = self.vqa_model = self.vqa_processor = None

    def _inputs(self, processor, model, image: np.ndarray, text: Optional[str], generated_after_text: int):
        """Processor inputs; the text plus ``generated_after_text`` tokens must fit the text decoder."""
        from PIL import Image

        limit = int(model.config.text_config.max_position_embeddings)
        text_tokens = len(processor.tokenizer(text)["input_ids"]) if text else 1  # 1: the [DEC] start token
        check_length(text or "(no prefix)", text_tokens + generated_after_text, limit, self.model_id,
                     f"{text_tokens} text token(s) + {generated_after_text} to generate")
        inputs = processor(images=Image.fromarray(image), text=text or None, return_tensors="pt")
        return self.runtime.move(inputs)

    def _generate(self, processor, model, image, text, max_new_tokens, prefix: bool) -> TextResult:
        with Stopwatch() as watch:
            # a caption prefix is the start of the generated text; a question is encoded on its own,
            # and the answer is generated after a start token
            inputs = self._inputs(processor, model, image, text, max_new_tokens if prefix else 0)
            if not prefix:
                check_length("(answer)", 1 + max_new_tokens, int(model.config.text_config.max_position_embeddings),
                             self.model_id, f"1 start token + {max_new_tokens} to generate")
            with torch.inference_mode():
                tokens = model.generate(**inputs, max_new_tokens=max_new_tokens)
            answer = processor.decode(tokens[0], skip_special_tokens=True).strip()
        return TextResult(answer, watch.seconds)

    def caption(self, image: np.ndarray, prefix: str = "", max_new_tokens: int = 20) -> TextResult:
        if self.caption_model is None:
            raise RuntimeError("no caption model loaded")
        image, tokens = check_image(image), check_max_new_tokens(max_new_tokens)
        prefix = prefix.strip() if isinstance(prefix, str) else ""
        return self._generate(self.caption_processor, self.caption_model, image, prefix, tokens, prefix=True)

    def answer(self, image: np.ndarray, question: str, max_new_tokens: int = 10) -> TextResult:
        if self.vqa_model is None:
            raise RuntimeError("no VQA model loaded")
        image, tokens = check_image(image), check_max_new_tokens(max_new_tokens)
        return self._generate(
            self.vqa_processor, self.vqa_model, image, check_text(question, "question"), tokens, prefix=False
        )

    def ask(self, image: np.ndarray, prompt: str, max_new_tokens: int = 20,
            schema: Optional[dict] = None) -> TextResult:
        """A free prompt, answered by the VQA model (BLIP has no instruction following beyond VQA)."""
        prompt = check_text(prompt, "prompt")
        return ask_for_json(lambda text: self.answer(image, text, max_new_tokens), prompt, schema)

    def warm_up(self) -> None:
        frame = np.zeros((32, 32, 3), np.uint8)
        if self.caption_model is not None:
            self.caption(frame, max_new_tokens=2)
        if self.vqa_model is not None:
            self.answer(frame, "what?", max_new_tokens=2)


def _load_blip(model_cls, source: Optional[ModelSource], runtime: Runtime):
    if source is None:
        return None
    from transformers import BlipProcessor

    model = hf_pretrained(model_cls, source, use_safetensors=True).to(runtime.device, runtime.dtype).eval()
    return model, hf_pretrained(BlipProcessor, source)


def load_vlm(
    caption_source: Optional[ModelSource],
    vqa_source: Optional[ModelSource],
    device: str = "auto",
    threads: int = 0,
) -> BlipModels:
    """Either source may be None to skip that model."""
    from transformers import BlipForConditionalGeneration, BlipForQuestionAnswering

    caption_source = as_source(caption_source, "blip_caption") if caption_source else None
    vqa_source = as_source(vqa_source, "blip_vqa") if vqa_source else None

    runtime = make_runtime(device, threads)
    models = BlipModels(
        _load_blip(BlipForConditionalGeneration, caption_source, runtime),
        _load_blip(BlipForQuestionAnswering, vqa_source, runtime),
        runtime,
        caption_source.model_id if caption_source else "",
        vqa_source.model_id if vqa_source else "",
    )
    models.warm_up()
    return models
