"""The grounding choice: rules, VLM, rules then VLM, and the validation of the VLM's answer."""
import numpy as np
import pytest

from vla_perception.core.grounding import (
    Choice, GroundingError, choose, describe_candidates, grounding_prompt, parse_choice)
from vla_perception.core.types import Box2D, Detection, Object3D, VlaInputError

DETECTIONS = [Detection("mug", 0.9, Box2D(10, 20, 50, 60)), Detection("mug", 0.7, Box2D(100, 20, 150, 70)),
              Detection("laptop", 0.8, Box2D(200, 10, 300, 90))]
OBJECTS = [Object3D("mug", 0.9, np.array([0.1, 0.0, 0.8]), np.array([0, 0, 0, 1.0]), np.ones(3) * 0.08),
           None,
           Object3D("laptop", 0.8, np.array([0.4, 0.0, 0.9]), np.array([0, 0, 0, 1.0]), np.ones(3) * 0.3)]


def test_the_prompt_numbers_every_candidate_with_label_score_box_and_position():
    prompt = grounding_prompt("the mug next to the laptop", DETECTIONS, OBJECTS)
    lines = describe_candidates(DETECTIONS, OBJECTS).splitlines()
    assert "the mug next to the laptop" in prompt and all(line in prompt for line in lines)
    assert lines[0].startswith("0: 'mug', score 0.90, box [10, 20, 50, 60] px, position [0.1, 0.0, 0.8]")
    assert lines[1].endswith("position unknown") and lines[2].startswith("2: 'laptop'")
    assert '{"id": N}' in prompt


@pytest.mark.parametrize("answer, index", [('{"id": 1}', 1), (' {"id":0} ', 0), ('```json\n{"id": 2}\n```', 2)])
def test_valid_answers_give_the_id(answer, index):
    assert parse_choice(answer, 3) == index


@pytest.mark.parametrize("answer, match", [
    ('{"id": 3}', "only ids 0..2 exist"),
    ('{"id": -1}', "must be >= 0"),
    ('{"id": "1"}', "expected integer"),
    ('{"id": 1.0}', "expected integer"),
    ('{"id": 1, "why": "left"}', "unexpected property"),
    ('{"object": 1}', "missing required property 'id'"),
    ("the second mug", "not JSON"),
    ("1", "expected object"),
])
def test_unusable_answers_are_clear_failures_never_guesses(answer, match):
    with pytest.raises(GroundingError, match=match):
        parse_choice(answer, 3)


def fail(message):
    def raise_it():
        raise VlaInputError(message)
    return raise_it


def test_rules_mode_never_asks_the_vlm():
    asked = []
    assert choose("rules", lambda: 2, lambda: asked.append(1) or 0) == Choice(2, "rules")
    with pytest.raises(VlaInputError, match="reference 'laptop' was not found"):
        choose("rules", fail("the reference 'laptop' was not found"), lambda: asked.append(1) or 0)
    assert asked == []


def test_rules_then_vlm_asks_the_vlm_only_when_the_rules_cannot_resolve():
    assert choose("rules_then_vlm", lambda: 1, lambda: 0) == Choice(1, "rules")
    choice = choose("rules_then_vlm", fail("the reference 'laptop' was not found"), lambda: 2)
    assert choice.index == 2 and choice.path == "vlm" and "laptop" in choice.describe()


def test_vlm_mode_always_asks_and_its_failure_is_the_result():
    assert choose("vlm", lambda: 0, lambda: 2).path == "vlm"
    with pytest.raises(GroundingError, match="only ids"):
        choose("vlm", lambda: 0, lambda: parse_choice('{"id": 9}', 3))
    with pytest.raises(ValueError, match="grounding must be"):
        choose("llm", lambda: 0, lambda: 0)
