"""BLIP-2 and the chat-template family (hf_chat) on tiny random-weight models.

The weights are random: the texts are gibberish. These tests check plumbing and parity with
transformers' own processor + generate + decode, the token bound, the text limit and input checks.
"""
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from vla_perception.core.models import TextTooLongError
from vla_perception.core.models.json_answers import ModelOutputError
from vla_perception.core.models.vlm_backends import load_vlm_backend
from vla_perception.core.models.vlm_prompts import ChatPrompts
from vla_perception.core.types import VlaInputError


def image(seed=0, height=60, width=80):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def blip2(tiny_models_dir):
    return load_vlm_backend("blip2", "tiny", model=str(tiny_models_dir / "blip2"), device="cpu", threads=1)


@pytest.fixture(scope="module")
def chat(tiny_models_dir):
    return load_vlm_backend("hf_chat", "tiny", model=str(tiny_models_dir / "hf_chat"), device="cpu", threads=1)


@pytest.fixture(scope="module")
def reference_blip2(tiny_models_dir):
    from transformers import Blip2ForConditionalGeneration, Blip2Processor

    directory = tiny_models_dir / "blip2"
    return Blip2ForConditionalGeneration.from_pretrained(directory).eval(), Blip2Processor.from_pretrained(directory)


@pytest.fixture(scope="module")
def reference_chat(tiny_models_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    directory = tiny_models_dir / "hf_chat"
    return AutoModelForImageTextToText.from_pretrained(directory).eval(), AutoProcessor.from_pretrained(directory)


@torch.no_grad()
def blip2_generate(reference, frame, text, max_new_tokens):
    """What the BLIP-2 model card does, keeping only the generated part."""
    model, processor = reference
    inputs = processor(images=Image.fromarray(frame), text=text, return_tensors="pt")
    tokens = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)[0]
    if text is not None:
        tokens = tokens[inputs["input_ids"].shape[-1]:]
    return processor.decode(tokens, skip_special_tokens=True).strip(), len(tokens)


@torch.no_grad()
def chat_generate(reference, frame, prompt, max_new_tokens):
    """The documented transformers image-text-to-text recipe: chat template, generate, decode the new tokens."""
    model, processor = reference
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(images=[Image.fromarray(frame)], text=[text], return_tensors="pt")
    tokens = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)[0]
    new = tokens[inputs["input_ids"].shape[-1]:]
    return processor.decode(new, skip_special_tokens=True).strip(), len(new)


def test_blip2_caption_matches_transformers_generate(blip2, reference_blip2):
    expected, length = blip2_generate(reference_blip2, image(1), None, 6)
    assert blip2.caption(image(1), "", 6).text == expected and length <= 1 + 4 + 6  # query tokens, bos, new
    continued, new_tokens = blip2_generate(reference_blip2, image(1), "a photo of", 6)
    assert blip2.caption(image(1), "a photo of", 6).text == f"a photo of {continued}".strip()
    assert new_tokens <= 6


def test_blip2_answer_uses_the_question_answer_form_and_matches_generate(blip2, reference_blip2):
    expected, new_tokens = blip2_generate(reference_blip2, image(2), "Question: is there a duck? Answer:", 4)
    result = blip2.answer(image(2), "is there a duck?", 4)
    assert result.text == expected and new_tokens <= 4 and result.inference_time > 0


def test_blip2_ask_passes_the_prompt_through(blip2, reference_blip2):
    expected, _ = blip2_generate(reference_blip2, image(3), "what is on the table?", 5)
    assert blip2.ask(image(3), "what is on the table?", 5).text == expected


@pytest.mark.parametrize("prompt", ["what is on the table?", "describe the red mug"])
def test_chat_ask_matches_transformers_chat_template_generate(chat, reference_chat, prompt):
    expected, new_tokens = chat_generate(reference_chat, image(4), prompt, 6)
    result = chat.ask(image(4), prompt, 6)
    assert result.text == expected and new_tokens <= 6 and result.inference_time > 0


def test_chat_caption_and_answer_are_instructions_through_the_same_path(chat, reference_chat):
    prompts = ChatPrompts()
    assert chat.caption(image(5), "", 5).text == chat_generate(reference_chat, image(5), prompts.caption(), 5)[0]
    question = "how many cubes?"
    expected = chat_generate(reference_chat, image(5), prompts.answer(question), 5)[0]
    assert chat.answer(image(5), question, 5).text == expected
    assert question in prompts.answer(question)


def test_longer_generation_extends_the_shorter_one(chat):
    short, long = chat.ask(image(6), "go on", 2).text, chat.ask(image(6), "go on", 8).text
    assert long.startswith(short)


def test_schema_constrained_asks_refuse_what_random_weights_produce(chat, blip2):
    schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
    for model in (chat, blip2):
        with pytest.raises(ModelOutputError, match="not JSON|does not match"):
            model.ask(image(7), "which object?", 8, schema)


def test_prompts_beyond_the_language_model_limit_are_refused(chat, blip2):
    for model in (chat, blip2):
        limit = model.model.config.text_config.max_position_embeddings
        with pytest.raises(TextTooLongError, match="long"):
            model.ask(image(), "x" * limit, 4)


@pytest.mark.parametrize("tokens", [0, -1, 5000])
def test_unbounded_or_empty_token_budgets_are_rejected(chat, blip2, tokens):
    for model in (chat, blip2):
        with pytest.raises(VlaInputError, match="max_new_tokens"):
            model.ask(image(), "what?", tokens)


@pytest.mark.parametrize("question", ["", "  ", None])
def test_empty_questions_and_prompts_are_rejected(chat, blip2, question):
    for model in (chat, blip2):
        with pytest.raises(VlaInputError):
            model.answer(image(), question, 3)
        with pytest.raises(VlaInputError):
            model.ask(image(), question, 3)


def test_a_checkpoint_without_a_chat_template_is_refused_by_name(tiny_models_dir, tmp_path):
    plain = tmp_path / "no_template"
    shutil.copytree(tiny_models_dir / "hf_chat", plain)
    (plain / "chat_template.jinja").unlink()
    with pytest.raises(ValueError, match="no chat template"):
        load_vlm_backend("hf_chat", "tiny", model=str(plain), device="cpu")
