"""Print the parameter tables of docs/nodes.md from the nodes' own ParamSpec lists (so they cannot drift).

Run: source scripts/env.sh && python scripts/param_docs.py > /tmp/params.md
"""
import importlib

from vla_perception.nodes.lifecycle import AUTOSTART

NODES = [
    ("clip_node", "vla_perception.nodes.clip_node", "ClipNode.PARAMS"),
    ("detector_node", "vla_perception.nodes.detector_node", "DetectorNode.PARAMS"),
    ("vlm_node", "vla_perception.nodes.vlm_node", "VlmNode.PARAMS"),
    ("pose_node", "vla_perception.nodes.pose_node", "PoseNode.PARAMS"),
    ("tracker_node", "vla_perception.nodes.tracker_node", "TrackerNode.PARAMS"),
    ("grasp_orchestrator", "vla_perception.core.orchestration", "PARAMS"),
    ("sim_camera", "vla_perception.nodes.sim_camera", "PARAMS"),
]
LIFECYCLE = {"clip_node", "detector_node", "vlm_node", "pose_node", "tracker_node"}


def specs_of(module_name: str, attribute: str):
    value = importlib.import_module(module_name)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def table(node: str, specs) -> str:
    rows = [f"#### {node} parameters", "", "| parameter | default | description |", "|---|---|---|"]
    for spec in ([AUTOSTART] if node in LIFECYCLE else []) + list(specs):
        rows.append(f"| `{spec.name}` | `{spec.default!r}` | {spec.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print("\n\n".join(table(node, specs_of(module, attribute)) for node, module, attribute in NODES))
