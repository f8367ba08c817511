"""Declarative parameter specs with validation, shared by every node (no rclpy here).

A node lists ``ParamSpec``s; the node layer declares them with their descriptions and
reads them back through ``validate`` so one bad value gives one message naming all the
problems, instead of a node that half-configures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

from vla_perception.core.types import VlaInputError

Check = Callable[[Any], Optional[str]]  # returns a problem description, or None when fine


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    check: Optional[Check] = None
    read_only: bool = False
    dynamic_typing: bool = False  # for parameters whose default ([], "") does not fix the type


def validate(specs: list[ParamSpec], values: dict[str, Any]) -> dict[str, Any]:
    """Return ``values`` if every spec's check passes; else raise VlaInputError listing all problems."""
    problems = []
    for spec in specs:
        problem = spec.check(values[spec.name]) if spec.check else None
        if problem:
            problems.append(f"{spec.name}={values[spec.name]!r}: {problem}")
    if problems:
        raise VlaInputError("invalid parameters: " + "; ".join(problems))
    return values


def in_range(low: float, high: float) -> Check:
    def check(value):
        if not isinstance(value, (int, float)) or math.isnan(value) or not low <= value <= high:
            return f"must be a number in [{low}, {high}]"
        return None

    return check


def one_of(*choices: str) -> Check:
    return lambda value: None if value in choices else f"must be one of {', '.join(choices)}"


def device_name(value: str) -> Optional[str]:
    if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
        return None
    return "must be auto, cpu, cuda or cuda:N"


def positive_int(value) -> Optional[str]:
    return None if isinstance(value, int) and value > 0 else "must be a positive integer"


def non_negative_int(value) -> Optional[str]:
    return None if isinstance(value, int) and value >= 0 else "must be an integer >= 0"
