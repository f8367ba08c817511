"""Soak: the full sim_demo graph (tiny models) streaming for minutes; RSS, result rates, errors (not a test).

Starts ``vla-perception up sim_demo --profile tiny`` (every node its own process, the simulator
camera streaming), asks grasp_orchestrator for a plan every ``--plan-every`` seconds, and
every 30 s prints each node's RSS, the rate of each result topic over the window, the plans
answered, and each node's contained callback errors (from /diagnostics). At the end: RSS growth
from minute 2 to the end per node (the goal is < 5 %) and whether every node is still alive.

    PYTHONPATH=vla_perception nice .venv/bin/python bench/bench_soak.py [--minutes 10] [--write docs/soak.md]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench_common import use_loopback_ros  # noqa: E402

use_loopback_ros()  # before rclpy or the package is imported

from bench_common import machine, print_and_write  # noqa: E402

from vla_perception import names  # noqa: E402
from vla_perception.bringup.graph import bringup_nodes, load_graph, optional_nodes  # noqa: E402

GRAPH = load_graph()
NODES = bringup_nodes(GRAPH, "sim_demo") + optional_nodes(GRAPH, "sim_demo", {})  # its default arguments
WINDOW = 30.0  # s between samples
TOPICS = {"image": "/camera/color/image_raw",  # sim_demo remaps the sim camera to image_topic
          "detections": names.DETECTIONS.absolute, "classification": names.CLASSIFICATION.absolute,
          "objects": names.OBJECTS.absolute, "tracks": names.TRACKS.absolute}


def node_pids(root_pid: int) -> dict[str, int]:
    """{node: pid} of the node processes below ``root_pid`` (by their ``vla_perception.nodes.X`` module).

    Only descendants: on a shared machine other runs' nodes have the same command lines.
    """
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue

    def below_root(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == root_pid:
                return True
        return False

    found = {}
    for pid, cmdline in commands.items():
        modules = [part.decode(errors="replace") for part in cmdline]
        for text in modules:
            if text.startswith("vla_perception.nodes.") and below_root(pid):
                found[text.rsplit(".", 1)[-1]] = pid
    return found


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Listener:
    """Counts result messages per topic, plans answered, and each node's /diagnostics error count."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from vla_perception_interfaces.msg import Classification, Detection2DArray, Object3DArray

        rclpy.init()
        self.node = rclpy.create_node("soak_listener")
        self.counts = {name: 0 for name in TOPICS}
        self.errors: dict[str, int] = {}
        types = {"image": Image, "detections": Detection2DArray, "classification": Classification,
                 "objects": Object3DArray, "tracks": Detection2DArray}
        for name, topic in TOPICS.items():
            qos = qos_profile_sensor_data if name == "image" else 10
            self.node.create_subscription(types[name], topic, lambda _msg, n=name: self._count(n), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diagnostics, 10)
        self.plans = {"answered": 0, "succeeded": 0, "unanswered": 0}
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _count(self, name: str) -> None:
        self.counts[name] += 1

    def _diagnostics(self, msg) -> None:
        for status in msg.status:
            values = {value.key: value.value for value in status.values}
            if "callback_errors" in values:
                self.errors[status.name.lstrip("/")] = int(values["callback_errors"])

    def plan_once(self, timeout: float = 60.0) -> None:
        from vla_perception_interfaces.srv import PlanGrasp

        client = self.node.create_client(PlanGrasp, names.PLAN_GRASP.absolute)
        try:
            if not client.wait_for_service(timeout_sec=10.0):
                self.plans["unanswered"] += 1
                return
            future = client.call_async(PlanGrasp.Request(command="pick up the red mug"))
            deadline = time.monotonic() + timeout
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.05)
            if future.done():
                self.plans["answered"] += 1
                self.plans["succeeded"] += bool(future.result().success)
            else:
                self.plans["unanswered"] += 1
        finally:
            self.node.destroy_client(client)


def wait_for_graph(listener: Listener, supervisor: subprocess.Popen, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor.poll() is not None:
            raise SystemExit(f"vla-perception up exited with {supervisor.returncode}")
        if listener.counts["objects"] > 0 and set(NODES) <= set(node_pids(supervisor.pid)):
            return
        time.sleep(1.0)
    raise SystemExit("the sim_demo graph did not produce objects within 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--plan-every", type=float, default=15.0, help="seconds between ~/plan_grasp calls")
    parser.add_argument("--write", help="write the report (markdown) to this file")
    args = parser.parse_args()

    from model_fixtures import build_tiny_models  # noqa: E402 - the same tiny models the tests build

    class Factory:  # build_tiny_models wants pytest's tmp_path_factory; a temp dir does
        def mktemp(self, name):
            return Path(tempfile.mkdtemp(prefix=f"soak_{name}_"))

    models = build_tiny_models(Factory())
    env = dict(os.environ, VLA_PERCEPTION_MODELS=str(models), PYTHONUNBUFFERED="1")
    log = open(Path(tempfile.gettempdir()) / "bench_soak_up.log", "w")
    supervisor = subprocess.Popen([sys.executable, "-m", "vla_perception.cli", "up", "sim_demo", "--profile", "tiny",
                                   "--device", "cpu"], stdout=log, stderr=subprocess.STDOUT, env=env)
    listener = Listener()
    rows, started = [], None
    try:
        wait_for_graph(listener, supervisor)
        pids = node_pids(supervisor.pid)
        started = time.monotonic()
        next_plan = started
        last_counts = dict(listener.counts)
        last_plans = dict(listener.plans)
        next_sample = started + WINDOW
        while time.monotonic() - started < args.minutes * 60:
            if time.monotonic() >= next_plan:
                listener.plan_once()
                next_plan += args.plan_every
            if time.monotonic() >= next_sample:
                counts, plans = dict(listener.counts), dict(listener.plans)
                row = {"t": round(time.monotonic() - started),
                       "rss": {node: rss_mib(pid) for node, pid in pids.items()},
                       "alive": {node: Path(f"/proc/{pid}").exists() for node, pid in pids.items()},
                       "rates": {name: (counts[name] - last_counts[name]) / WINDOW for name in TOPICS},
                       "plans": {key: plans[key] - last_plans[key] for key in plans},
                       "errors": dict(listener.errors)}
                rows.append(row)
                print(format_row(row), flush=True)
                last_counts, last_plans = counts, plans
                next_sample += WINDOW
            time.sleep(0.2)
    finally:
        supervisor.send_signal(signal.SIGINT)
        try:
            supervisor.wait(30)
        except subprocess.TimeoutExpired:
            supervisor.kill()
        log.close()
    report = make_report(rows, args)
    print_and_write(report, args.write)


def format_row(row) -> str:
    rss = " ".join(f"{node}={mib:.0f}" for node, mib in sorted(row["rss"].items()))
    rates = " ".join(f"{name}={rate:.2f}/s" for name, rate in row["rates"].items())
    return f"t={row['t']:>4} s  RSS MiB: {rss}  rates: {rates}  plans: {row['plans']}  errors: {row['errors']}"


def make_report(rows, args) -> str:
    lines = ["# Soak: the sim_demo graph (tiny models) streaming", "",
             f"Measured by `bench/bench_soak.py --minutes {args.minutes:g}` on {machine()}.",
             f"Every node its own process; a `~/plan_grasp` every {args.plan_every:g} s. RSS in MiB every 30 s;",
             "rates are result messages per second over the 30 s window; errors are the contained",
             "callback errors each node reports on /diagnostics (cumulative).", ""]
    if not rows:
        return "\n".join(lines + ["No samples: the run ended before the first window."])
    nodes = sorted(rows[0]["rss"])
    lines.append("| t (s) | " + " | ".join(nodes) + "".join(f" | {name}/s" for name in TOPICS)
                 + " | plans ok/answered | errors |")
    lines.append("|---" * (len(nodes) + len(TOPICS) + 3) + "|")
    for row in rows:
        rss = " | ".join(f"{row['rss'][node]:.0f}" for node in nodes)
        rates = " | ".join(f"{row['rates'][name]:.2f}" for name in TOPICS)
        plans = f"{row['plans']['succeeded']}/{row['plans']['answered']}"
        errors = sum(row["errors"].values())
        lines.append(f"| {row['t']} | {rss} | {rates} | {plans} | {errors} |")
    after_two = [row for row in rows if row["t"] >= 120] or rows
    first, last = after_two[0], rows[-1]
    lines += ["", f"RSS growth from t = {first['t']} s to t = {last['t']} s (goal < 5 %):", ""]
    for node in nodes:
        growth = last["rss"][node] / first["rss"][node] - 1.0
        lines.append(f"- {node}: {first['rss'][node]:.0f} -> {last['rss'][node]:.0f} MiB ({growth:+.1%}); "
                     f"{'alive' if last['alive'][node] else 'DEAD'} at the end")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
