"""Passing a robot's MoveIt config through graph.yaml, and what the orchestrator does with it at start.

The graph half is ROS-free: the moveit_* launch arguments must reach the orchestrator as
``--params-file`` entries under ``/**`` (moveit_py's MoveItPy reads the params files on its
process's command line; its node is not the orchestrator node). The builder route is checked
against a CONTRACT stand-in of ``moveit_configs_utils.MoveItConfigsBuilder`` (not installable
here) whose calls are those of moveit2's ``moveit_configs_utils/moveit_configs_builder.py``
(humble and main: ``MoveItConfigsBuilder(robot_name, robot_description="robot_description",
package_name=None)``, ``.trajectory_execution(file_path=None, moveit_manage_controllers=True)``,
``.to_dict()``) and of moveit2_tutorials' motion_planning_python_api launch file.

The node half starts the real grasp_orchestrator as a process with a stand-in ``moveit``
package on PYTHONPATH (moveit_py importable, MoveItPy failing as MoveItCpp does without a
config): ``auto`` must come up with the embedded planner and say why; an explicit ``moveit``
must exit 1 with one line naming what is missing, no traceback.
"""
import sys
import time
import types
from pathlib import Path

import pytest
import yaml

from ros_harness import NodeProcess, ros_env, wait_for
from vla_perception.bringup.commands import ros_arguments
from vla_perception.bringup.graph import GraphError, load_graph, resolve_bringup
from vla_perception.core.planning.moveit import MoveItSettings
from vla_perception.core.planning.moveit_config import MoveItConfig

PANDA = "moveit_resources_panda_moveit_config"
ROBOT_PARAMS = {"robot_description": "<robot name='panda'/>", "robot_description_semantic": "<robot name='panda'/>",
                "pilz_industrial_motion_planner": {
                    "planning_plugins": ["pilz_industrial_motion_planner/CommandPlanner"]}}


@pytest.fixture(scope="module")
def graph():
    return load_graph()


def orchestrator(graph, **arguments):
    return next(spec for spec in resolve_bringup(graph, "grasp", arguments) if spec.name == "grasp_orchestrator")


def wildcard_file(path: Path, parameters: dict) -> Path:
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": parameters}}))
    return path


def test_without_moveit_arguments_no_moveit_files_are_passed(graph):
    spec = orchestrator(graph)
    assert [Path(f.path).name for f in spec.params_files] == ["grasp_orchestrator.yaml"]


def test_a_moveit_params_file_reaches_moveitpy_after_our_defaults_and_before_the_users(graph, tmp_path):
    robot = wildcard_file(tmp_path / "robot.yaml", ROBOT_PARAMS)
    extra = tmp_path / "extra.yaml"
    extra.write_text("/**:\n  ros__parameters: {}\n")
    spec = orchestrator(graph, moveit_params_file=str(robot), params_file=str(extra))
    paths = [f.path for f in spec.params_files]
    assert [Path(p).name for p in paths] == ["grasp_orchestrator.yaml", "moveit_py.yaml", "robot.yaml", "extra.yaml"]
    argv = ["grasp_orchestrator", *ros_arguments(spec, tmp_path)]
    for path in paths[1:]:
        assert argv[argv.index(path) - 1] == "--params-file"  # verbatim, so the /** section survives
    config = MoveItConfig.from_command_line(argv)
    assert config.problem() is None and config.pilz_problem() is None
    assert config.parameters["vla_line.plan_request_params.planner_id"] == "LIN"  # config/moveit_py.yaml
    assert MoveItSettings.from_config(config) == MoveItSettings()  # its vla_grasp names: the Panda's, as coded
    # only our moveit_py.yaml: MoveItPy still lacks the robot, and the message says how to pass it
    only_ours = MoveItConfig.from_command_line(argv[: argv.index(paths[1]) + 1])
    assert "robot_description, robot_description_semantic missing" in only_ours.problem()
    assert "moveit_config_package:=" in only_ours.problem()


def test_bad_moveit_arguments_are_graph_errors(graph, tmp_path):
    robot = wildcard_file(tmp_path / "robot.yaml", ROBOT_PARAMS)
    with pytest.raises(GraphError, match="grasp_orchestrator: pass moveit_config_package or moveit_params_file"):
        orchestrator(graph, moveit_params_file=str(robot), moveit_config_package=PANDA)
    with pytest.raises(GraphError, match="no such file"):
        orchestrator(graph, moveit_params_file=str(tmp_path / "absent.yaml"))


@pytest.fixture
def builder_standin(monkeypatch):
    """moveit_configs_utils with a MoveItConfigsBuilder that records its calls and returns a small dict."""
    calls = []

    class MoveItConfigsBuilder:
        def __init__(self, robot_name, robot_description="robot_description", package_name=None):
            calls.append(("init", robot_name, package_name))

        def trajectory_execution(self, file_path=None, moveit_manage_controllers=True):
            calls.append(("trajectory_execution", file_path))
            return self

        def to_dict(self, include_moveit_configs=True):
            calls.append(("to_dict",))
            return {**ROBOT_PARAMS, "robot_description_kinematics": {"panda_arm": {"kinematics_solver_timeout": 0.005}},
                    "config_path": Path("/opt/ros/share") / PANDA}  # builders hand out Paths too

    module = types.ModuleType("moveit_configs_utils")
    module.MoveItConfigsBuilder = MoveItConfigsBuilder
    monkeypatch.setitem(sys.modules, "moveit_configs_utils", module)
    return calls


def test_a_moveit_config_package_is_built_with_moveitconfigsbuilder(graph, builder_standin, tmp_path):
    spec = orchestrator(graph, moveit_config_package=PANDA, moveit_robot_name="panda",
                        moveit_controllers_file="config/gripper_moveit_controllers.yaml")
    assert builder_standin == [("init", "panda", PANDA),
                               ("trajectory_execution", "config/gripper_moveit_controllers.yaml"), ("to_dict",)]
    written = Path(spec.params_files[-1].path)
    try:
        data = yaml.safe_load(written.read_text())
        assert list(data) == ["/**"]
        assert data["/**"]["ros__parameters"]["config_path"] == f"/opt/ros/share/{PANDA}"
        config = MoveItConfig.from_command_line(["x", *ros_arguments(spec, tmp_path)])
        assert config.problem() is None
        assert config.parameters["robot_description_kinematics.panda_arm.kinematics_solver_timeout"] == 0.005
    finally:
        written.unlink()
    builder_standin.clear()
    Path(orchestrator(graph, moveit_config_package=PANDA).params_files[-1].path).unlink()
    assert builder_standin == [("init", "moveit_resources_panda", PANDA), ("to_dict",)]  # name from the package


def test_a_moveit_config_package_without_moveit_configs_utils_says_what_to_do(graph, monkeypatch):
    monkeypatch.setitem(sys.modules, "moveit_configs_utils", None)  # import fails, as on this machine
    with pytest.raises(GraphError, match="needs moveit_configs_utils.*moveit_params_file"):
        orchestrator(graph, moveit_config_package=PANDA)


# ---- the node ----------------------------------------------------------------------------------
FAKE_MOVEIT = {
    "moveit/__init__.py": "",
    "moveit/planning.py": (
        "class MoveItPy:\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        raise RuntimeError('Unable to construct robot model. Please make sure all needed information is on "
        "the parameter server.')\n\n\n"
        "class PlanRequestParameters:\n"
        "    pass\n"),
}


@pytest.fixture
def moveit_importable_env(tmp_path):
    """Environment for a node process in which ``import moveit.planning`` works (MoveItPy fails like MoveItCpp)."""
    for relative, text in FAKE_MOVEIT.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    env = ros_env()
    env["PYTHONPATH"] = f"{tmp_path}:{env.get('PYTHONPATH', '')}"
    return env


def test_auto_with_moveit_py_but_no_config_starts_with_embedded_and_says_why(moveit_importable_env):
    with NodeProcess("vla_perception.nodes.grasp_orchestrator", ["-p", "planner:=auto"],
                     env=moveit_importable_env) as node:
        assert wait_for(lambda: "planner: embedded" in node.output() or not node.alive(), 120, "the planner line")
        time.sleep(1.0)  # still up a moment later: nothing threw after the choice
        assert node.alive(), node.output()
        lines = [line for line in node.output().splitlines() if "planner: " in line]
        assert len(lines) == 1
        assert "moveit_py imports but no MoveIt configuration" in lines[0] and "robot_description" in lines[0]
        assert node.stop() == 0
    assert "Traceback" not in node.output()


def test_explicit_moveit_that_cannot_start_exits_with_one_clear_line(moveit_importable_env):
    node = NodeProcess("vla_perception.nodes.grasp_orchestrator", ["-p", "planner:=moveit"], env=moveit_importable_env)
    try:
        node.process.wait(120)
    finally:
        node.stop()
    output = node.output()
    assert node.process.returncode == 1, output
    assert "Traceback" not in output
    fatal = [line for line in output.splitlines() if "FATAL" in line]
    assert len(fatal) == 1, output
    assert "planner 'moveit' cannot start: no MoveIt configuration" in fatal[0]
    assert "robot_description" in fatal[0] and "moveit_config_package:=" in fatal[0]
