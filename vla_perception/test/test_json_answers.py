"""JSON answers: schema parsing, the validator's subset of JSON Schema, and what models may send back."""
import json

import pytest

from vla_perception.core.models.json_answers import (
    ModelOutputError, ask_for_json, checked_json_answer, parse_json_answer, parse_schema, schema_problems)
from vla_perception.core.models.results import TextResult
from vla_perception.core.types import VlaInputError

STEPS = {"type": "object", "required": ["steps"], "additionalProperties": False,
         "properties": {"steps": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
             "type": "object", "required": ["action", "object"], "properties": {
                 "action": {"enum": ["pick", "place"]}, "object": {"type": "string", "minLength": 1},
                 "id": {"type": "integer", "minimum": 0, "maximum": 9}}}}}}


@pytest.mark.parametrize("value", [{"steps": [{"action": "pick", "object": "duck"}]},
                                   {"steps": [{"action": "place", "object": "tray", "id": 9}] * 3}])
def test_conforming_values_have_no_problems(value):
    assert schema_problems(value, STEPS) == []


@pytest.mark.parametrize("value, problem", [
    ({}, "missing required property 'steps'"),
    ({"steps": []}, "at least 1 items"),
    ({"steps": [{"action": "pick", "object": "a"}] * 4}, "at most 3 items"),
    ({"steps": [{"action": "throw", "object": "duck"}]}, "$.steps[0].action: \"throw\" is not one of"),
    ({"steps": [{"action": "pick", "object": ""}]}, "at least 1 characters"),
    ({"steps": [{"action": "pick", "object": "a", "id": 10}]}, "must be <= 9"),
    ({"steps": [{"action": "pick", "object": "a", "id": 1.5}]}, "expected integer"),
    ({"steps": [{"action": "pick", "object": "a", "id": True}]}, "expected integer"),
    ({"steps": [], "extra": 1}, "unexpected property 'extra'"),
    ([1], "expected object"),
])
def test_each_kind_of_violation_is_named_with_its_path(value, problem):
    assert any(problem in p for p in schema_problems(value, STEPS)), schema_problems(value, STEPS)


def test_schemas_with_keywords_outside_the_checked_subset_are_refused():
    assert parse_schema(json.dumps(STEPS)) == STEPS
    with pytest.raises(VlaInputError, match="unsupported keyword.*pattern"):
        parse_schema('{"type": "string", "pattern": "^a"}')
    with pytest.raises(VlaInputError, match="unsupported keyword.*oneOf"):
        parse_schema('{"type": "object", "properties": {"x": {"oneOf": []}}}')
    with pytest.raises(VlaInputError, match="not valid JSON"):
        parse_schema("{type: object}")
    with pytest.raises(VlaInputError, match="unknown type"):
        parse_schema('{"type": "integr"}')


def test_answers_may_be_fenced_but_must_be_json():
    assert parse_json_answer('```json\n{"id": 2}\n```') == {"id": 2}
    assert checked_json_answer(' {"steps": [{"action": "pick", "object": "duck"}]} ', STEPS) == \
        '{"steps":[{"action":"pick","object":"duck"}]}'
    with pytest.raises(ModelOutputError, match="not JSON"):
        parse_json_answer("I would pick the duck")
    with pytest.raises(ModelOutputError, match="does not match"):
        checked_json_answer('{"steps": "duck"}', STEPS)


def test_ask_for_json_tells_the_model_the_schema_only_when_there_is_one():
    prompts = []

    def generate(prompt):
        prompts.append(prompt)
        return TextResult('{"steps": [{"action": "pick", "object": "cube"}]}', 0.25)

    assert ask_for_json(generate, "plan it", None).text.startswith('{"steps": [')
    result = ask_for_json(generate, "plan it", STEPS)
    assert prompts[0] == "plan it" and prompts[1].startswith("plan it\n") and '"minItems":1' in prompts[1]
    assert result.text == '{"steps":[{"action":"pick","object":"cube"}]}' and result.inference_time == 0.25
