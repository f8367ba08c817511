"""JSON answers from a vision-language model: parse them and check them against a JSON Schema.

Every backend of ``~/ask`` funnels a schema-constrained answer through :func:`checked_json_answer`:
the OpenAI-compatible backend also asks the server for ``response_format: json_schema``, the local
models only get the schema in their prompt, and in both cases the answer is validated here, so a
caller never receives JSON that does not fit its schema.

The validator covers the subset of JSON Schema that describes answers (``type``, ``properties``,
``required``, ``additionalProperties``, ``items``, ``enum``, ``const``, ``minimum``/``maximum``,
``minLength``/``maxLength``, ``minItems``/``maxItems``, plus the annotations ``title``,
``description``, ``$schema``). A schema using any other keyword is refused up front rather than
half-checked (the ``jsonschema`` package is not a dependency of this project).
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Callable, Optional

from vla_perception.core.types import VlaInputError

if TYPE_CHECKING:
    from vla_perception.core.models.results import TextResult

ANNOTATIONS = {"title", "description", "$schema", "$id", "examples", "default"}
CHECKED = {"type", "properties", "required", "additionalProperties", "items", "enum", "const", "minimum",
           "maximum", "minLength", "maxLength", "minItems", "maxItems"}
JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class ModelOutputError(VlaInputError):
    """The model's answer is not what the request required (not JSON, or JSON outside the schema)."""


def parse_schema(text: str) -> dict:
    """The JSON Schema in ``text`` (a request field), or VlaInputError saying what is wrong with it."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        raise VlaInputError(f"json_schema is not valid JSON: {error}") from error
    check_schema(schema)
    return schema


def check_schema(schema: Any, path: str = "$") -> None:
    """Refuse schemas that use keywords this validator does not check (never validate half a schema)."""
    if not isinstance(schema, dict):
        raise VlaInputError(f"json_schema at {path} must be an object, got {type(schema).__name__}")
    unknown = set(schema) - CHECKED - ANNOTATIONS
    if unknown:
        raise VlaInputError(f"json_schema at {path} uses unsupported keyword(s) {sorted(unknown)}; supported: "
                            f"{sorted(CHECKED)}")
    types = schema.get("type", [])
    for name in [types] if isinstance(types, str) else types:
        if name not in JSON_TYPES and name not in ("number", "integer"):
            raise VlaInputError(f"json_schema at {path}: unknown type {name!r}")
    for key, child in schema.get("properties", {}).items():
        check_schema(child, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        check_schema(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        check_schema(schema["additionalProperties"], f"{path}.*")


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, JSON_TYPES[name])


def schema_problems(value: Any, schema: dict, path: str = "$") -> list[str]:
    """Everything about ``value`` that breaks ``schema`` (empty when it conforms)."""
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, name) for name in names):
            return [f"{path}: expected {' or '.join(names)}, got {json.dumps(value)[:40]}"]
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {json.dumps(value)[:40]} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: must be {json.dumps(schema['const'])}")
    problems += _bounds(value, schema, path)
    if isinstance(value, dict):
        problems += _object_problems(value, schema, path)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems += schema_problems(item, schema["items"], f"{path}[{index}]")
    return problems


def _bounds(value: Any, schema: dict, path: str) -> list[str]:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    size = len(value) if isinstance(value, (str, list)) else None
    checks = [
        ("minimum", numeric, lambda limit: value >= limit, "must be >= {}"),
        ("maximum", numeric, lambda limit: value <= limit, "must be <= {}"),
        ("minLength", isinstance(value, str), lambda limit: size >= limit, "needs at least {} characters"),
        ("maxLength", isinstance(value, str), lambda limit: size <= limit, "allows at most {} characters"),
        ("minItems", isinstance(value, list), lambda limit: size >= limit, "needs at least {} items"),
        ("maxItems", isinstance(value, list), lambda limit: size <= limit, "allows at most {} items"),
    ]
    return [f"{path}: {message.format(schema[key])}" for key, applies, holds, message in checks
            if key in schema and applies and not holds(schema[key])]


def _object_problems(value: dict, schema: dict, path: str) -> list[str]:
    properties = schema.get("properties", {})
    problems = [f"{path}: missing required property {key!r}" for key in schema.get("required", [])
                if key not in value]
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            problems += schema_problems(item, properties[key], f"{path}.{key}")
        elif extra is False:
            problems.append(f"{path}: unexpected property {key!r}")
        elif isinstance(extra, dict):
            problems += schema_problems(item, extra, f"{path}.{key}")
    return problems


def parse_json_answer(text: str) -> Any:
    """The JSON value in a model's answer (a surrounding ```json fence is tolerated); else ModelOutputError."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    try:
        return json.loads(fenced.group(1) if fenced else stripped)
    except json.JSONDecodeError as error:
        raise ModelOutputError(f"the model's answer is not JSON ({error.msg}): {stripped[:200]!r}") from error


def checked_json_answer(text: str, schema: dict) -> str:
    """The answer re-serialised compactly when it is JSON that fits ``schema``; else ModelOutputError."""
    value = parse_json_answer(text)
    problems = schema_problems(value, schema)
    if problems:
        raise ModelOutputError("the model's answer does not match the JSON schema: " + "; ".join(problems[:5])
                               + f" (answer: {text.strip()[:200]!r})")
    return json.dumps(value, separators=(",", ":"))


def schema_instruction(schema: dict) -> str:
    """What local models are told: they have no server-side constrained decoding."""
    return ("Reply with only one JSON value, no other text, that satisfies this JSON Schema: "
            + json.dumps(schema, separators=(",", ":")))


def ask_for_json(generate: Callable[[str], "TextResult"], prompt: str, schema: Optional[dict]) -> "TextResult":
    """Run ``generate(prompt)``; with a schema, tell the model about it and validate what comes back."""
    from vla_perception.core.models.results import TextResult

    if schema is None:
        return generate(prompt)
    result = generate(f"{prompt}\n{schema_instruction(schema)}")
    return TextResult(checked_json_answer(result.text, schema), result.inference_time)
