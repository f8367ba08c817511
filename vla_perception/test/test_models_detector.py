"""Open-vocabulary detectors (Grounding DINO, OWL-ViT) on tiny random-weight models.

The weights are random: these tests check plumbing and parity with transformers' own calls
(processor + model + post_process_grounded_object_detection), label mapping, NMS and input
checking, not what the model finds.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from vla_perception.core.models import ImageInputError, TextInputError, TextTooLongError, load_detector
from vla_perception.core.models import resolve_model_source
from vla_perception.core.types import Box2D, Detection

HEIGHT, WIDTH = 90, 120


def image(seed=0, height=HEIGHT, width=WIDTH):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def load(tiny_models_dir, backend):
    source = resolve_model_source("tiny", backend, str(tiny_models_dir / backend))
    return load_detector(source, backend=backend, device="cpu", threads=1)


@pytest.fixture(scope="module")
def dino(tiny_models_dir):
    return load(tiny_models_dir, "grounding_dino")


@pytest.fixture(scope="module")
def owl(tiny_models_dir):
    return load(tiny_models_dir, "owlvit")


def clipped(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.clip(boxes, 0, [width, height, width, height])


def by_score(scores, boxes):
    order = np.argsort(-np.asarray(scores), kind="stable")
    return np.asarray(scores)[order], np.asarray(boxes)[order]


@torch.no_grad()
def grounding_dino_reference(directory, frame, prompt, box_threshold, text_threshold):
    from transformers import AutoProcessor, GroundingDinoForObjectDetection

    processor = AutoProcessor.from_pretrained(directory)
    model = GroundingDinoForObjectDetection.from_pretrained(directory).eval()
    inputs = processor(images=Image.fromarray(frame), text=prompt, return_tensors="pt")
    outputs = model(**inputs)
    return processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold,
        target_sizes=[frame.shape[:2]])[0]


def test_grounding_dino_matches_transformers_post_processing(dino, tiny_models_dir):
    frame = image(1)
    result = dino.detect(frame, "Cup . red duck", box_threshold=0.2, text_threshold=0.2, nms_iou=1.0)
    assert result.prompt == "cup . red duck ."
    directory = tiny_models_dir / "grounding_dino"
    expected = grounding_dino_reference(directory, frame, "cup . red duck .", 0.2, 0.2)
    assert len(expected["scores"]) > 0, "thresholds too high for a meaningful comparison"
    got_scores, got_boxes = by_score([d.score for d in result.detections],
                                     [d.box.as_array() for d in result.detections])
    want_scores, want_boxes = by_score(expected["scores"].numpy(), expected["boxes"].numpy())
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-5)
    np.testing.assert_allclose(got_boxes, clipped(want_boxes, WIDTH, HEIGHT), atol=1e-3)
    assert result.model_id.endswith("grounding_dino") and result.inference_time > 0


def test_grounding_dino_labels_are_prompt_phrases_and_boxes_lie_in_the_image(dino):
    result = dino.detect(image(2), ["cup", "red duck", "blue bottle"], box_threshold=0.0, text_threshold=0.0)
    assert result.detections, "threshold 0 keeps every query"
    for detection in result.detections:
        assert detection.label in ("cup", "red duck", "blue bottle")
        box = detection.box
        assert 0 <= box.x_min <= box.x_max <= WIDTH and 0 <= box.y_min <= box.y_max <= HEIGHT


def phrase_positions(token_ids: list[int], phrase_ids: list[list[int]]) -> list[list[int]]:
    """Positions of each phrase's tokens in the prompt's ids, found left to right."""
    positions, start = [], 0
    for ids in phrase_ids:
        while token_ids[start:start + len(ids)] != ids:
            start += 1
        positions.append(list(range(start, start + len(ids))))
        start += len(ids)
    return positions


@torch.no_grad()
def test_grounding_dino_label_is_the_phrase_whose_tokens_score_highest(dino, tiny_models_dir):
    from transformers import AutoProcessor, GroundingDinoForObjectDetection

    phrases, frame = ["cup", "red duck", "blue bottle"], image(5)
    result = dino.detect(frame, phrases, box_threshold=0.0, text_threshold=0.0, nms_iou=1.0)
    directory = tiny_models_dir / "grounding_dino"
    processor = AutoProcessor.from_pretrained(directory)
    model = GroundingDinoForObjectDetection.from_pretrained(directory).eval()
    inputs = processor(images=Image.fromarray(frame), text="cup . red duck . blue bottle .",
                       return_tensors="pt")
    outputs = model(**inputs)
    probs = outputs.logits[0].sigmoid()
    (reference,) = processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=0.0, text_threshold=0.0, target_sizes=[frame.shape[:2]])
    boxes = reference["boxes"]
    phrase_ids = [processor.tokenizer(p, add_special_tokens=False)["input_ids"] for p in phrases]
    positions = phrase_positions(inputs["input_ids"][0].tolist(), phrase_ids)
    expected = {}
    for query, box in enumerate(clipped(boxes.numpy(), WIDTH, HEIGHT)):
        best = int(np.argmax([probs[query, span].max().item() for span in positions]))
        expected[tuple(np.round(box, 2))] = phrases[best]
    got = {tuple(np.round(d.box.as_array(), 2)): d.label for d in result.detections}
    assert got == expected
    assert len(set(expected.values())) > 1, "random weights should spread boxes over several phrases"


def test_thresholds_filter_detections(dino):
    frame = image(3)
    low = dino.detect(frame, "cup . duck", box_threshold=0.0, text_threshold=0.0, nms_iou=1.0).detections
    scores = sorted(d.score for d in low)
    assert scores[0] < scores[-1], "random weights should give spread scores"
    high = dino.detect(frame, "cup . duck", box_threshold=scores[-1], text_threshold=0.0,
                       nms_iou=1.0).detections
    middle = scores[len(scores) // 2]
    some = dino.detect(frame, "cup . duck", box_threshold=middle, text_threshold=0.0, nms_iou=1.0).detections
    assert high == [] and 0 < len(some) < len(low)
    assert all(d.score > middle for d in some)


def test_class_aware_nms_keeps_the_best_box_per_label_and_overlapping_other_labels():
    from vla_perception.core.models.detector import class_aware_nms

    detections = [Detection("cup", 0.9, Box2D(0, 0, 10, 10)), Detection("cup", 0.8, Box2D(1, 1, 11, 11)),
                  Detection("duck", 0.7, Box2D(1, 0, 11, 10)), Detection("cup", 0.6, Box2D(50, 50, 60, 60))]
    kept = class_aware_nms(detections, 0.5)
    assert [(d.label, d.score) for d in kept] == [("cup", 0.9), ("duck", 0.7), ("cup", 0.6)]
    assert len(class_aware_nms(detections, 1.0)) == 4


@torch.no_grad()
def owlvit_reference(directory, frame, phrases, threshold):
    from transformers import AutoProcessor, OwlViTForObjectDetection

    processor = AutoProcessor.from_pretrained(directory)
    model = OwlViTForObjectDetection.from_pretrained(directory).eval()
    inputs = processor(text=[phrases], images=Image.fromarray(frame), return_tensors="pt")
    outputs = model(**inputs)
    return processor.post_process_grounded_object_detection(outputs, threshold=threshold,
                                                            target_sizes=[frame.shape[:2]])[0]


def test_owlvit_matches_transformers_post_processing(owl, tiny_models_dir):
    frame = image(4)
    result = owl.detect(frame, ["cup", "red duck"], box_threshold=0.0, text_threshold=0.0, nms_iou=1.0)
    expected = owlvit_reference(tiny_models_dir / "owlvit", frame, ["cup", "red duck"], 0.0)
    got_scores, got_boxes = by_score([d.score for d in result.detections],
                                     [d.box.as_array() for d in result.detections])
    want_scores, want_boxes = by_score(expected["scores"].numpy(), expected["boxes"].numpy())
    np.testing.assert_allclose(got_scores, want_scores, atol=1e-5)
    np.testing.assert_allclose(got_boxes, clipped(want_boxes, WIDTH, HEIGHT), atol=1e-3)
    labels = {("cup", "red duck")[int(i)] for i in expected["labels"]}
    assert {d.label for d in result.detections} == labels
    assert result.prompt == "cup . red duck ."


@pytest.mark.parametrize("backend", ["grounding_dino", "owlvit"])
@pytest.mark.parametrize("prompt", ["", "   ", " . . ", [], [" "]])
def test_empty_prompts_are_rejected(dino, owl, backend, prompt):
    detector = dino if backend == "grounding_dino" else owl
    with pytest.raises(TextInputError):
        detector.detect(image(), prompt)


def test_prompt_longer_than_the_text_limit_is_rejected(dino, owl):
    limit = dino.model.config.max_text_len
    with pytest.raises(TextTooLongError, match="long"):
        dino.detect(image(), "cup . " + " ".join(["red"] * limit) + " duck")
    owl_limit = owl.model.config.text_config.max_position_embeddings
    with pytest.raises(TextTooLongError, match="long"):
        owl.detect(image(), ["cup", " ".join(["red"] * owl_limit) + " duck"])


@pytest.mark.parametrize("bad", [np.zeros((0, 10, 3), np.uint8), np.zeros((40, 40), np.uint8),
                                 np.zeros((40, 40, 1), np.uint8), np.zeros((3, 40, 3), np.uint8)])
def test_bad_images_are_rejected(dino, owl, bad):
    for detector in (dino, owl):
        with pytest.raises(ImageInputError):
            detector.detect(bad, "cup")
