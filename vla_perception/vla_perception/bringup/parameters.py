"""Each node's parameters and their defaults, declared once in the node's code; config/ and docs/ follow them.

The nodes are those of config/graph.yaml; each node module lists what it declares in
``DECLARED_PARAMETERS`` (a list of ParamSpec). From that, this module writes the node's parameter
file (config/<node>.yaml, the graph's ``params_files``) and its table in docs/nodes.md, and
finds drift: a YAML value or a documented default that differs from the code.

    python -m vla_perception.bringup.parameters --write   # regenerate config/*.yaml and the docs tables
    python -m vla_perception.bringup.parameters            # exit 1 and list the drift, if any
"""
from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path

import yaml

from vla_perception.bringup.graph import load_graph, package_config_dir

DOCS_NODES = Path(__file__).resolve().parents[3] / "docs" / "nodes.md"


def declared_parameters(executable: str) -> list:
    """The ParamSpecs node ``executable`` declares (lifecycle nodes: ``autostart`` first)."""
    return list(importlib.import_module(f"vla_perception.nodes.{executable}").DECLARED_PARAMETERS)


def graph_nodes(graph: dict | None = None) -> dict[str, dict]:
    """Node key -> its entry in config/graph.yaml."""
    return dict((graph or load_graph())["nodes"])


def yaml_value(value) -> str:
    return json.dumps(value)  # JSON is YAML: strings quoted, lists in flow style, true/false


def yaml_text(node: str, specs) -> str:
    lines = [f"# {node} parameters: their defaults, written from the node's own declarations by",
             "# `python -m vla_perception.bringup.parameters --write`; a test fails when they differ.",
             "# Copy it to change values (`params_file:=...`); `ros2 param describe` explains each.",
             f"{node}:", "  ros__parameters:"]
    lines += [f"    {spec.name}: {yaml_value(spec.default)}  # {spec.description}" for spec in specs]
    return "\n".join(lines) + "\n"


def markdown_table(node: str, specs) -> str:
    rows = [f"#### {node} parameters", "", "| parameter | default | description |", "|---|---|---|"]
    rows += [f"| `{spec.name}` | `{spec.default!r}` | {spec.description} |" for spec in specs]
    return "\n".join(rows)


def yaml_drift(node: str, text: str, specs) -> list[str]:
    """What a parameter file says that the code does not: unknown names, missing ones, other defaults."""
    values = (yaml.safe_load(text) or {}).get(node, {}).get("ros__parameters", {})
    defaults = {spec.name: spec.default for spec in specs}
    problems = [f"{node}: '{name}' is not a parameter of the node" for name in values if name not in defaults]
    problems += [f"{node}: '{name}' is missing" for name in defaults if name not in values]
    problems += [f"{node}: '{name}' is {values[name]!r} in YAML but {default!r} in the code"
                 for name, default in defaults.items() if name in values and values[name] != default]
    return problems


def docs_with_tables(text: str, tables: dict[str, str]) -> str:
    """docs/nodes.md with each node's parameter table replaced by ``tables[node]``."""
    for node, table in tables.items():
        pattern = re.compile(rf"^#### {re.escape(node)} parameters\n\n(\|.*\n)*", re.MULTILINE)
        if not pattern.search(text):
            raise ValueError(f"docs/nodes.md has no '#### {node} parameters' table")
        text = pattern.sub(lambda _: table + "\n", text, count=1)
    return text


def drift(config_dir: Path, docs: Path) -> list[str]:
    problems, tables = [], {}
    for node, entry in graph_nodes().items():
        specs = declared_parameters(entry["executable"])
        path = config_dir / entry["params_files"][0]
        problems += yaml_drift(node, path.read_text(), specs)
        tables[node] = markdown_table(node, specs)
    text = docs.read_text()
    if docs_with_tables(text, tables) != text:
        problems.append(f"{docs}: a parameter table differs from the code")
    return problems


def write(config_dir: Path, docs: Path) -> None:
    tables = {}
    for node, entry in graph_nodes().items():
        specs = declared_parameters(entry["executable"])
        (config_dir / entry["params_files"][0]).write_text(yaml_text(node, specs))
        tables[node] = markdown_table(node, specs)
    docs.write_text(docs_with_tables(docs.read_text(), tables))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite config/<node>.yaml and the docs tables")
    args = parser.parse_args()
    config_dir = package_config_dir()
    if args.write:
        write(config_dir, DOCS_NODES)
    problems = drift(config_dir, DOCS_NODES)
    print("\n".join(problems) or "no drift", file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
