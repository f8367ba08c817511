"""The launch files, the graph they start and the RViz config, checked without launch_ros.

``launch``, ``launch_ros`` and ``ros2cli`` may be absent (a pip-only machine), so nothing here
imports them (test_ros2_commands.py runs the launch files with the real ``ros2 launch``): the
launch files are parsed with ``ast`` and must hand their bringup to the shared graph loader;
the graph itself is checked against the bringup issue's node contract (written out below, not
read from graph.yaml), against setup.py's console scripts, the parameter files in config/ and,
where a node's module exists already, the names its source uses. The shared launch code
(bringup/ros_launch.py) is also run against recording stand-ins of the launch/launch_ros
classes: that exercises our code paths and what we pass, not launch_ros itself
(test_ros2_commands.py does).
"""
import ast
import re
from pathlib import Path

import pytest
import yaml

from vla_perception.bringup.graph import load_graph, resolve_bringup, resolve_name, resolved_remappings

PACKAGE_DIR = Path(__file__).resolve().parents[1]
LAUNCH_DIR = PACKAGE_DIR / "launch"
CONFIG_DIR = PACKAGE_DIR / "config"
SOURCE_DIR = PACKAGE_DIR / "vla_perception"
BRINGUPS = ["perception", "grasp", "sim_demo"]

# The node contract of the bringup issue: lifecycle?, relative inputs, private outputs.
CONTRACT = {
    "clip_node": (True, {"image"}, {"~/classification", "~/classify", "~/set_prompt", "~/labels"}),
    "detector_node": (True, {"image"},
                      {"~/detections", "~/debug_image", "~/detect", "~/set_prompt", "~/prompt"}),
    "vlm_node": (True, {"image"}, {"~/caption", "~/answer", "~/ask"}),
    "pose_node": (True, {"detections", "depth", "camera_info", "image"}, {"~/objects", "~/markers", "~/estimate"}),
    "grasp_orchestrator": (False, {"image", "depth", "camera_info"}, {"~/pick", "~/plan_grasp", "~/markers"}),
    "sim_camera": (False, set(), {"image", "depth", "camera_info", "~/ground_truth", "~/execute"}),
    "tracker_node": (True, {"image", "detections", "camera_info"}, {"~/tracks", "~/markers", "~/debug_image"}),
}
CAMERA = {"/image": "/camera/color/image_raw", "/depth": "/camera/depth/image_raw",
          "/camera_info": "/camera/color/camera_info"}
EXPECTED_REMAPPINGS = {
    "clip_node": {"/image": CAMERA["/image"]},
    "detector_node": {"/image": CAMERA["/image"]},
    "vlm_node": {"/image": CAMERA["/image"]},
    "pose_node": {"/detections": "/detector_node/detections", "/depth": CAMERA["/depth"],
                  "/camera_info": CAMERA["/camera_info"], "/image": CAMERA["/image"]},
    "grasp_orchestrator": CAMERA,  # the snapshot each pick takes
    "sim_camera": CAMERA,
    "tracker_node": {"/image": CAMERA["/image"], "/detections": "/detector_node/detections",
                     "/camera_info": CAMERA["/camera_info"]},
}


@pytest.fixture(scope="module")
def graph():
    return load_graph(CONFIG_DIR / "graph.yaml")


@pytest.fixture(scope="module")
def sim_demo(graph):
    return {spec.name: spec for spec in resolve_bringup(graph, "sim_demo")}


def console_scripts() -> dict[str, str]:
    """setup.py's console scripts (name -> 'module:function'), read from its source."""
    tree = ast.parse((PACKAGE_DIR / "setup.py").read_text())
    scripts = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                    if ":" in str(value.value):
                        scripts[key.value] = value.value
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = re.fullmatch(r"\s*([\w-]+)\s*=\s*([\w.]+:\w+)\s*", node.value)
            if match:
                scripts[match.group(1)] = match.group(2)
    return scripts


# ----- launch files ------------------------------------------------------------------------------
def test_there_is_one_launch_file_per_bringup(graph):
    assert sorted(graph["bringups"]) == sorted(BRINGUPS)
    launch_files = sorted(path.name for path in LAUNCH_DIR.glob("*.launch.py"))
    assert launch_files == sorted(f"{bringup}.launch.py" for bringup in BRINGUPS)


@pytest.mark.parametrize("bringup", BRINGUPS)
def test_launch_file_hands_its_bringup_to_the_graph_loader(bringup):
    tree = ast.parse((LAUNCH_DIR / f"{bringup}.launch.py").read_text())
    imports = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
               for alias in node.names}
    assert ("vla_perception.bringup.ros_launch", "bringup_launch_description") in imports
    (function,) = [node for node in tree.body if isinstance(node, ast.FunctionDef)
                   and node.name == "generate_launch_description"]
    calls = [node for node in ast.walk(function) if isinstance(node, ast.Call)
             and getattr(node.func, "id", None) == "bringup_launch_description"]
    assert [[arg.value for arg in call.args] for call in calls] == [[bringup]]


def test_shared_launch_code_uses_launch_ros_lifecycle_respawn_and_exit_logging():
    tree = ast.parse((SOURCE_DIR / "bringup" / "ros_launch.py").read_text())
    imported = {(node.module, alias.name) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    for needed in [("launch_ros.actions", "LifecycleNode"), ("launch_ros.actions", "Node"),
                   ("launch.event_handlers", "OnProcessExit"),
                   ("launch_ros.events.lifecycle", "ChangeState"),
                   ("launch_ros.event_handlers", "OnStateTransition"),
                   ("launch.actions", "DeclareLaunchArgument"),
                   ("ament_index_python.packages", "get_package_share_directory"),
                   ("vla_perception.bringup.graph", "load_graph"),
                   ("vla_perception.bringup.graph", "resolve_bringup")]:
        assert needed in imported, needed
    called = {getattr(node.func, "id", getattr(node.func, "attr", None)) for node in ast.walk(tree)
              if isinstance(node, ast.Call)}
    assert {"LifecycleNode", "Node", "OnProcessExit", "ChangeState", "get_package_share_directory",
            "load_graph", "resolve_bringup", "DeclareLaunchArgument", "OpaqueFunction"} <= called
    keywords = {keyword.arg for node in ast.walk(tree) if isinstance(node, ast.Call)
                for keyword in node.keywords}
    assert {"respawn", "respawn_delay", "remappings", "parameters", "namespace"} <= keywords
    transitions = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
                   and node.attr.startswith("TRANSITION_")}
    assert transitions == {"TRANSITION_CONFIGURE", "TRANSITION_ACTIVATE"}


def test_setup_installs_the_launch_files_and_the_config():
    constants = {node.value for node in ast.walk(ast.parse((PACKAGE_DIR / "setup.py").read_text()))
                 if isinstance(node, ast.Constant)}
    assert {"launch/*.py", "config/*.yaml", "config/*.rviz"} <= constants


def test_argument_defaults_are_among_their_choices(graph):
    # DeclareLaunchArgument refuses a default outside its choices.
    for name, argument in graph["arguments"].items():
        if "choices" in argument:
            assert str(argument["default"]) in [str(choice) for choice in argument["choices"]], name


# ----- the graph against the node contract ------------------------------------------------------
def test_graph_nodes_match_the_contract(graph, sim_demo):
    assert set(sim_demo) == set(CONTRACT)
    for name, (lifecycle, _, _) in CONTRACT.items():
        assert sim_demo[name].lifecycle is lifecycle, name


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_executable_is_a_console_script_running_the_same_module_as_the_fallback(sim_demo, name):
    spec = sim_demo[name]
    assert console_scripts().get(spec.executable) == f"vla_perception.nodes.{name}:main"
    assert f"{spec.module}:main" == console_scripts()[spec.executable]


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_parameter_files_exist_and_have_the_node_section(sim_demo, name):
    assert sim_demo[name].params_files, f"{name} has no parameter file in graph.yaml"
    for params_file in sim_demo[name].params_files:
        path = Path(params_file.path)
        assert path.parent == CONFIG_DIR and path.exists(), f"{path} missing"
        data = yaml.safe_load(path.read_text())
        assert list(data) == [name] and "ros__parameters" in data[name], path


def test_remappings_match_the_contract(sim_demo):
    assert {name: resolved_remappings(spec) for name, spec in sim_demo.items()} == EXPECTED_REMAPPINGS
    for name, (_, inputs, _) in CONTRACT.items():
        sources = {source for source, _ in sim_demo[name].remappings}
        assert inputs <= sources, f"{name}: inputs {inputs - sources} not remapped"


@pytest.mark.parametrize("namespace", ["", "robot1"])
def test_every_remapped_name_is_served_by_a_node_of_the_graph(graph, namespace):
    specs = {spec.name: spec for spec in resolve_bringup(graph, "sim_demo", {"namespace": namespace})}
    provided = {resolve_name(topic, spec.namespace, spec.name)
                for name, spec in specs.items() for topic in CONTRACT[name][2] if topic.startswith("~")}
    provided |= set(resolved_remappings(specs["sim_camera"]).values())  # the camera topics it publishes
    for name, spec in specs.items():
        for target in resolved_remappings(spec).values():
            assert target in provided, f"{name} is remapped to {target}, which no node provides"


def module_strings(path: Path) -> set[str]:
    """Collect the string constants of a module and of the vla_perception modules it imports."""
    tree = ast.parse(path.read_text())
    strings = {node.value for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vla_perception."):
            package = SOURCE_DIR.joinpath(*node.module.split(".")[1:])
            # `from vla_perception.x.y import name` (y.py) or `from vla_perception.x import y` (x/y.py)
            for imported in [package.with_suffix(".py"), *(package / f"{a.name}.py" for a in node.names)]:
                if imported.exists():
                    strings |= {item.value for item in ast.walk(ast.parse(imported.read_text()))
                                if isinstance(item, ast.Constant) and isinstance(item.value, str)}
    return strings


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_the_node_source_uses_the_names_the_graph_remaps(sim_demo, name):
    path = SOURCE_DIR / "nodes" / f"{name}.py"
    if not path.exists():
        pytest.skip(f"{path.name} is not written yet; its remapped names cannot be checked")
    strings = module_strings(path)
    config = CONFIG_DIR / f"{name}.yaml"
    if config.exists():  # the orchestrator's service names may be parameter defaults in its YAML
        strings |= {str(value) for value in (yaml.safe_load(config.read_text())[name]["ros__parameters"]
                                             or {}).values()}
    missing = [source for source, _ in sim_demo[name].remappings if source not in strings]
    assert not missing, f"{name}'s source never names {missing}: graph.yaml remaps a name it does not use"


# ----- RViz -----------------------------------------------------------------------------------------
def test_rviz_config_shows_the_graph_in_the_robot_base_frame(sim_demo):
    config = yaml.safe_load((CONFIG_DIR / "vla_perception.rviz").read_text())
    manager = config["Visualization Manager"]
    orchestrator = yaml.safe_load((CONFIG_DIR / "grasp_orchestrator.yaml").read_text())
    base_frame = orchestrator["grasp_orchestrator"]["ros__parameters"]["base_frame"]
    assert manager["Global Options"]["Fixed Frame"] == base_frame == "panda_link0"
    displays = {(display["Class"], (display.get("Topic") or {}).get("Value"))
                for display in manager["Displays"]}
    assert {("rviz_default_plugins/Image", "/camera/color/image_raw"),
            ("rviz_default_plugins/Image", "/detector_node/debug_image"),
            ("rviz_default_plugins/MarkerArray", "/pose_node/markers"),
            ("rviz_default_plugins/MarkerArray", "/grasp_orchestrator/markers"),
            ("rviz_default_plugins/TF", None)} <= displays
    provided = {resolve_name(topic, spec.namespace, spec.name)
                for name, spec in sim_demo.items() for topic in CONTRACT[name][2] if topic.startswith("~")}
    provided |= set(resolved_remappings(sim_demo["sim_camera"]).values())
    for _, topic in displays:
        assert topic is None or topic in provided, f"RViz shows {topic}, which no node of sim_demo publishes"


# ----- the shared launch code, run against recording stand-ins of the launch_ros API ----------------
class Recorded:
    """What a stand-in launch class was constructed with."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def stand_in_modules() -> dict:
    """Modules named like launch's and launch_ros's, whose classes record their arguments.

    The keyword names follow launch_ros's signatures (e.g. LifecycleNode(*, name, ...),
    OnStateTransition(*, entities, target_lifecycle_node, start_state, goal_state)); this
    runs our code paths, it does not prove launch_ros accepts them: only a robot can.
    """
    import types

    def classes(**signatures):
        return {name: type(name, (Recorded,), {"__init__": init}) for name, init in signatures.items()}

    def keywords_only(*required):
        def init(self, *args, **kwargs):
            assert not args, f"{type(self).__name__} takes keyword arguments only"
            missing = [name for name in required if name not in kwargs]
            assert not missing, f"{type(self).__name__} needs {missing}"
            Recorded.__init__(self, **kwargs)
        return init

    class LaunchConfiguration:
        def __init__(self, name):
            self.name = name

        def perform(self, context):
            return context.launch_configurations[self.name]

    modules = {name: types.ModuleType(name) for name in [
        "launch", "launch.actions", "launch.event_handlers", "launch.events", "launch.substitutions",
        "launch_ros", "launch_ros.actions", "launch_ros.event_handlers", "launch_ros.events",
        "launch_ros.events.lifecycle"]}
    any_arguments = Recorded.__init__
    vars(modules["launch"]).update(classes(LaunchDescription=any_arguments))
    vars(modules["launch.actions"]).update(classes(
        DeclareLaunchArgument=any_arguments, EmitEvent=keywords_only("event"), LogInfo=keywords_only("msg"),
        OpaqueFunction=keywords_only("function"), RegisterEventHandler=any_arguments))
    vars(modules["launch.event_handlers"]).update(classes(
        OnProcessExit=keywords_only("target_action", "on_exit"),
        OnProcessStart=keywords_only("target_action", "on_start")))
    modules["launch.events"].matches_action = lambda action: ("matches", action)
    modules["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    vars(modules["launch_ros.actions"]).update(classes(
        LifecycleNode=keywords_only("name", "namespace"), Node=keywords_only("executable")))
    vars(modules["launch_ros.event_handlers"]).update(classes(OnStateTransition=keywords_only("entities")))
    vars(modules["launch_ros.events.lifecycle"]).update(classes(
        ChangeState=keywords_only("lifecycle_node_matcher", "transition_id")))
    return modules


@pytest.fixture
def ros_launch(monkeypatch):
    import importlib
    import sys

    for name, module in stand_in_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, "vla_perception.bringup.ros_launch", raising=False)
    module = importlib.import_module("vla_perception.bringup.ros_launch")
    monkeypatch.setattr(module, "get_package_share_directory", lambda package: str(PACKAGE_DIR))
    yield module
    sys.modules.pop("vla_perception.bringup.ros_launch", None)


class FakeContext:
    def __init__(self, configurations, is_shutdown=False):
        self.launch_configurations, self.is_shutdown = configurations, is_shutdown


def run_launch(ros_launch, bringup, **overrides):
    description = ros_launch.bringup_launch_description(bringup)
    (entities,) = description.args
    declared = [entity for entity in entities if type(entity).__name__ == "DeclareLaunchArgument"]
    (opaque,) = [entity for entity in entities if type(entity).__name__ == "OpaqueFunction"]
    values = {action.args[0]: action.kwargs["default_value"] for action in declared}
    values.update(overrides)
    return declared, opaque.kwargs["function"](FakeContext(values), *opaque.kwargs["args"])


def test_launch_declares_every_graph_argument(ros_launch, graph):
    declared, _ = run_launch(ros_launch, "perception")
    assert [action.args[0] for action in declared] == list(graph["arguments"])
    profile = next(action for action in declared if action.args[0] == "profile")
    assert profile.kwargs["choices"] == ["", "default", "tiny"] and profile.kwargs["default_value"] == ""


def test_launch_starts_lifecycle_and_plain_nodes_as_the_graph_says(ros_launch):
    _, actions = run_launch(ros_launch, "grasp", namespace="r", respawn="true", profile="tiny")
    nodes = {action.kwargs["name"]: action for action in actions
             if type(action).__name__ in ("LifecycleNode", "Node")}
    assert {name for name, node in nodes.items() if type(node).__name__ == "LifecycleNode"} == {
        "clip_node", "detector_node", "vlm_node", "pose_node"}
    assert type(nodes["grasp_orchestrator"]).__name__ == "Node"
    detector = nodes["detector_node"].kwargs
    assert (detector["package"], detector["executable"], detector["namespace"]) == ("vla_perception",
                                                                                     "detector_node", "/r")
    assert detector["respawn"] is True and ("image", "/camera/color/image_raw") in detector["remappings"]
    assert detector["parameters"][0]["prompt"]  # detector_node.yaml's section, as a dict
    assert detector["parameters"][-1] == {"profile": "tiny", "autostart": True}
    exits = [action.args[0] for action in actions if type(action).__name__ == "RegisterEventHandler"
             and type(action.args[0]).__name__ == "OnProcessExit"]
    assert {handler.kwargs["target_action"].kwargs["name"] for handler in exits} == set(nodes)


def test_activation_events_configures_on_start_and_activates_once_configured(ros_launch):
    from lifecycle_msgs.msg import Transition

    _, actions = run_launch(ros_launch, "perception", activation="events", nodes="pose_node")
    (node,) = [action for action in actions if type(action).__name__ == "LifecycleNode"]
    assert node.kwargs["parameters"][-1] == {"autostart": False}
    handlers = [action.args[0] for action in actions if type(action).__name__ == "RegisterEventHandler"]
    (on_start,) = [h for h in handlers if type(h).__name__ == "OnProcessStart"]
    (on_inactive,) = [h for h in handlers if type(h).__name__ == "OnStateTransition"]
    assert on_start.kwargs["target_action"] is node
    configure = on_start.kwargs["on_start"][0].kwargs["event"]
    assert configure.kwargs["transition_id"] == Transition.TRANSITION_CONFIGURE
    assert on_inactive.kwargs["target_lifecycle_node"] is node
    assert on_inactive.kwargs["start_state"] == "configuring"
    assert on_inactive.kwargs["goal_state"] == "inactive"
    event = on_inactive.kwargs["entities"][0].kwargs["event"]
    assert event.kwargs["transition_id"] == Transition.TRANSITION_ACTIVATE
    assert event.kwargs["lifecycle_node_matcher"] == ("matches", node)
    _, actions = run_launch(ros_launch, "perception", activation="autostart", nodes="pose_node")
    assert not any(type(action.args[0]).__name__ in ("OnProcessStart", "OnStateTransition")
                   for action in actions if type(action).__name__ == "RegisterEventHandler")


def test_exit_log_tells_a_crash_from_a_shutdown(ros_launch, graph):
    from types import SimpleNamespace

    (spec,) = resolve_bringup(graph, "perception", {"nodes": "vlm_node", "respawn": "true"})
    crash = ros_launch.log_exit(spec, SimpleNamespace(returncode=-11), FakeContext({}))
    assert "/vlm_node DIED with exit code -11" in crash.kwargs["msg"] and "respawning" in crash.kwargs["msg"]
    stop = ros_launch.log_exit(spec, SimpleNamespace(returncode=-2), FakeContext({}, is_shutdown=True))
    assert "DIED" not in stop.kwargs["msg"]
