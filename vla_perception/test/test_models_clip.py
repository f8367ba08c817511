"""CLIP classifier on a tiny random-weight open_clip model.

The weights are random: these tests check plumbing and parity with open_clip's own calls
(encode_image / encode_text + softmax), the text-embedding cache and input checking, not
what the model recognises.
"""
import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from vla_perception.core.models import ImageInputError, TextInputError, TextTooLongError, load_classifier
from vla_perception.core.models import resolve_model_source
from vla_perception.core.types import Box2D, VlaInputError

LABELS = ["cup", "duck", "red bottle"]


@pytest.fixture(scope="module")
def classifier(tiny_models_dir):
    source = resolve_model_source("tiny", "clip", str(tiny_models_dir / "clip"))
    return load_classifier(source, device="cpu", threads=1, templates=["a photo of a {}."])


@pytest.fixture(scope="module")
def reference(tiny_models_dir):
    """open_clip's own model, preprocessing and tokenizer, loaded independently of our code."""
    name = f"local-dir:{tiny_models_dir / 'clip'}"
    model, _, preprocess = open_clip.create_model_and_transforms(name)
    return model.eval(), preprocess, open_clip.get_tokenizer(name)


def image(seed=0, height=120, width=160):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@torch.no_grad()
def reference_scores(reference, pictures, prompts):
    model, preprocess, tokenizer = reference
    image_features = torch.cat([model.encode_image(preprocess(p)[None]) for p in pictures])
    text_features = model.encode_text(tokenizer(prompts))
    image_features = image_features / image_features.norm(dim=-1, keepdim=True)
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    return (model.logit_scale.exp() * image_features @ text_features.T).softmax(dim=-1).numpy()


def test_whole_frame_scores_match_open_clip(classifier, reference):
    frame = image()
    (result,) = classifier.classify(frame, LABELS)
    prompts = [f"a photo of a {x}." for x in LABELS]
    expected = reference_scores(reference, [Image.fromarray(frame)], prompts)[0]
    np.testing.assert_allclose(result.scores, expected, atol=1e-5)
    assert result.labels == LABELS and result.box is None
    assert result.best_label == LABELS[int(np.argmax(expected))]
    assert result.best_score == pytest.approx(expected.max(), abs=1e-5)
    assert result.inference_time > 0 and classifier.model_id.endswith("clip")
    assert len(result.scores) == len(LABELS) and sum(result.scores) == pytest.approx(1.0, abs=1e-6)
    assert not np.allclose(result.scores, 1 / 3, atol=1e-3), "random weights should not give uniform scores"


def test_box_crops_go_through_in_one_batch_and_match_per_crop_reference(classifier, reference):
    frame = image(1)
    boxes = [Box2D(10.2, 5.7, 60.0, 70.0), Box2D(100.0, 40.0, 170.0, 130.0)]  # the second is clipped
    calls = []
    original = classifier.model.encode_image
    classifier.model.encode_image = lambda batch: calls.append(batch.shape[0]) or original(batch)
    try:
        results = classifier.classify(frame, LABELS, boxes)
    finally:
        classifier.model.encode_image = original
    assert calls == [2]
    crops = [Image.fromarray(frame).crop((10, 5, 60, 70)), Image.fromarray(frame).crop((100, 40, 160, 120))]
    expected = reference_scores(reference, crops, [f"a photo of a {x}." for x in LABELS])
    for result, box, row in zip(results, boxes, expected):
        assert result.box == box
        np.testing.assert_allclose(result.scores, row, atol=1e-5)


def count_text_tower_calls(classifier):
    calls = []
    original = classifier.model.encode_text

    def counting(tokens):
        calls.append(tokens.shape[0])
        return original(tokens)

    classifier.model.encode_text = counting
    return calls, lambda: setattr(classifier.model, "encode_text", original)


def test_repeated_labels_skip_the_text_tower_and_new_labels_run_it(tiny_models_dir):
    source = resolve_model_source("tiny", "clip", str(tiny_models_dir / "clip"))
    classifier = load_classifier(source, device="cpu")
    calls, restore = count_text_tower_calls(classifier)
    try:
        first = classifier.classify(image(2), ["mug", "tray"])[0]
        assert len(calls) == 1 and calls[0] >= 1
        second = classifier.classify(image(4), ["mug", "tray"])[0]
        assert len(calls) == 1, "the same label set must not run the text tower again"
        assert not np.allclose(second.scores, first.scores), "the image tower did run on the new frame"
        classifier.classify(image(2), ["mug", "cube"])
        assert len(calls) == 2, "a changed label set runs the text tower"
        again = classifier.classify(image(2), ["mug", "tray"])[0]
        np.testing.assert_allclose(again.scores, first.scores, atol=1e-6)
    finally:
        restore()


def test_several_templates_average_their_unit_embeddings(tiny_models_dir, reference):
    templates = ["a photo of a {}.", "a picture of the {}"]
    source = resolve_model_source("tiny", "clip", str(tiny_models_dir / "clip"))
    classifier = load_classifier(source, device="cpu", templates=templates)
    frame = image(3)
    (result,) = classifier.classify(frame, ["cup", "duck"])
    model, preprocess, tokenizer = reference
    with torch.no_grad():
        text = model.encode_text(tokenizer([t.format(label) for label in ["cup", "duck"] for t in templates]))
        text = (text / text.norm(dim=-1, keepdim=True)).reshape(2, 2, -1).mean(dim=1)
        text = text / text.norm(dim=-1, keepdim=True)
        picture = model.encode_image(preprocess(Image.fromarray(frame))[None])
        picture = picture / picture.norm(dim=-1, keepdim=True)
        expected = (model.logit_scale.exp() * picture @ text.T).softmax(dim=-1).numpy()[0]
    np.testing.assert_allclose(result.scores, expected, atol=1e-5)
    with pytest.raises(ValueError, match="template"):
        load_classifier(source, device="cpu", templates=["no placeholder"])


@pytest.mark.parametrize("labels", [[], [" "], ["cup", ""], "cup"])
def test_empty_labels_are_rejected(classifier, labels):
    with pytest.raises(TextInputError, match="no labels"):
        classifier.classify(image(), labels)


def test_label_longer_than_the_context_is_rejected_not_truncated(classifier):
    context = classifier.model.context_length
    long_label = " ".join(["very"] * context) + " red cup"
    with pytest.raises(TextTooLongError, match="long"):
        classifier.classify(image(), ["cup", long_label])


@pytest.mark.parametrize("bad", [
    np.zeros((0, 10, 3), np.uint8), np.zeros((40, 40), np.uint8), np.zeros((40, 40, 1), np.uint8),
    np.zeros((40, 40, 4), np.uint8), np.zeros((4, 40, 3), np.uint8), np.zeros((40, 40, 3), np.float32),
    "not an image"])
def test_bad_images_are_rejected(classifier, bad):
    with pytest.raises(ImageInputError):
        classifier.classify(bad, ["cup"])


def test_boxes_outside_the_image_are_rejected(classifier):
    with pytest.raises(VlaInputError, match="outside"):
        classifier.classify(image(), ["cup"], [Box2D(200.0, 10.0, 250.0, 50.0)])
