"""Helpers for tests that run real nodes in separate processes and talk to them over DDS."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

# Discovery takes 0.04 s or 2-3 s at random (docs/development.md): wait generously, never sleep fixed times.
DISCOVERY_TIMEOUT = 15.0
TEST_DIR = Path(__file__).resolve().parent


def ros_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("ROS_DOMAIN_ID", os.environ["ROS_DOMAIN_ID"])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def write_params(node_name: str, params: dict, directory: str | None = None) -> str:
    """Write a ROS 2 parameters YAML file for one node and return its path."""
    handle, path = tempfile.mkstemp(prefix=f"{node_name}_", suffix=".yaml", dir=directory)
    with os.fdopen(handle, "w") as stream:
        yaml.safe_dump({node_name: {"ros__parameters": params}}, stream)
    return path


class NodeProcess:
    """A node started as its own process; stopped with SIGINT, then SIGKILL.

    ``target`` is a module (``vla_perception.nodes.clip_node``, run with ``python -m``) or
    the path of a Python script.
    """

    def __init__(self, target: str, ros_args: list[str] | None = None, name: str | None = None, env=None):
        self.name = name or Path(target).stem.rsplit(".", 1)[-1]
        self.log = tempfile.NamedTemporaryFile(prefix=f"{self.name}_", suffix=".log", delete=False)
        launcher = [target] if target.endswith(".py") else ["-m", target]
        command = [sys.executable, *launcher, "--ros-args", *(ros_args or [])]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env or ros_env(),
                                        preexec_fn=_die_with_parent)

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def __enter__(self) -> "NodeProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _die_with_parent() -> None:
    """Runs in the child: SIGTERM it when the test process dies, so a crashed run leaves no nodes behind."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class RosClient:
    """An rclpy node spinning in a background thread, for the test's side of the conversation."""

    def __init__(self, name: str = "test_client"):
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()
        self._action_clients: dict = {}

    def call(self, srv_type, service: str, request, timeout: float = 30.0):
        """Call a service once it is available; raises TimeoutError with a useful message."""
        client = self.node.create_client(srv_type, service)
        try:
            if not client.wait_for_service(timeout_sec=DISCOVERY_TIMEOUT):
                raise TimeoutError(f"service {service} not available after {DISCOVERY_TIMEOUT} s")
            future = client.call_async(request)
            return wait_for(future.done, timeout, f"no response from {service}") and future.result()
        finally:
            self.node.destroy_client(client)

    def wait_for_service(self, srv_type, service: str, timeout: float) -> None:
        """For nodes that take long to start (a simulator building its scene on a loaded machine)."""
        client = self.node.create_client(srv_type, service)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {service} not available after {timeout:.0f} s")
        finally:
            self.node.destroy_client(client)

    def action_client(self, action_type, action: str):
        """One client per action, kept until close: destroying one while the executor spins kills its thread."""
        from rclpy.action import ActionClient

        if action not in self._action_clients:
            self._action_clients[action] = ActionClient(self.node, action_type, action)
        return self._action_clients[action]

    def collect(self, msg_type, topic: str, qos=10, publishers: int = 0) -> list:
        """Subscribe and return the (live) list that received messages are appended to.

        With ``publishers``, return only once that many publishers are matched: what a publisher
        sends before it has discovered this subscription never reaches it.
        """
        received: list = []
        subscription = self.node.create_subscription(msg_type, topic, received.append, qos)
        wait_for(lambda: subscription.get_publisher_count() >= publishers, DISCOVERY_TIMEOUT,
                 f"{publishers} publisher(s) on {topic}")
        return received

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        self.node.destroy_node()
        with contextlib.suppress(Exception):
            self.context.try_shutdown()

    def __enter__(self) -> "RosClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def wait_for(condition, timeout: float, what: str, interval: float = 0.02) -> bool:
    """Poll ``condition`` until true; raise TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    raise TimeoutError(f"{what} (waited {timeout:.0f} s)")


@contextlib.contextmanager
def running_graph(processes: list, client_name: str):
    """A RosClient while ``processes`` run; on exit the client closes and the processes stop, last first."""
    client = RosClient(client_name)
    try:
        yield client
    finally:
        client.close()
        for process in reversed(processes):
            process.stop()
