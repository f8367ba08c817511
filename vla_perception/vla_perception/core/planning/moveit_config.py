"""Whether a MoveIt configuration is available to moveit_py in this process (ROS-free).

moveit_py's ``MoveItPy`` reads its parameters from the ``--params-file`` paths on this process's
command line (``moveit.utils.get_launch_params_filepaths``, the default of its
``launch_params_filepaths`` argument), so that is where we look too: the files that
``ros2 launch`` or ``vla-perception up`` gave the orchestrator (the ``moveit_config_package`` /
``moveit_params_file`` launch arguments put the robot's MoveIt configuration there, under
``/**`` so it applies to the MoveItPy node as well). Without ``robot_description`` and
``robot_description_semantic`` there, MoveItPy throws "Unable to construct robot model".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import yaml

MOVEIT_NODE_NAME = "vla_moveit_py"  # the rclcpp node MoveItPy starts inside the orchestrator's process
REQUIRED_PARAMETERS = ("robot_description", "robot_description_semantic")
PILZ_PIPELINE = "pilz_industrial_motion_planner"
HOW_TO_PASS = ("pass the robot's MoveIt config with the launch argument moveit_config_package:=<pkg> "
               "or moveit_params_file:=<file with a /** section> (README, 'With MoveIt')")


def params_files_on_command_line(argv: Sequence[str]) -> list[str]:
    """The paths after each ``--params-file``, as moveit_py's get_launch_params_filepaths reads them."""
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "--params-file"]


def section_applies(section: str, fully_qualified_name: str) -> bool:
    """Apply rcl's rule for a parameters-file key: a node name pattern; ``*`` one name part, ``**`` any."""
    pattern = "/" + str(section).strip("/")
    regex = (re.escape(pattern).replace(r"\*\*", "\0").replace(r"\*", "[^/]*")
             .replace("/\0", "(/[^/]+)*").replace("\0", ".*"))
    return re.fullmatch(regex, fully_qualified_name) is not None


def flatten(values: dict, prefix: str = "") -> dict:
    """Nested parameter mappings as ROS 2 names them: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


@dataclass(frozen=True)
class MoveItConfig:
    """The parameters MoveItPy's node would get from ``sources``, flattened; ``unreadable``: files that failed."""

    sources: tuple[str, ...] = ()
    parameters: dict = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()

    @classmethod
    def from_files(cls, paths: Sequence[str], node_name: str = MOVEIT_NODE_NAME,
                   namespace: str = "") -> "MoveItConfig":
        fully_qualified = f"{namespace.rstrip('/')}/{node_name}"
        parameters, unreadable = {}, []
        for path in paths:
            try:
                data = yaml.safe_load(Path(path).read_text()) or {}
            except (OSError, yaml.YAMLError) as error:
                unreadable.append(f"{path} ({error.__class__.__name__})")
                continue
            for section, content in (data.items() if isinstance(data, dict) else ()):
                if section_applies(section, fully_qualified) and isinstance(content, dict):
                    parameters.update(flatten(content.get("ros__parameters") or {}))
        return cls(tuple(paths), parameters, tuple(unreadable))

    @classmethod
    def from_command_line(cls, argv: Sequence[str], namespace: str = "") -> "MoveItConfig":
        return cls.from_files(params_files_on_command_line(argv), namespace=namespace)

    def problem(self) -> Optional[str]:
        """Why MoveItPy would not start with these parameters, or None when it has what it needs."""
        if self.unreadable:
            return f"cannot read the parameters file(s) {', '.join(self.unreadable)}"
        missing = [name for name in REQUIRED_PARAMETERS if not self.parameters.get(name)]
        if not missing:
            return None
        where = (f"the parameters files given to this node ({', '.join(self.sources)})" if self.sources
                 else "no --params-file was given to this node")
        return f"no MoveIt configuration: {', '.join(missing)} missing ({where}); {HOW_TO_PASS}"

    def pilz_problem(self) -> Optional[str]:
        """Why Pilz LIN (straight-line) requests cannot be served, or None when the pipeline is configured."""
        names = self.parameters.get("planning_pipelines.pipeline_names") or []
        if PILZ_PIPELINE not in names:
            return f"planning_pipelines.pipeline_names {list(names)} does not list {PILZ_PIPELINE}"
        if not any(name.startswith(PILZ_PIPELINE + ".") for name in self.parameters):
            return f"the MoveIt config has no {PILZ_PIPELINE} pipeline parameters"
        return None
