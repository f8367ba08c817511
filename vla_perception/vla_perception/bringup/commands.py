"""Command lines that start a resolved NodeSpec as its own process (what ``vla-perception up`` runs)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import yaml

from vla_perception.bringup.graph import NodeSpec


def format_parameter(value) -> str:
    """Format a value for ``-p name:=VALUE``; rcl parses it as YAML, so quote what would not read back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value and yaml.safe_load(value) == value else json.dumps(value)
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def write_parameters(spec: NodeSpec, values: dict, path: Path) -> Path:
    """Write a parameters file holding ``values`` under the node's fully qualified name."""
    path.write_text(yaml.safe_dump({spec.fully_qualified_name: {"ros__parameters": values}}, sort_keys=False))
    return path


def ros_arguments(spec: NodeSpec, params_dir: Path) -> list[str]:
    """``--ros-args ...`` for ``spec``: name, namespace, parameter files, -p overrides, remappings.

    Package defaults are written re-keyed to the node's real name into ``params_dir``;
    overrides come last because rcl lets a later parameter source win.
    """
    args = ["--ros-args", "-r", f"__node:={spec.name}", "-r", f"__ns:={spec.namespace or '/'}"]
    for index, params_file in enumerate(spec.params_files):
        if params_file.section:
            target = params_dir / f"{spec.fully_qualified_name.strip('/').replace('/', '__')}_{index}.yaml"
            args += ["--params-file", str(write_parameters(spec, params_file.parameters(), target))]
        else:
            args += ["--params-file", params_file.path]
    for name, value in spec.parameters.items():
        args += ["-p", f"{name}:={format_parameter(value)}"]
    for source, target in spec.remappings:
        args += ["-r", f"{source}:={target}"]
    return args


def node_command(spec: NodeSpec, params_dir: Path, python: Optional[str] = None) -> list[str]:
    """``python -m vla_perception.nodes.<executable> --ros-args ...`` (the node's ``module``)."""
    return [python or sys.executable, "-m", spec.module, *ros_arguments(spec, params_dir)]
