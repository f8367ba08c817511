"""Packaging: entry points and launch files resolve, package.xml declares what the code imports.

A robot installs this package with ``rosdep install`` (package.xml) plus ``pip install -r
requirements/python.txt`` (what has no rosdep key), then runs its console scripts and launch
files. These tests catch a dead entry point, a launch file that cannot be imported, an import
nobody declared and a rosdep key that rosdep does not know.
"""
import ast
import importlib
import importlib.metadata
import importlib.util
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = PACKAGE_DIR.parent
SOURCE_DIRS = [PACKAGE_DIR / "vla_perception", PACKAGE_DIR / "launch"]

# Snapshot of the rosdep keys this package may use, from ros/rosdistro (commit 8468e88c, 2026-08-22):
# system keys from rosdep/python.yaml, ROS package keys from {jazzy,kilted}/distribution.yaml.
# Adding a dependency means checking its key there and adding it here.
KNOWN_ROSDEP_KEYS = {
    # rosdep/python.yaml
    "python3-numpy", "python3-yaml", "python3-pil", "python3-scipy", "python3-pytest", "python3-psutil",
    "python3-opencv",
    # jazzy/distribution.yaml and kilted/distribution.yaml (released in both)
    "rclpy", "builtin_interfaces", "std_msgs", "std_srvs", "sensor_msgs", "geometry_msgs",
    "visualization_msgs", "diagnostic_msgs", "trajectory_msgs", "lifecycle_msgs", "action_msgs", "rcl_interfaces",
    "ament_index_python", "cv_bridge", "message_filters", "tf2_ros_py", "vision_msgs", "launch",
    "launch_ros", "moveit_py", "moveit_configs_utils", "moveit_msgs", "shape_msgs",
    # this repository
    "vla_perception_interfaces",
}

# Python module -> rosdep key, where the two names differ.
ROSDEP_KEY_OF_MODULE = {
    "numpy": "python3-numpy", "yaml": "python3-yaml", "PIL": "python3-pil", "scipy": "python3-scipy",
    "tf2_ros": "tf2_ros_py", "moveit": "moveit_py", "cv2": "python3-opencv",
}
# Python module -> requirements/python.txt entry: no rosdep key on every distribution, pip installs them.
PIP_OF_MODULE = {
    "torch": "torch", "torchvision": "torchvision", "open_clip": "open_clip_torch",
    "transformers": "transformers", "huggingface_hub": "transformers", "safetensors": "safetensors",
    "pybullet": "pybullet", "pybullet_data": "pybullet", "pybullet_utils": "pybullet", "roboplan": "roboplan",
    "onnx": "onnx", "onnxruntime": "onnxruntime", "openvino": "openvino",
}


def package_xml_keys() -> set[str]:
    root = ET.parse(PACKAGE_DIR / "package.xml").getroot()
    tags = ("depend", "exec_depend", "build_depend", "test_depend", "build_export_depend")
    return {element.text.strip() for tag in tags for element in root.iter(tag)}


def imported_top_level_modules() -> dict[str, str]:
    """Every top-level module the package's code and launch files import -> one file that does."""
    modules: dict[str, str] = {}
    for directory in SOURCE_DIRS:
        for path in directory.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    modules.setdefault(name.split(".")[0], str(path.relative_to(PACKAGE_DIR)))
    return modules


def pip_requirements() -> set[str]:
    lines = (REPO_DIR / "requirements" / "python.txt").read_text().splitlines()
    return {re.split(r"[<>=!\[; ]", line.strip())[0] for line in lines if line.strip() and not line.startswith("#")}


def test_every_rosdep_key_in_package_xml_is_a_known_rosdistro_key():
    unknown = package_xml_keys() - KNOWN_ROSDEP_KEYS
    assert not unknown, f"package.xml keys not in the rosdistro snapshot (check rosdistro, then add): {unknown}"


def test_every_direct_import_is_declared_in_package_xml_or_requirements():
    declared, pip = package_xml_keys(), pip_requirements()
    missing = []
    for module, where in sorted(imported_top_level_modules().items()):
        if module in sys.stdlib_module_names or module in ("vla_perception", "__future__"):
            continue
        if module in PIP_OF_MODULE:
            if PIP_OF_MODULE[module] not in pip:
                missing.append(f"{module} ({where}): {PIP_OF_MODULE[module]} not in requirements/python.txt")
        elif ROSDEP_KEY_OF_MODULE.get(module, module) not in declared:
            missing.append(f"{module} ({where}): {ROSDEP_KEY_OF_MODULE.get(module, module)} not in package.xml")
    assert not missing, "\n".join(missing)


def test_package_xml_and_setup_name_only_files_that_exist():
    text = (PACKAGE_DIR / "package.xml").read_text() + (PACKAGE_DIR / "setup.py").read_text()
    for mentioned in re.findall(r"requirements/[\w.-]+", text):
        assert (REPO_DIR / mentioned).is_file(), f"{mentioned} is mentioned but does not exist"


def installed_console_scripts() -> list[importlib.metadata.EntryPoint]:
    try:
        distribution = importlib.metadata.distribution("vla_perception")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("vla_perception is not installed: run scripts/setup.sh (colcon build) first")
    return [entry for entry in distribution.entry_points if entry.group == "console_scripts"]


def test_every_console_entry_point_resolves_to_a_callable():
    entry_points = installed_console_scripts()
    assert {"clip_node", "detector_node", "vlm_node", "pose_node", "grasp_orchestrator", "sim_camera",
            "vla-perception"} <= {entry.name for entry in entry_points}
    for entry in entry_points:
        assert callable(entry.load()), f"{entry.name} = {entry.value} is not callable"


@pytest.mark.parametrize("launch_file", sorted(path.name for path in (PACKAGE_DIR / "launch").glob("*.launch.py")))
def test_every_launch_file_imports_and_describes_its_launch(launch_file):
    for module in ("launch", "launch_ros"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: install ROS 2's launch_ros, or here "
                        "scripts/install_ros2_tools.sh .venv (from ../shared/ros2-tools)")
    spec = importlib.util.spec_from_file_location(launch_file.replace(".", "_"), PACKAGE_DIR / "launch" / launch_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from launch import LaunchDescription

    description = module.generate_launch_description()
    assert isinstance(description, LaunchDescription)
    assert {"profile", "nodes", "namespace", "activation"} <= {
        argument.name for argument in description.get_launch_arguments()}


def _pins(lock: Path) -> dict[str, str]:
    lines = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.lower().split("==", 1) for line in lines)


def test_the_jazzy_lock_pins_every_non_ros_package_as_the_kilted_lock_does():
    """The two CI passes must differ only in ROS 2: a package added to one lock only breaks the other."""
    kilted, jazzy = (_pins(REPO_DIR / "requirements" / name) for name in ("lock.txt", "lock-jazzy.txt"))
    non_ros = {name: version for name, version in kilted.items() if not name.startswith("ros-")}
    differing = {name: (version, jazzy.get(name)) for name, version in non_ros.items() if jazzy.get(name) != version}
    assert not differing, f"lock.txt vs lock-jazzy.txt (kilted, jazzy): {differing}"
