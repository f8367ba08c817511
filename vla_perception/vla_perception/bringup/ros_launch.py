"""launch_ros actions for a bringup of graph.yaml: what launch/*.launch.py return.

Needs ``launch`` and ``launch_ros`` (a robot's ROS 2 install); on a machine without them
use ``vla-perception up``, which resolves the same graph with the same loader.

- Every graph argument becomes a launch argument (``ros2 launch vla_perception
  perception.launch.py profile:=tiny nodes:=clip_node,detector_node``); graph.yaml is read
  from the installed share directory of vla_perception (ament index).
- Lifecycle nodes are ``launch_ros`` ``LifecycleNode`` actions. How they get configured and
  activated is the ``activation`` argument: ``autostart`` (default) sets their ``autostart``
  parameter, so each node configures and activates itself; ``events`` emits lifecycle
  ChangeState events from the launch file (configure when the process starts, activate when
  configuring reaches inactive); ``manual`` leaves them unconfigured for a lifecycle manager.
- ``respawn:=true`` restarts a node that exits (after ``respawn_delay``); an OnProcessExit
  handler logs every node that exits, with its exit code.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit, OnProcessStart
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from vla_perception.bringup.graph import GRAPH_FILE, PACKAGE, NodeSpec, load_graph, resolve_bringup


def installed_graph_path() -> Path:
    return Path(get_package_share_directory(PACKAGE)) / "config" / GRAPH_FILE


def bringup_launch_description(bringup: str) -> LaunchDescription:
    """Declare the graph's arguments and start the nodes of ``bringup`` once they are known."""
    graph = load_graph(installed_graph_path())
    declared = [
        DeclareLaunchArgument(name, default_value=str(argument.get("default", "")),
                              description=argument.get("description", ""),
                              **choices_of(argument))
        for name, argument in graph["arguments"].items()]
    return LaunchDescription([*declared, OpaqueFunction(function=launch_setup, args=[bringup, graph])])


def choices_of(argument: dict) -> dict:
    return {"choices": [str(choice) for choice in argument["choices"]]} if "choices" in argument else {}


def launch_setup(context, bringup: str, graph: dict) -> list:
    """Resolve the bringup with the launch arguments' values, then build its actions."""
    values = {name: LaunchConfiguration(name).perform(context) for name in graph["arguments"]}
    actions: list = [LogInfo(msg=f"vla_perception {bringup}: " + ", ".join(
        f"{name}={value}" for name, value in values.items() if value))]
    for spec in resolve_bringup(graph, bringup, values):
        actions += node_actions(spec, values.get("activation", "autostart"))
    return actions


def node_actions(spec: NodeSpec, activation: str) -> list:
    options = dict(package=PACKAGE, executable=spec.executable, name=spec.name, namespace=spec.namespace,
                   parameters=spec.parameter_sources(), remappings=list(spec.remappings),
                   respawn=spec.respawn, respawn_delay=spec.respawn_delay, output="screen", emulate_tty=True)
    node = LifecycleNode(**options) if spec.lifecycle else Node(**options)
    actions = [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=partial(log_exit, spec)))]
    if spec.lifecycle and activation == "events":
        actions += lifecycle_event_actions(node)
    return actions


def lifecycle_event_actions(node: LifecycleNode) -> list:
    """Configure the node when its process starts (again, after a respawn); activate it once configured."""
    def transition(transition_id: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition_id))

    return [
        RegisterEventHandler(OnProcessStart(target_action=node,
                                            on_start=[transition(Transition.TRANSITION_CONFIGURE)])),
        RegisterEventHandler(OnStateTransition(target_lifecycle_node=node, start_state="configuring",
                                               goal_state="inactive",
                                               entities=[transition(Transition.TRANSITION_ACTIVATE)])),
    ]


def log_exit(spec: NodeSpec, event, context) -> LogInfo:
    """OnProcessExit callback: say which node exited and how (a crash: non-zero code, not shutting down)."""
    if context.is_shutdown or event.returncode == 0:
        return LogInfo(msg=f"{spec.fully_qualified_name} stopped (exit code {event.returncode})")
    then = (f"respawning in {spec.respawn_delay:g} s" if spec.respawn
            else "not restarted (respawn:=true restarts it); its last log lines are above")
    return LogInfo(msg=f"{spec.fully_qualified_name} DIED with exit code {event.returncode}: {then}")
