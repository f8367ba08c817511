"""core/ is layered one way: types -> geometry -> grasp -> planning -> pipeline.

A module imports only from its own layer or the layers below it (read from the source with ast, so lazy
imports inside functions count too).
"""
import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "vla_perception" / "core"
LAYERS = [  # lowest first
    ("types", {"types", "parameters", "latest_worker", "sync", "language", "drawing", "models", "limits"}),
    ("geometry", {"geometry", "pose_estimation", "localise", "projection", "robot", "tracking"}),
    ("grasp", {"grasp"}),
    ("planning", {"planning"}),
    ("pipeline", {"pick_pipeline", "orchestration", "grounding", "task_planning"}),
]
LEVEL = {module: level for level, (_, modules) in enumerate(LAYERS) for module in modules}


def core_module(path: Path) -> str:
    """First component under core/: 'planning' for core/planning/base.py, 'grasp' for core/grasp.py."""
    relative = path.relative_to(CORE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def core_imports(path: Path) -> set[str]:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            if name.startswith("vla_perception.core."):
                imported.add(name.split(".")[2])
            elif name == "vla_perception.core" and isinstance(node, ast.ImportFrom):
                imported.update(alias.name for alias in node.names)
    return imported


SOURCES = sorted(path for path in CORE.rglob("*.py") if path.name != "__init__.py" or path.parent != CORE)


def test_every_core_module_has_a_layer():
    assert {core_module(path) for path in SOURCES} == set(LEVEL)


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: str(path.relative_to(CORE)))
def test_core_imports_only_downward(path):
    level = LEVEL[core_module(path)]
    upward = {name for name in core_imports(path) if LEVEL[name] > level}
    assert upward == set(), f"{path.relative_to(CORE)} (layer {LAYERS[level][0]}) imports from above: {upward}"


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "grasp.py"
    module.write_text("def f():\n    from vla_perception.core.pick_pipeline import object_in_base\n")
    assert core_imports(module) == {"pick_pipeline"}
    assert LEVEL["pick_pipeline"] > LEVEL["grasp"]
