"""The node graph of config/graph.yaml, resolved into the nodes a bringup starts (ROS-free).

Both the launch_ros files (launch/*.launch.py) and the fallback launcher
(``vla-perception up``) call :func:`resolve_bringup`, so they start the same nodes with the
same names, parameters and remappings::

    graph = load_graph()                                   # config/graph.yaml
    specs = resolve_bringup(graph, "perception", {"profile": "tiny", "nodes": "clip_node"})
    for spec in specs:
        spec.executable, spec.name, spec.namespace, spec.remappings, spec.parameter_sources()
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Union

import yaml

from vla_perception.bringup.moveit_params import MoveItParamsError, moveit_params_files

GRAPH_FILE = "graph.yaml"
PACKAGE = "vla_perception"
NODES_PACKAGE = "vla_perception.nodes"
ARG_PATTERN = re.compile(r"\$\(arg ([A-Za-z_][A-Za-z0-9_]*)\)")


class GraphError(ValueError):
    """graph.yaml is inconsistent, or a bringup was asked for with arguments it cannot take."""


@dataclass(frozen=True)
class ParamsFile:
    """A parameters file; ``section`` names the node section to take from it (None: use it verbatim)."""

    path: str
    section: Optional[str] = None

    def parameters(self) -> dict:
        """Read the ``ros__parameters`` of ``section`` (over any ``/**`` wildcard section)."""
        data = yaml.safe_load(Path(self.path).read_text()) or {}
        merged: dict = {}
        for key in ("/**", self.section, "/" + str(self.section)):
            merged.update(((data.get(key) or {}).get("ros__parameters") or {}))
        return merged


@dataclass(frozen=True)
class NodeSpec:
    """One node to start: what to run and every ROS argument it gets."""

    key: str  # the node's entry in graph.yaml
    executable: str  # console script of the vla_perception package (what launch_ros runs)
    name: str
    namespace: str  # "" or "/ns"
    lifecycle: bool
    params_files: tuple[ParamsFile, ...] = ()
    parameters: Mapping[str, object] = field(default_factory=dict)  # overrides, applied last
    remappings: tuple[tuple[str, str], ...] = ()
    respawn: bool = False
    respawn_delay: float = 2.0
    module: str = ""  # what `python -m` runs in the fallback launcher

    @property
    def fully_qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}"

    def parameter_sources(self) -> list[Union[str, dict]]:
        """Parameters in precedence order: a path (pass the file as is) or a dict of values.

        Package defaults come as dicts because their files are keyed by the node's default
        name, which no longer matches once the node is renamed or namespaced.
        """
        sources: list[Union[str, dict]] = [
            params_file.parameters() if params_file.section else params_file.path
            for params_file in self.params_files]
        if self.parameters:
            sources.append(dict(self.parameters))
        return sources


def package_config_dir() -> Path:
    """config/ of the source tree when running from it, else the installed share directory.

    Installed: this interpreter's prefix (colcon --merge-install into the venv), else the
    ament index (AMENT_PREFIX_PATH).
    """
    for candidate in (Path(__file__).resolve().parents[2] / "config",
                      Path(sys.prefix) / "share" / PACKAGE / "config"):
        if (candidate / GRAPH_FILE).exists():
            return candidate
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / "config"


def load_graph(path: Union[str, Path, None] = None) -> dict:
    """Read graph.yaml (default: the package's); ``config_dir`` is added for relative params files."""
    path = Path(path) if path else package_config_dir() / GRAPH_FILE
    graph = yaml.safe_load(path.read_text())
    for section in ("arguments", "nodes", "bringups"):
        if not isinstance(graph.get(section), dict):
            raise GraphError(f"{path}: missing the '{section}' mapping")
    graph["config_dir"] = str(path.parent)
    return graph


def bringup_nodes(graph: dict, bringup: str, _seen: tuple[str, ...] = ()) -> list[str]:
    """Node keys of ``bringup`` with its includes expanded, in start order, without duplicates."""
    if bringup not in graph["bringups"]:
        raise GraphError(f"unknown bringup '{bringup}': choose one of {', '.join(graph['bringups'])}")
    if bringup in _seen:
        raise GraphError(f"bringup '{bringup}' includes itself (via {' -> '.join(_seen)})")
    entry = graph["bringups"][bringup]
    keys: list[str] = []
    for included in entry.get("include", []):
        keys += bringup_nodes(graph, included, (*_seen, bringup))
    keys += entry.get("nodes", [])
    for key in keys:
        if key not in graph["nodes"]:
            raise GraphError(f"bringup '{bringup}' names node '{key}', which graph.yaml does not define")
    return list(dict.fromkeys(keys))


def optional_nodes(graph: dict, bringup: str, arguments: Mapping[str, str]) -> list[str]:
    """Node keys of the bringup's ``optional`` entries (includes first) that its arguments switch on."""
    entries: dict[str, dict] = {}

    def collect(name: str) -> None:
        for included in graph["bringups"][name].get("include", []):
            collect(included)
        entries.update(graph["bringups"][name].get("optional") or {})

    collect(bringup)
    for key, entry in entries.items():
        if key not in graph["nodes"]:
            raise GraphError(f"bringup '{bringup}' names optional node '{key}', which graph.yaml does not define")
    return [key for key, entry in entries.items()
            if (arguments.get(entry["argument"]) or str(entry.get("default", "false"))).lower() == "true"]


def resolve_arguments(graph: dict, overrides: Optional[Mapping[str, object]] = None) -> dict[str, str]:
    """Argument defaults with ``overrides`` applied; unknown names and bad choices are errors."""
    declared = graph["arguments"]
    overrides = {name: str(value) for name, value in (overrides or {}).items()}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise GraphError(f"unknown argument(s) {', '.join(unknown)}: known are {', '.join(declared)}")
    values = {name: str(spec.get("default", "")) for name, spec in declared.items()}
    values.update(overrides)
    for name, value in values.items():
        choices = [str(choice) for choice in declared[name].get("choices", [])]
        if choices and value not in choices:
            raise GraphError(f"argument {name}={value!r}: choose one of {', '.join(map(repr, choices))}")
    return values


def substitute(value, arguments: Mapping[str, str]):
    """Replace every ``$(arg NAME)`` in strings (recursively in lists and dicts)."""
    if isinstance(value, str):
        def lookup(match: re.Match) -> str:
            if match.group(1) not in arguments:
                raise GraphError(f"'{value}' uses undeclared argument '{match.group(1)}'")
            return arguments[match.group(1)]

        return ARG_PATTERN.sub(lookup, value)
    if isinstance(value, list):
        return [substitute(item, arguments) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, arguments) for key, item in value.items()}
    return value


def normalize_namespace(*parts: str) -> str:
    """Join namespace parts into "" (root) or "/a/b"."""
    segments = [segment for part in parts for segment in str(part or "").split("/") if segment]
    return "/" + "/".join(segments) if segments else ""


def selected_nodes(available: list[str], nodes_argument: str, bringup: str) -> list[str]:
    """Apply the ``nodes`` argument ("a,b") to the bringup's node keys (empty: all of them)."""
    wanted = [name.strip() for name in nodes_argument.split(",") if name.strip()]
    if not wanted:
        return available
    unknown = [name for name in wanted if name not in available]
    if unknown:
        raise GraphError(f"nodes={nodes_argument!r}: {', '.join(unknown)} not in bringup '{bringup}' "
                         f"(its nodes: {', '.join(available)})")
    return [name for name in available if name in wanted]


def is_bare_argument(value) -> bool:
    """Tell whether ``value`` is exactly one ``$(arg NAME)`` (left out when NAME is empty)."""
    return isinstance(value, str) and ARG_PATTERN.fullmatch(value.strip()) is not None


def resolve_node(graph: dict, key: str, arguments: Mapping[str, str]) -> NodeSpec:
    entry = substitute(graph["nodes"][key], arguments)
    lifecycle = bool(entry.get("lifecycle", False))
    config_dir = Path(graph["config_dir"])
    name = entry.get("name", key)
    params_files = [ParamsFile(str(config_dir / path), entry.get("params_key", key))
                    for path in entry.get("params_files", [])]
    try:  # a robot's MoveIt config, for the MoveItPy inside this node (bringup/moveit_params.py)
        params_files += [ParamsFile(path) for path in moveit_params_files(entry.get("moveit_config") or {},
                                                                          config_dir)]
    except MoveItParamsError as error:
        raise GraphError(f"{key}: {error}") from None
    if arguments.get("params_file"):
        params_files.append(ParamsFile(str(Path(arguments["params_file"]).expanduser())))
    raw_parameters = graph["nodes"][key].get("parameters") or {}
    parameters = {name: value for name, value in (entry.get("parameters") or {}).items()
                  if not (value == "" and is_bare_argument(raw_parameters.get(name)))}
    if lifecycle:
        parameters["autostart"] = arguments.get("activation", "autostart") == "autostart"
    return NodeSpec(
        key=key,
        executable=entry["executable"],
        name=name,
        namespace=normalize_namespace(arguments.get("namespace", ""), entry.get("namespace", "")),
        lifecycle=lifecycle,
        params_files=tuple(params_files),
        parameters=parameters,
        remappings=tuple((str(source), str(target))
                         for source, target in (entry.get("remappings") or {}).items()),
        respawn=arguments.get("respawn", "false").lower() == "true",
        respawn_delay=float(arguments.get("respawn_delay", "2.0")),
        module=entry.get("module", f"{NODES_PACKAGE}.{entry['executable']}"),
    )


def resolve_bringup(graph: dict, bringup: str,
                    overrides: Optional[Mapping[str, object]] = None) -> list[NodeSpec]:
    """Resolve the nodes ``bringup`` starts with argument ``overrides``, in start order."""
    arguments = resolve_arguments(graph, overrides)
    available = bringup_nodes(graph, bringup)  # validates the bringup before its optional entries are read
    available += [key for key in optional_nodes(graph, bringup, arguments) if key not in available]
    keys = selected_nodes(available, arguments.get("nodes", ""), bringup)
    return [resolve_node(graph, key, arguments) for key in keys]


def resolve_name(name: str, namespace: str, node_name: str) -> str:
    """Expand a topic/service name the way rcl does: absolute, ``~`` private, or namespace-relative."""
    if name.startswith("/"):
        return name
    if name.startswith("~"):
        return f"{namespace}/{node_name}{name[1:]}"
    return f"{namespace}/{name}"


def resolved_remappings(spec: NodeSpec) -> dict[str, str]:
    """{fully qualified name the node uses -> fully qualified name it is remapped to}."""
    return {resolve_name(source, spec.namespace, spec.name): resolve_name(target, spec.namespace, spec.name)
            for source, target in spec.remappings}
