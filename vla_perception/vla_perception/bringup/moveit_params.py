"""A robot's MoveIt configuration as parameters files for a node that starts MoveItPy (graph.yaml ``moveit_config``).

moveit_py's MoveItPy reads its parameters from the ``--params-file`` paths on its process's command
line, so the configuration travels as parameters files of the node, under ``/**`` (MoveItPy's node
has its own name, vla_moveit_py):

- our ``config/moveit_py.yaml``: MoveItPy's own options (scene monitor, pipelines to load, plan
  request namespaces), first so the robot's files can override it;
- the robot's config: built with ``moveit_configs_utils.MoveItConfigsBuilder`` from
  ``moveit_config_package`` (the way moveit_py launch files do it) and written to a temporary
  file, or the user's ``moveit_params_file`` as it is (for machines without moveit_configs_utils).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Mapping

import yaml

MOVEIT_PY_FILE = "moveit_py.yaml"


class MoveItParamsError(ValueError):
    """The MoveIt launch arguments cannot be turned into parameters files; the message says why."""


def plain(value):
    """Parameter values as YAML can write them (MoveItConfigsBuilder may hand out Paths and tuples)."""
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def write_wildcard_params(parameters: Mapping, prefix: str = "vla_moveit_") -> Path:
    """Write ``parameters`` under ``/**`` into a new temporary file (as launch_ros does for dicts)."""
    handle, name = tempfile.mkstemp(prefix=prefix, suffix=".yaml")
    with open(handle, "w") as stream:
        yaml.safe_dump({"/**": {"ros__parameters": plain(parameters)}}, stream, sort_keys=False)
    return Path(name)


def builder_parameters(package: str, robot_name: str = "", controllers_file: str = "") -> dict:
    """``MoveItConfigsBuilder(robot, package_name=package)[.trajectory_execution(file)].to_dict()``."""
    try:
        from moveit_configs_utils import MoveItConfigsBuilder
    except ImportError as error:
        raise MoveItParamsError(
            f"moveit_config_package:={package} needs moveit_configs_utils (ros-$ROS_DISTRO-moveit-configs-utils), "
            "which is not importable here; pass the whole config as moveit_params_file:=<file> instead") from error
    builder = MoveItConfigsBuilder(robot_name or package.removesuffix("_moveit_config"), package_name=package)
    if controllers_file:
        builder = builder.trajectory_execution(file_path=controllers_file)
    return builder.to_dict()


def moveit_params_files(entry: Mapping[str, str], config_dir: Path) -> list[str]:
    """Paths, in precedence order, for graph.yaml's ``moveit_config`` entry; [] when no config was given."""
    package, params_file = entry.get("package", ""), entry.get("params_file", "")
    if not package and not params_file:
        return []
    if package and params_file:
        raise MoveItParamsError("pass moveit_config_package or moveit_params_file, not both")
    own = str(config_dir / entry.get("moveit_py_file", MOVEIT_PY_FILE))
    if params_file:
        path = Path(params_file).expanduser()
        if not path.is_file():
            raise MoveItParamsError(f"moveit_params_file:={params_file}: no such file")
        return [own, str(path)]
    parameters = builder_parameters(package, entry.get("robot_name", ""), entry.get("controllers_file", ""))
    return [own, str(write_wildcard_params(parameters))]
