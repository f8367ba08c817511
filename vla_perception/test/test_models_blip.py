"""BLIP captioning and VQA on tiny random-weight models.

The weights are random: the texts are gibberish. These tests check plumbing and parity with
transformers' own processor + generate + decode, the token bound and input checking.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from vla_perception.core.models import ImageInputError, TextInputError, TextTooLongError, load_vlm
from vla_perception.core.models import resolve_model_source
from vla_perception.core.types import VlaInputError


def image(seed=0, height=60, width=80):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def vlm(tiny_models_dir):
    caption = resolve_model_source("tiny", "blip_caption", str(tiny_models_dir / "blip_caption"))
    vqa = resolve_model_source("tiny", "blip_vqa", str(tiny_models_dir / "blip_vqa"))
    return load_vlm(caption, vqa, device="cpu", threads=1)


@torch.no_grad()
def reference_generate(model_class, directory, frame, text, max_new_tokens):
    from transformers import BlipProcessor

    processor = BlipProcessor.from_pretrained(directory)
    model = model_class.from_pretrained(directory).eval()
    inputs = processor(images=Image.fromarray(frame), text=text, return_tensors="pt")
    tokens = model.generate(**inputs, max_new_tokens=max_new_tokens)
    return processor.decode(tokens[0], skip_special_tokens=True).strip(), tokens.shape[-1], inputs


@pytest.mark.parametrize("prefix", ["", "a photo of"])
def test_caption_matches_transformers_generate(vlm, tiny_models_dir, prefix):
    from transformers import BlipForConditionalGeneration

    frame = image(1)
    result = vlm.caption(frame, prefix, 6)
    expected, _, _ = reference_generate(BlipForConditionalGeneration, tiny_models_dir / "blip_caption", frame,
                                        prefix or None, 6)
    assert result.text == expected and result.text, "random weights still emit some tokens"
    assert result.inference_time > 0


def test_caption_length_is_bounded_by_max_new_tokens(vlm, tiny_models_dir):
    from transformers import BlipForConditionalGeneration

    short, long = vlm.caption(image(2), "", 2).text, vlm.caption(image(2), "", 8).text
    _, length, inputs = reference_generate(BlipForConditionalGeneration, tiny_models_dir / "blip_caption",
                                           image(2), None, 2)
    assert length <= 1 + 2  # the [DEC] start token plus at most 2 new ones
    assert len(short.split()) <= len(long.split()) and long.startswith(short)


def test_answer_matches_transformers_generate(vlm, tiny_models_dir):
    from transformers import BlipForQuestionAnswering

    frame = image(3)
    result = vlm.answer(frame, "is there a red cup?", 4)
    expected, length, _ = reference_generate(BlipForQuestionAnswering, tiny_models_dir / "blip_vqa", frame,
                                             "is there a red cup?", 4)
    assert result.text == expected and length <= 1 + 4
    assert result.inference_time > 0 and "blip_vqa" in vlm.model_id


@pytest.mark.parametrize("question", ["", "   ", None])
def test_empty_questions_are_rejected(vlm, question):
    with pytest.raises(TextInputError):
        vlm.answer(image(), question, 3)


def test_text_longer_than_the_model_limit_is_rejected(vlm):
    limit = vlm.vqa_model.config.text_config.max_position_embeddings
    with pytest.raises(TextTooLongError, match="long"):
        vlm.answer(image(), " ".join(["red"] * limit) + " cup?", 3)
    with pytest.raises(TextTooLongError, match="long"):
        vlm.caption(image(), " ".join(["red"] * limit), 3)


def test_a_prefix_that_leaves_no_room_for_the_caption_is_refused_up_front(vlm):
    """A long prefix plus the tokens to generate once overflowed BLIP's positions (IndexError mid-generate)."""
    limit = vlm.caption_model.config.text_config.max_position_embeddings
    prefix = " ".join(["red"] * (limit // 2))
    prefix_tokens = len(vlm.caption_processor.tokenizer(prefix)["input_ids"])
    with pytest.raises(TextTooLongError, match="to generate"):
        vlm.caption(image(), prefix, limit - prefix_tokens + 1)
    assert isinstance(vlm.caption(image(), prefix, limit - prefix_tokens).text, str)  # the largest that fits


@pytest.mark.parametrize("tokens", [0, -1, 5000])
def test_unbounded_or_empty_token_budgets_are_rejected(vlm, tokens):
    with pytest.raises(VlaInputError, match="max_new_tokens"):
        vlm.caption(image(), "", tokens)
    with pytest.raises(VlaInputError, match="max_new_tokens"):
        vlm.answer(image(), "what?", tokens)


@pytest.mark.parametrize("bad", [np.zeros((0, 10, 3), np.uint8), np.zeros((40, 40), np.uint8),
                                 np.zeros((40, 40, 1), np.uint8), np.zeros((40, 2, 3), np.uint8)])
def test_bad_images_are_rejected(vlm, bad):
    with pytest.raises(ImageInputError):
        vlm.caption(bad, "", 3)
    with pytest.raises(ImageInputError):
        vlm.answer(bad, "what?", 3)


def test_ask_is_answered_by_the_vqa_model(vlm, tiny_models_dir):
    from transformers import BlipForQuestionAnswering

    expected, _, _ = reference_generate(BlipForQuestionAnswering, tiny_models_dir / "blip_vqa", image(4),
                                        "what is red?", 4)
    assert vlm.ask(image(4), "what is red?", 4).text == expected
    with pytest.raises(VlaInputError):
        vlm.ask(image(4), " ", 4)
