"""Local generative vision-language models: BLIP-2 and transformers' image-text-to-text chat family.

- ``blip2``: ``Blip2ForConditionalGeneration`` (OPT or Flan-T5 language model). Captions are
  conditioned on the prefix, questions use BLIP-2's documented ``Question: ... Answer:`` form.
- ``hf_chat``: any checkpoint that ``AutoModelForImageTextToText`` loads and whose processor has a
  chat template (LLaVA-1.5, LLaVA-OneVision, Qwen2-VL, SmolVLM/Idefics3, ...). One code path: the
  user turn is an image part and a text part, rendered by the checkpoint's own chat template.

Both decode greedily and return only the newly generated text. ``ask`` with a JSON schema tells
the model the schema and validates the answer (core.models.json_answers).
"""
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
from vla_perception.core.models.vlm_prompts import ChatPrompts


class GenerativeVlm:
    """One model + processor; subclasses say how a prompt and an image become the model's inputs."""

    def __init__(self, model, processor, runtime: Runtime, model_id: str):
        self.model, self.processor, self.runtime, self.model_id = model, processor, runtime, model_id
        self.prompts = ChatPrompts()

    def close(self) -> None:
        self.model = self.processor = None

    def inputs(self, picture, prompt: str):
        raise NotImplementedError

    def text_limit(self) -> int:
        config = getattr(self.model.config, "text_config", self.model.config)
        return int(getattr(config, "max_position_embeddings", 0) or 0)

    def generate(self, image: np.ndarray, prompt: str, max_new_tokens: int) -> TextResult:
        from PIL import Image

        image, tokens = check_image(image), check_max_new_tokens(max_new_tokens)
        with Stopwatch() as watch:
            inputs = self.inputs(Image.fromarray(image), prompt)
            prompt_length = inputs["input_ids"].shape[-1] if "input_ids" in inputs else 0  # BLIP-2 without text
            limit = self.text_limit()
            if limit:
                check_length(prompt, prompt_length + tokens, limit, self.model_id)
            with torch.inference_mode():
                output = self.model.generate(**self.runtime.move(inputs), max_new_tokens=tokens, do_sample=False)
            text = self.decode_new(output[0], prompt_length)
        return TextResult(text, watch.seconds)

    def decode_new(self, output: torch.Tensor, prompt_length: int) -> str:
        """Decoder-only models echo the prompt: keep what follows it (without a prompt, special tokens only)."""
        if prompt_length and not self.model.config.is_encoder_decoder:
            output = output[prompt_length:]
        return self.processor.decode(output, skip_special_tokens=True).strip()

    def caption(self, image: np.ndarray, prefix: str = "", max_new_tokens: int = 20) -> TextResult:
        return self.generate(image, self.prompts.caption(prefix), max_new_tokens)

    def answer(self, image: np.ndarray, question: str, max_new_tokens: int = 10) -> TextResult:
        return self.generate(image, self.prompts.answer(check_text(question, "question")), max_new_tokens)

    def ask(self, image: np.ndarray, prompt: str, max_new_tokens: int = 64,
            schema: Optional[dict] = None) -> TextResult:
        prompt = check_text(prompt, "prompt")
        return ask_for_json(lambda text: self.generate(image, text, max_new_tokens), prompt, schema)

    def warm_up(self) -> None:
        self.generate(np.zeros((32, 32, 3), np.uint8), "what?", 2)


class Blip2Vlm(GenerativeVlm):
    def inputs(self, picture, prompt: str):
        return self.processor(images=picture, text=prompt or None, return_tensors="pt")

    def caption(self, image: np.ndarray, prefix: str = "", max_new_tokens: int = 20) -> TextResult:
        prefix = prefix.strip() if isinstance(prefix, str) else ""
        result = self.generate(image, prefix, max_new_tokens)
        return TextResult(f"{prefix} {result.text}".strip(), result.inference_time)

    def answer(self, image: np.ndarray, question: str, max_new_tokens: int = 10) -> TextResult:
        question = check_text(question, "question")
        return self.generate(image, f"Question: {question} Answer:", max_new_tokens)


class ChatTemplateVlm(GenerativeVlm):
    def messages(self, prompt: str) -> list[dict]:
        return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]

    def inputs(self, picture, prompt: str):
        text = self.processor.apply_chat_template(self.messages(prompt), add_generation_prompt=True, tokenize=False)
        return self.processor(images=[picture], text=[text], return_tensors="pt")


def _load(model_cls, processor_cls, wrapper, source: ModelSource, device: str, threads: int) -> GenerativeVlm:
    runtime = make_runtime(device, threads)
    processor = hf_pretrained(processor_cls, source)
    if wrapper is ChatTemplateVlm and not getattr(processor, "chat_template", None):
        raise ValueError(f"{source.model_id} has no chat template: use an instruction-tuned checkpoint "
                         "(e.g. llava-hf/llava-1.5-7b-hf, HuggingFaceTB/SmolVLM-256M-Instruct)")
    model = hf_pretrained(model_cls, source, use_safetensors=True).to(runtime.device, runtime.dtype).eval()
    vlm = wrapper(model, processor, runtime, source.model_id)
    vlm.warm_up()
    return vlm


def load_blip2(source, device: str = "auto", threads: int = 0) -> Blip2Vlm:
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    return _load(Blip2ForConditionalGeneration, Blip2Processor, Blip2Vlm, as_source(source, "blip2"), device,
                 threads)


def load_hf_chat(source, device: str = "auto", threads: int = 0) -> ChatTemplateVlm:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    return _load(AutoModelForImageTextToText, AutoProcessor, ChatTemplateVlm, as_source(source, "hf_chat"),
                 device, threads)
