"""Parameter defaults are written once, in the nodes' declarations.

config/*.yaml and the tables in docs/nodes.md must say the same (bringup/parameters.py writes them; this
fails on drift).
"""
import pytest

from vla_perception.bringup.graph import load_graph, package_config_dir
from vla_perception.bringup.parameters import (
    DOCS_NODES,
    declared_parameters,
    drift,
    graph_nodes,
    markdown_table,
    yaml_drift,
    yaml_text,
)

NODES = graph_nodes(load_graph())


def test_config_and_docs_agree_with_the_code():
    assert drift(package_config_dir(), DOCS_NODES) == []


@pytest.mark.parametrize("node", sorted(NODES))
def test_a_yaml_default_that_differs_from_the_code_is_drift(node):
    specs = declared_parameters(NODES[node]["executable"])
    text = (package_config_dir() / NODES[node]["params_files"][0]).read_text()
    assert yaml_drift(node, text, specs) == []
    changed = specs[1]
    edited = text.replace(f"    {changed.name}: ", f"    {changed.name}: {{'changed': 1}}  # ", 1)
    assert yaml_drift(node, edited, specs) == [
        f"{node}: '{changed.name}' is {{'changed': 1}} in YAML but {changed.default!r} in the code"]


def test_unknown_and_missing_parameters_are_drift():
    specs = declared_parameters("grasp_orchestrator")
    text = yaml_text("grasp_orchestrator", specs).replace("    planner:", "    planer:")
    assert yaml_drift("grasp_orchestrator", text, specs) == [
        "grasp_orchestrator: 'planer' is not a parameter of the node", "grasp_orchestrator: 'planner' is missing"]


def test_the_docs_table_lists_every_declared_parameter():
    table = markdown_table("pose_node", declared_parameters("pose_node"))
    assert table in DOCS_NODES.read_text()
    assert "| `autostart` | `False` |" in table and "| `mask_threshold` | `0.4` |" in table
