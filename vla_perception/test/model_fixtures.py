"""Pytest fixture ``tiny_models_dir``: the tiny random-weight models, built once per test session.

Register it from conftest.py with ``from model_fixtures import tiny_models_dir  # noqa: F401``.
The directory has the tiny profile's layout (``<dir>/clip``, ``<dir>/grounding_dino``, ...), so
``VLA_PERCEPTION_MODELS=<dir>`` with ``profile: tiny`` loads them.
"""
from __future__ import annotations

from pathlib import Path

import pytest

_BUILT: dict[str, Path] = {}  # one build per process, even if the fixture is registered twice


def build_tiny_models(tmp_path_factory) -> Path:
    if "root" not in _BUILT:
        from vla_perception.core.models.tiny import make_tiny_models

        root = tmp_path_factory.mktemp("tiny_models")
        make_tiny_models(root)
        _BUILT["root"] = root
    return _BUILT["root"]


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    return build_tiny_models(tmp_path_factory)
