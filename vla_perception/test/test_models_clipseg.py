"""CLIPSeg mask refinement on a tiny random-weight CLIPSeg model.

The weights are random: these tests check the crop/paste geometry, parity with transformers'
own CLIPSeg call on the same crop, batching and input checking, not what the model segments.
"""
import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

from vla_perception.core.models import TextTooLongError, load_segmenter, resolve_model_source
from vla_perception.core.models.segmenter import context_window, paste_probabilities, refine_detections
from vla_perception.core.types import Box2D, Detection, VlaInputError

BOXES = [Box2D(10, 20, 60, 90), Box2D(80.5, 5.2, 150.7, 70.9)]
PHRASES = ["red mug", "duck"]


@pytest.fixture(scope="module")
def segmenter(tiny_models_dir):
    return load_segmenter(resolve_model_source("tiny", "clipseg", str(tiny_models_dir / "clipseg")), device="cpu")


def image(seed=0, height=120, width=160):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_probability_maps_match_transformers_on_the_same_crop(segmenter, tiny_models_dir):
    frame = image()
    x0, y0, x1, y1 = context_window(BOXES[1], 0.15, 160, 120)
    crop = frame[y0:y1, x0:x1]
    ours = segmenter.probabilities([crop], ["duck"])[0]
    processor = CLIPSegProcessor.from_pretrained(tiny_models_dir / "clipseg")
    model = CLIPSegForImageSegmentation.from_pretrained(tiny_models_dir / "clipseg").eval()
    with torch.no_grad():
        logits = model(**processor(text=["duck"], images=[Image.fromarray(crop)], return_tensors="pt")).logits
    np.testing.assert_allclose(ours, logits.reshape(ours.shape).sigmoid().numpy(), atol=1e-6)
    assert ours.std() > 1e-3, "random weights should not give a constant map"


def test_masks_are_image_sized_and_never_leave_their_box(segmenter):
    result = segmenter.segment(image(), BOXES, PHRASES, threshold=0.5)
    assert len(result.masks) == 2 and result.inference_time > 0
    for mask, box in zip(result.masks, BOXES):
        assert mask.shape == (120, 160) and mask.dtype == bool
        outside = mask.copy()
        outside[int(box.y_min):int(np.ceil(box.y_max)), int(box.x_min):int(np.ceil(box.x_max))] = False
        assert not outside.any()


def test_threshold_zero_keeps_the_whole_box_and_one_keeps_nothing(segmenter):
    everything = segmenter.segment(image(), BOXES[:1], PHRASES[:1], threshold=0.0).masks[0]
    assert everything.sum() == 50 * 70  # the box 10..60 x 20..90
    nothing = segmenter.segment(image(), BOXES[:1], PHRASES[:1], threshold=1.0).masks[0]
    assert not nothing.any()


def test_one_batch_gives_the_same_masks_as_one_call_per_box(segmenter):
    frame = image(3)
    together = segmenter.segment(frame, BOXES, PHRASES, threshold=0.45).masks
    for index, mask in enumerate(together):
        alone = segmenter.segment(frame, [BOXES[index]], [PHRASES[index]], threshold=0.45).masks[0]
        np.testing.assert_array_equal(mask, alone)


def test_paste_resizes_the_map_onto_its_window():
    """A left-half-high map on a 40x20 window marks the window's left 20 columns inside the box."""
    probabilities = np.zeros((8, 8), np.float32)
    probabilities[:, :4] = 1.0
    mask = paste_probabilities(probabilities, (10, 30, 50, 50), Box2D(10, 30, 50, 50), (100, 100), 0.5)
    assert mask[30:50, 10:30].all() and not mask[30:50, 30:50].any()
    assert mask.sum() == 20 * 20
    clipped = paste_probabilities(probabilities, (10, 30, 50, 50), Box2D(20, 35, 50, 50), (100, 100), 0.5)
    assert clipped.sum() == 10 * 15  # the same half, cut to the box 20..50 x 35..50


def test_context_window_grows_the_box_and_stays_in_the_image():
    assert context_window(Box2D(40, 40, 60, 80), 0.25, 100, 100) == (35, 30, 65, 90)
    assert context_window(Box2D(0, 0, 20, 10), 0.5, 25, 100) == (0, 0, 25, 15)


def test_refine_keeps_the_box_when_the_mask_is_too_small(segmenter):
    detections = [Detection("mug", 0.9, BOXES[0], phrase="red mug"), Detection("duck", 0.8, BOXES[1])]
    refined, notes = refine_detections(segmenter, image(), detections, threshold=0.0)
    assert all(d.mask is not None for d in refined) and notes == []
    assert refined[0].mask.sum() == 50 * 70
    kept, notes = refine_detections(segmenter, image(), detections, threshold=1.0)
    assert [d.mask for d in kept] == [None, None]
    assert len(notes) == 2 and "mug: CLIPSeg mask has 0 px" in notes[0]


def test_bad_inputs_are_refused(segmenter):
    with pytest.raises(VlaInputError, match="phrase"):
        segmenter.segment(image(), BOXES, ["mug"])
    with pytest.raises(VlaInputError, match="threshold"):
        segmenter.segment(image(), BOXES, PHRASES, threshold=float("nan"))
    with pytest.raises(VlaInputError, match="empty"):
        segmenter.segment(image(), BOXES, ["mug", "  "])
    with pytest.raises(VlaInputError, match="outside"):
        segmenter.segment(image(), [Box2D(500, 500, 600, 600)], ["mug"])
    with pytest.raises(TextTooLongError):
        segmenter.segment(image(), BOXES[:1], ["mug " * 100])
    assert segmenter.segment(image(), [], []).masks == []
