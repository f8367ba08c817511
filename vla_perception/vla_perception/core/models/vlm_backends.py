"""One interface over every vision-language backend vlm_node can use.

=========  ==========================================================  =====================================
backend    model                                                       weights
=========  ==========================================================  =====================================
blip       BLIP caption + BLIP VQA (transformers)                      profile families blip_caption, blip_vqa
blip2      Blip2ForConditionalGeneration                               profile family blip2
hf_chat    AutoModelForImageTextToText + the checkpoint's chat         profile family hf_chat
           template (LLaVA-1.5/OneVision, Qwen2-VL, SmolVLM, ...)
openai     any OpenAI-compatible /v1/chat/completions endpoint         the server's (vLLM, Ollama, hosted)
=========  ==========================================================  =====================================

Every backend answers ``caption(image, prefix, max_new_tokens)``, ``answer(image, question,
max_new_tokens)`` and ``ask(image, prompt, max_new_tokens, schema=None)`` with a ``TextResult``,
and has ``model_id`` and ``close()``. ``ask`` with a schema returns compact JSON that satisfies
it, or raises ``ModelOutputError``.
"""
from __future__ import annotations

from typing import Optional, Protocol

import numpy as np

from vla_perception.core.models.results import TextResult
from vla_perception.core.models.vlm_openai import EndpointSettings

BACKENDS = ("blip", "blip2", "hf_chat", "openai")


class VisionLanguageModel(Protocol):
    model_id: str

    def caption(self, image: np.ndarray, prefix: str = "", max_new_tokens: int = 20) -> TextResult: ...

    def answer(self, image: np.ndarray, question: str, max_new_tokens: int = 10) -> TextResult: ...

    def ask(self, image: np.ndarray, prompt: str, max_new_tokens: int = 64,
            schema: Optional[dict] = None) -> TextResult: ...

    def close(self) -> None: ...


def load_vlm_backend(backend: str, profile: str = "default", model: str = "", caption_model: str = "",
                     vqa_model: str = "", device: str = "auto", threads: int = 0,
                     endpoint: Optional[EndpointSettings] = None) -> VisionLanguageModel:
    """Load ``backend``; ``endpoint`` is required for openai (its ``model`` names the server's model).

    ``model`` overrides the profile's checkpoint for blip2 and hf_chat; ``caption_model`` and
    ``vqa_model`` do so for blip.
    """
    from vla_perception.core.models.sources import resolve_model_source

    if backend == "blip":
        from vla_perception.core.models.vlm import load_vlm

        caption = resolve_model_source(profile, "blip_caption", caption_model or None)
        vqa = resolve_model_source(profile, "blip_vqa", vqa_model or None)
        return load_vlm(caption, vqa, device=device, threads=threads)
    if backend in ("blip2", "hf_chat"):
        from vla_perception.core.models import vlm_generative

        loader = vlm_generative.load_blip2 if backend == "blip2" else vlm_generative.load_hf_chat
        return loader(resolve_model_source(profile, backend, model or None), device=device, threads=threads)
    if backend == "openai":
        from vla_perception.core.models.vlm_openai import OpenAIChatModel

        if endpoint is None:
            raise ValueError("backend openai needs the endpoint settings (base_url, model, ...)")
        return OpenAIChatModel(endpoint)
    raise ValueError(f"unknown VLM backend {backend!r}; expected one of {', '.join(BACKENDS)}")
