"""``vla-perception up``: start a bringup of config/graph.yaml as processes, without ``ros2 launch``.

The same graph as ``ros2 launch vla_perception <bringup>.launch.py`` (both resolve it with
vla_perception.bringup.graph). Each node runs as
``python -m vla_perception.nodes.<executable> --ros-args -r __node:=... --params-file ... -p ...``
with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` forced. A line per node says when it is
ready (lifecycle nodes: ``~/get_state`` reports active; plain nodes: the node is in the
graph). Ctrl-C stops every node (SIGINT, then SIGTERM, then SIGKILL); a node that dies is
reported with its exit code and last log lines, and ``up`` exits 1 unless ``--respawn``.
Process supervision is ROS-free (bringup/supervisor.py); only the readiness checks use rclpy.
"""
from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from vla_perception.bringup.commands import node_command
from vla_perception.bringup.environment import ros_environment
from vla_perception.bringup.graph import GraphError, NodeSpec, load_graph, resolve_bringup
from vla_perception.bringup.supervisor import ChildExit, ChildSpec, Supervisor, supervise

# flag -> graph argument (flags are shortcuts for --arg NAME=VALUE)
FLAG_ARGUMENTS = {"profile": "profile", "device": "device", "nodes": "nodes", "namespace": "namespace",
                  "planner": "planner", "activation": "activation", "params_file": "params_file"}
POLL_PERIOD = 0.5  # seconds between ~/get_state calls to one node
ACTIVE, INACTIVE, UNCONFIGURED = 3, 2, 1  # lifecycle_msgs/State ids


def add_arguments(parser, command):
    parser.add_argument("bringup", nargs="?", default="perception",
                        help="perception, grasp or sim_demo (the bringups in config/graph.yaml)")
    parser.add_argument("--profile", help="model profile: default or tiny (unset: each node's YAML decides)")
    parser.add_argument("--device", help="torch device of the model nodes: auto, cpu, cuda, cuda:N")
    parser.add_argument("--nodes", help="subset of the bringup's nodes, e.g. clip_node,pose_node")
    parser.add_argument("--namespace", help="namespace for every node")
    parser.add_argument("--planner", help="grasp_orchestrator's planner: auto, embedded, moveit, poses_only")
    parser.add_argument("--activation",
                        help="lifecycle nodes: autostart (default), events (up drives them) or manual")
    parser.add_argument("--params-file", dest="params_file", help="extra parameters file for every node")
    parser.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                        help="any graph argument, e.g. --arg image_topic:=/cam/image (repeatable)")
    parser.add_argument("--respawn", action="store_true", help="restart a node that dies instead of stopping")
    parser.add_argument("--respawn-delay", type=float, default=None, help="seconds before a restart")
    parser.add_argument("--stop-timeout", type=float, default=10.0,
                        help="seconds to wait after SIGINT before SIGTERM (and as long again before SIGKILL)")
    parser.add_argument("--ready-timeout", type=float, default=120.0,
                        help="warn about nodes not ready after this many seconds")
    parser.add_argument("--graph", help="another graph.yaml (default: the package's)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the node commands (and keep their parameter files) and exit")


def argument_overrides(args) -> dict[str, str]:
    overrides = {name: getattr(args, flag) for flag, name in FLAG_ARGUMENTS.items()
                 if getattr(args, flag) is not None}
    for item in args.arg:
        separator = ":=" if ":=" in item else "="
        name, found, value = item.partition(separator)
        if not found or not name:
            raise GraphError(f"--arg {item!r}: write NAME=VALUE")
        overrides[name.strip()] = value
    if args.respawn:
        overrides["respawn"] = "true"
    if args.respawn_delay is not None:
        overrides["respawn_delay"] = str(args.respawn_delay)
    return overrides


def report(line: str) -> None:
    print(f"[up] {line}", file=sys.stderr, flush=True)


def run(args) -> int:
    env = ros_environment()
    params_dir = Path(tempfile.mkdtemp(prefix="vla_up_"))
    keep_params = False
    try:
        try:
            overrides = argument_overrides(args)
            graph = load_graph(args.graph)
            specs = resolve_bringup(graph, args.bringup, overrides)
            commands = {spec.name: node_command(spec, params_dir) for spec in specs}
        except (GraphError, OSError) as error:
            print(f"vla-perception up: {error}", file=sys.stderr)
            return 2
        if args.dry_run:
            for command in commands.values():
                print(shlex.join(command))
            print(f"# the parameter files these commands name are kept in {params_dir}", file=sys.stderr)
            keep_params = True
            return 0
        default_activation = graph["arguments"].get("activation", {}).get("default", "autostart")
        activation = overrides.get("activation", default_activation)
        return start(args.bringup, specs, commands, env, args, activation)
    finally:
        if not keep_params:
            shutil.rmtree(params_dir, ignore_errors=True)


def start(bringup: str, specs: list[NodeSpec], commands: dict[str, list[str]], env: dict, args,
          activation: str) -> int:
    report(f"{bringup}: starting {', '.join(spec.fully_qualified_name for spec in specs)} "
           f"(ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}, discovery LOCALHOST, activation={activation})")
    supervisor = Supervisor(
        [ChildSpec(spec.name, commands[spec.name], env, spec.respawn, spec.respawn_delay) for spec in specs],
        stop_timeout=args.stop_timeout, term_timeout=args.stop_timeout, report=report)
    monitor = ReadinessMonitor(specs, activation, args.ready_timeout)
    try:
        return supervise(supervisor, on_tick=monitor.tick, on_exit=monitor.restarted)
    finally:
        monitor.close()


class Watch:
    """Readiness bookkeeping of one node."""

    def __init__(self, spec: NodeSpec, get_state=None, change_state=None):
        self.spec = spec
        self.get_state, self.change_state = get_state, change_state
        self.started = time.monotonic()
        self.future = None
        self.next_poll = 0.0
        self.warned = False
        self.failed = False


class ReadinessMonitor:
    """Prints a line when each node is ready; with activation=events it configures and activates them."""

    def __init__(self, specs: list[NodeSpec], activation: str, ready_timeout: float):
        import rclpy
        from lifecycle_msgs.srv import ChangeState, GetState
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        self._rclpy, self._change_state_type, self._get_state_type = rclpy, ChangeState, GetState
        self.activation, self.ready_timeout = activation, ready_timeout
        self.context = rclpy.Context()
        # No rclpy signal handlers: Ctrl-C belongs to the supervisor, which stops the nodes first.
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(f"vla_up_{os.getpid()}", context=self.context, enable_rosout=False,
                                      start_parameter_services=False)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.specs = {spec.name: spec for spec in specs}
        self.waiting: dict[str, Watch] = {}
        self.all_ready_reported = False
        for spec in specs:
            self._watch(spec)

    def _watch(self, spec: NodeSpec) -> None:
        watch = Watch(spec)
        if spec.lifecycle:
            watch.get_state = self.node.create_client(
                self._get_state_type, f"{spec.fully_qualified_name}/get_state")
            watch.change_state = self.node.create_client(
                self._change_state_type, f"{spec.fully_qualified_name}/change_state")
        self.waiting[spec.name] = watch

    def restarted(self, exited: ChildExit) -> None:
        if exited.respawning and exited.name in self.specs:
            old = self.waiting.pop(exited.name, None)
            if old is not None and old.get_state is not None:
                self.node.destroy_client(old.get_state)
                self.node.destroy_client(old.change_state)
            self._watch(self.specs[exited.name])
            self.all_ready_reported = False

    def tick(self) -> None:
        self.executor.spin_once(timeout_sec=0.1)
        present = {(name, namespace) for name, namespace in self.node.get_node_names_and_namespaces()}
        now = time.monotonic()
        for name, watch in list(self.waiting.items()):
            if watch.spec.lifecycle:
                self._step_lifecycle(watch, now)
            elif (watch.spec.name, watch.spec.namespace or "/") in present:
                self._ready(watch, "running")
            if name in self.waiting and not watch.warned and now - watch.started > self.ready_timeout:
                watch.warned = True
                report(f"{name}: not ready after {self.ready_timeout:.0f} s (still loading? see its log)")
        if not self.waiting and not self.all_ready_reported:
            report(f"all {len(self.specs)} nodes ready")
            self.all_ready_reported = True

    def _ready(self, watch: Watch, how: str) -> None:
        report(f"{watch.spec.name} ready: {how} ({time.monotonic() - watch.started:.1f} s)")
        del self.waiting[watch.spec.name]

    def _step_lifecycle(self, watch: Watch, now: float) -> None:
        if watch.future is not None:
            if not watch.future.done():
                return
            future, watch.future = watch.future, None
            self._handle(watch, future.result())
            if watch.spec.name not in self.waiting or watch.future is not None:
                return
        if watch.failed or now < watch.next_poll or not watch.get_state.service_is_ready():
            return
        watch.next_poll = now + POLL_PERIOD
        watch.future = watch.get_state.call_async(self._get_state_type.Request())

    def _handle(self, watch: Watch, result) -> None:
        if hasattr(result, "success"):  # a ChangeState response
            if not result.success:
                watch.failed = True
                report(f"{watch.spec.name}: lifecycle transition failed; see its log above")
            return
        state = result.current_state
        if state.id == ACTIVE:
            self._ready(watch, "active")
        elif self.activation == "manual":
            self._ready(watch, f"{state.label} (activation=manual: waiting for a lifecycle manager)")
        elif self.activation == "autostart" and state.id == UNCONFIGURED and not watch.warned:
            # Our nodes answer get_state only after their autostart ran, so this is usually a failure.
            watch.warned = True
            report(f"{watch.spec.name}: still unconfigured although autostart is on: its configure "
                   "failed (or is slow); see its log above")
        elif self.activation == "events" and state.id in (UNCONFIGURED, INACTIVE):
            from lifecycle_msgs.msg import Transition

            request = self._change_state_type.Request()
            request.transition.id = (Transition.TRANSITION_CONFIGURE if state.id == UNCONFIGURED
                                     else Transition.TRANSITION_ACTIVATE)
            transition = "configure" if state.id == UNCONFIGURED else "activate"
            report(f"{watch.spec.name}: {state.label} -> {transition}")
            watch.future = watch.change_state.call_async(request)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)
