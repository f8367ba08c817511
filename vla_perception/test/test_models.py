"""Model layer on tiny random-weight models (plumbing and parity with the libraries, not accuracy).

Each wrapper's output is compared with the library's own reference call on the same weights and image.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from model_fixtures import tiny_models_dir  # noqa: E402,F401  (pytest fixture)

from vla_perception.core.models import (  # noqa: E402
    ImageInputError,
    TextInputError,
    TextTooLongError,
    load_classifier,
    load_detector,
    load_vlm,
    resolve_model_source,
)
from vla_perception.core.models.detector import class_aware_nms, label_for, prompt_phrases  # noqa: E402
from vla_perception.core.models.sources import BUILTIN_PROFILES, ModelSource  # noqa: E402
from vla_perception.core.types import Box2D, Detection, VlaInputError  # noqa: E402

RNG = np.random.default_rng(7)
IMAGE = RNG.integers(0, 256, (60, 80, 3), dtype=np.uint8)


def clip_to_image(box: torch.Tensor) -> np.ndarray:
    height, width = IMAGE.shape[:2]
    return np.clip(box.numpy(), 0, [width, height, width, height])


def local(family, root) -> ModelSource:
    return ModelSource(family, local_path=Path(root) / family)


@pytest.fixture(scope="module")
def classifier(tiny_models_dir):  # noqa: F811
    return load_classifier(local("clip", tiny_models_dir), device="cpu", threads=1)


@pytest.fixture(scope="module")
def gdino(tiny_models_dir):  # noqa: F811
    return load_detector(local("grounding_dino", tiny_models_dir), backend="grounding_dino", device="cpu")


@pytest.fixture(scope="module")
def owlvit(tiny_models_dir):  # noqa: F811
    return load_detector(local("owlvit", tiny_models_dir), backend="owlvit", device="cpu")


@pytest.fixture(scope="module")
def blip(tiny_models_dir):  # noqa: F811
    return load_vlm(local("blip_caption", tiny_models_dir), local("blip_vqa", tiny_models_dir), device="cpu")


def test_clip_matches_open_clip_reference(classifier):
    labels = ["cup", "red duck", "bottle"]
    boxes = [Box2D(0, 0, 40, 30), Box2D(20, 10, 80, 60)]
    results = classifier.classify(IMAGE, labels, boxes)
    from PIL import Image

    model, preprocess, tokenizer = classifier.model, classifier.preprocess, classifier.tokenizer
    with torch.no_grad():
        text = model.encode_text(tokenizer([f"a photo of a {label}" for label in labels]))
        text = text / text.norm(dim=-1, keepdim=True)
        for box, result in zip(boxes, results):
            crop = IMAGE[int(box.y_min) : int(box.y_max), int(box.x_min) : int(box.x_max)]
            image = model.encode_image(preprocess(Image.fromarray(crop)).unsqueeze(0))
            image = image / image.norm(dim=-1, keepdim=True)
            expected = (model.logit_scale.exp() * image @ text.T).softmax(dim=-1)[0].numpy()
            np.testing.assert_allclose(result.scores, expected, atol=1e-5)
            assert result.best_label == labels[int(np.argmax(expected))] and result.box == box
            assert result.inference_time > 0
    whole = classifier.classify(IMAGE, labels)
    assert len(whole) == 1 and whole[0].box is None and abs(sum(whole[0].scores) - 1) < 1e-5


def test_text_embedding_cache_skips_text_tower(classifier, monkeypatch):
    calls = []
    original = classifier.model.encode_text
    monkeypatch.setattr(classifier.model, "encode_text", lambda *a, **k: calls.append(1) or original(*a, **k))
    first = classifier.classify(IMAGE, ["duck", "mug"])
    assert len(calls) == 1
    second = classifier.classify(IMAGE, ["duck", "mug"])
    assert len(calls) == 1 and second[0].scores == pytest.approx(first[0].scores, abs=1e-6)
    classifier.classify(IMAGE, ["duck", "tray"])
    assert len(calls) == 2


def test_grounding_dino_matches_transformers_reference(gdino):
    result = gdino.detect(
        IMAGE, ["Red cup", "blue  bottle"], box_threshold=0.3, text_threshold=0.2, nms_iou=1.0
    )
    assert result.prompt == "red cup . blue bottle ."
    from PIL import Image

    inputs = gdino.processor(
        images=Image.fromarray(IMAGE), text="red cup . blue bottle .", return_tensors="pt"
    )
    with torch.no_grad():
        outputs = gdino.model(**inputs)
    reference = gdino.processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=0.3, text_threshold=0.2, target_sizes=[IMAGE.shape[:2]]
    )[0]
    order = torch.argsort(reference["scores"], descending=True, stable=True)
    assert len(result.detections) == len(order) > 0
    for det, index in zip(result.detections, order.tolist()):
        assert det.score == pytest.approx(float(reference["scores"][index]), abs=1e-5)
        np.testing.assert_allclose(det.box.as_array(), clip_to_image(reference["boxes"][index]), atol=1e-3)
        assert det.label in ("red cup", "blue bottle") and "[SEP]" not in det.phrase


def test_owlvit_matches_transformers_reference(owlvit):
    result = owlvit.detect(IMAGE, "cup . duck", box_threshold=0.0, nms_iou=1.0)
    from PIL import Image

    inputs = owlvit.processor(
        text=[["cup", "duck"]], images=Image.fromarray(IMAGE), padding="max_length", return_tensors="pt"
    )
    with torch.no_grad():
        outputs = owlvit.model(**inputs)
    reference = owlvit.processor.post_process_grounded_object_detection(
        outputs, threshold=0.0, target_sizes=[IMAGE.shape[:2]]
    )[0]
    order = torch.argsort(reference["scores"], descending=True, stable=True)
    assert len(result.detections) == len(order) > 0
    for det, index in zip(result.detections, order.tolist()):
        assert det.score == pytest.approx(float(reference["scores"][index]), abs=1e-5)
        np.testing.assert_allclose(det.box.as_array(), clip_to_image(reference["boxes"][index]), atol=1e-3)
        assert det.label == ["cup", "duck"][int(reference["labels"][index])]


def test_blip_matches_generate(blip):
    from PIL import Image

    for prefix in ("", "a photo of"):
        ours = blip.caption(IMAGE, prefix, max_new_tokens=4)
        inputs = blip.caption_processor(
            images=Image.fromarray(IMAGE), text=prefix or None, return_tensors="pt"
        )
        tokens = blip.caption_model.generate(**inputs, max_new_tokens=4)
        assert ours.text == blip.caption_processor.decode(tokens[0], skip_special_tokens=True).strip()
        assert ours.inference_time > 0
    ours = blip.answer(IMAGE, "what color is the cup?", max_new_tokens=3)
    inputs = blip.vqa_processor(
        images=Image.fromarray(IMAGE), text="what color is the cup?", return_tensors="pt"
    )
    tokens = blip.vqa_model.generate(**inputs, max_new_tokens=3)
    assert ours.text == blip.vqa_processor.decode(tokens[0], skip_special_tokens=True).strip()


def test_prompt_forms_and_labels():
    assert prompt_phrases("Red cup . blue bottle.") == ["red cup", "blue bottle"]
    assert prompt_phrases(["red cup", " blue bottle "]) == ["red cup", "blue bottle"]
    assert label_for("red cup", ["red cup", "bottle"]) == "red cup"
    assert label_for("cup", ["red cup", "bottle"]) == "red cup"


def test_class_aware_nms_keeps_other_classes():
    a = Detection("cup", 0.9, Box2D(0, 0, 10, 10))
    b = Detection("cup", 0.8, Box2D(1, 0, 11, 10))
    c = Detection("duck", 0.7, Box2D(1, 0, 11, 10))
    assert class_aware_nms([b, c, a], 0.5) == [a, c]


@pytest.mark.parametrize(
    "image,error",
    [
        (np.zeros((0, 10, 3), np.uint8), ImageInputError),
        (np.zeros((40, 40), np.uint8), ImageInputError),
        (np.zeros((40, 40, 1), np.uint8), ImageInputError),
        (np.zeros((4, 40, 3), np.uint8), ImageInputError),
    ],
)
def test_bad_images(classifier, gdino, blip, image, error):
    for call in (
        lambda: classifier.classify(image, ["cup"]),
        lambda: gdino.detect(image, "cup"),
        lambda: blip.caption(image),
    ):
        with pytest.raises(error):
            call()
    assert issubclass(error, VlaInputError)


def test_bad_text(classifier, gdino, owlvit, blip):
    for call in (
        lambda: classifier.classify(IMAGE, ["  "]),
        lambda: classifier.classify(IMAGE, []),
        lambda: gdino.detect(IMAGE, "   "),
        lambda: gdino.detect(IMAGE, " . "),
        lambda: owlvit.detect(IMAGE, []),
        lambda: blip.answer(IMAGE, " "),
    ):
        with pytest.raises(TextInputError):
            call()
    long = " ".join(["cup"] * 100)
    for call in (
        lambda: classifier.classify(IMAGE, [long]),
        lambda: gdino.detect(IMAGE, long),
        lambda: owlvit.detect(IMAGE, long),
        lambda: blip.answer(IMAGE, long),
    ):
        with pytest.raises(TextTooLongError, match="too long"):
            call()
    with pytest.raises(VlaInputError):
        blip.caption(IMAGE, max_new_tokens=0)


def test_box_outside_image_is_input_error(classifier):
    with pytest.raises(ImageInputError):
        classifier.classify(IMAGE, ["cup"], [Box2D(100, 100, 120, 120)])


def test_a_missing_tiny_model_is_built_on_first_use_and_says_so(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("VLA_PERCEPTION_MODELS", str(tmp_path / "none"))
    with caplog.at_level(logging.INFO, logger="vla_perception"):
        model = load_vlm(resolve_model_source("tiny", "blip_caption"), None, device="cpu")
    assert model.caption(np.zeros((40, 50, 3), np.uint8), max_new_tokens=3).text is not None
    assert sorted(path.name for path in (tmp_path / "none").iterdir()) == ["blip_caption"]  # no scratch left
    assert any("building the missing tiny blip_caption model" in line for line in caplog.messages)


def test_make_tiny_cli_writes_loadable_models(tmp_path):
    from vla_perception.cli.main import main

    assert main(["models", "make-tiny", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(BUILTIN_PROFILES["default"])
    assert os.path.isfile(tmp_path / "clip" / "open_clip_model.safetensors")
