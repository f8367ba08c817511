"""``vla-perception up`` end to end: real processes, real rclpy lifecycle nodes, over DDS on loopback.

Most nodes here are small stand-ins written at test time (the project's VlaLifecycleNode
with no model, a plain rclpy node, one that crashes) wired by a graph.yaml in a temporary
folder: readiness, lifecycle driving, crash reporting, respawn and Ctrl-C. The real
sim_camera and pose_node come up through the package's own graph (the model nodes need
weights, so they are left to their own tests); ``--dry-run`` checks the real graph's
command lines.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml

SRC_DIR = Path(__file__).resolve().parents[1]
TIMEOUT = 30.0  # discovery takes 0.04 s or 2-3 s at random (docs/development.md); generous on a busy machine

LIFECYCLE_NODE = """
from vla_perception.core.parameters import ParamSpec
from vla_perception.nodes.lifecycle import VlaLifecycleNode, run_node


class Standin(VlaLifecycleNode):
    PARAMS = [ParamSpec("greeting", "", "printed on configure"),
              ParamSpec("level", 0, "from the params file"), ParamSpec("fail", False, "fail to configure")]

    def __init__(self):
        super().__init__("standin")

    def configure(self, params):
        if params.fail:
            raise RuntimeError("no weights for this stand-in")
        print(f"configured greeting={params.greeting} level={params.level}", flush=True)


run_node(Standin)
"""
PLAIN_NODE = """
import rclpy
from rclpy.executors import ExternalShutdownException

rclpy.init()
node = rclpy.create_node("plain")
try:
    rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
finally:
    rclpy.try_shutdown()
"""
CRASHING_NODE = """
import sys, time
print("loading something", flush=True)
time.sleep(0.3)
print("boom: cannot go on", flush=True)
sys.exit(3)
"""


@pytest.fixture
def standins(tmp_path):
    """Write a graph.yaml over the stand-in nodes next to their modules; return that folder."""
    for module, source in [("standin_lifecycle", LIFECYCLE_NODE), ("standin_plain", PLAIN_NODE),
                           ("standin_crash", CRASHING_NODE)]:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    (tmp_path / "life.yaml").write_text(yaml.safe_dump({"life": {"ros__parameters": {"level": 7}}}))
    graph = {
        "arguments": {"greeting": {"default": "hello"}, "namespace": {"default": ""},
                      "nodes": {"default": ""}, "params_file": {"default": ""},
                      "activation": {"default": "autostart", "choices": ["autostart", "events", "manual"]},
                      "respawn": {"default": "false"}, "respawn_delay": {"default": "1.0"}},
        "nodes": {
            "life": {"executable": "life", "module": "standin_lifecycle", "lifecycle": True,
                     "params_files": ["life.yaml"], "parameters": {"greeting": "$(arg greeting)"}},
            "plain": {"executable": "plain", "module": "standin_plain", "lifecycle": False},
            "crasher": {"executable": "crasher", "module": "standin_crash", "lifecycle": False},
            "broken": {"executable": "broken", "module": "standin_lifecycle", "lifecycle": True,
                       "parameters": {"fail": True}},
        },
        "bringups": {"pair": {"nodes": ["life", "plain"]},
                     "with_crash": {"include": ["pair"], "nodes": ["crasher", "broken"]}},
    }
    (tmp_path / "graph.yaml").write_text(yaml.safe_dump(graph))
    return tmp_path


class Up:
    """``vla-perception up`` as a child process whose output lines are collected as they come."""

    def __init__(self, *args: str, pythonpath: Path):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC_DIR), str(pythonpath)]),
               "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "vla_perception.cli.main", "up", *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(iter(self.process.stdout.readline, "")),
                         daemon=True).start()

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text())
            if match:
                return match
            if self.process.poll() is not None:
                time.sleep(0.2)  # the last lines
                match = re.search(pattern, self.text())
                if match:
                    return match
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in up's output:\n{self.text()}")

    def child_pids(self) -> dict[str, int]:
        return {name: int(pid) for name, pid in re.findall(r"\[up\] (\w+) started, pid (\d+)", self.text())}

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(TIMEOUT)


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "zombie" not in next(line for line in status.splitlines() if line.startswith("State:"))


@pytest.fixture
def run_up():
    started: list[Up] = []

    def start(*args, pythonpath):
        started.append(Up(*args, pythonpath=pythonpath))
        return started[-1]

    yield start
    for up in started:  # a failed test must not leave up or its nodes running
        if up.process.poll() is None:
            up.process.kill()
            up.process.wait()
        for pid in up.child_pids().values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_up_drives_lifecycle_reports_ready_nodes_and_ctrl_c_stops_them_all(standins, run_up):
    up = run_up("pair", "--graph", str(standins / "graph.yaml"), "--namespace", "ns1", "--arg", "greeting=hi",
                "--activation", "events", "--stop-timeout", "5", pythonpath=standins)
    up.wait_for(r"\[up\] all 2 nodes ready")
    text = up.text()
    assert re.search(r"\[up\] life ready: active", text) and re.search(r"\[up\] plain ready: running", text)
    assert text.index("life: unconfigured -> configure") < text.index("life: inactive -> activate")
    # graph parameter, argument override and the params file re-keyed for /ns1/life all arrived
    assert "[life] configured greeting=hi level=7" in text
    pids = up.child_pids()
    assert set(pids) == {"life", "plain"} and all(alive(pid) for pid in pids.values())
    assert up.stop() == 0
    assert not any(alive(pid) for pid in pids.values())


def test_real_sim_camera_and_pose_node_come_up_wired_to_the_camera_topics(run_up, tmp_path):
    from ros_harness import RosClient
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    up = run_up("sim_demo", "--nodes", "sim_camera,pose_node", "--namespace", "ns1", pythonpath=tmp_path)
    with RosClient("up_test_client") as client:
        frames = client.collect(Image, "/camera/color/image_raw", qos_profile_sensor_data)
        up.wait_for(r"\[up\] all 2 nodes ready", timeout=60.0)
        assert re.search(r"\[up\] pose_node ready: active", up.text())

        def subscribers(topic):
            return {(info.node_namespace, info.node_name)
                    for info in client.node.get_subscriptions_info_by_topic(topic)}

        for topic in ["/camera/depth/image_raw", "/camera/color/camera_info",
                      "/ns1/detector_node/detections"]:
            deadline = time.monotonic() + TIMEOUT
            while ("/ns1", "pose_node") not in subscribers(topic) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert ("/ns1", "pose_node") in subscribers(topic), topic
        deadline = time.monotonic() + TIMEOUT
        while not frames and time.monotonic() < deadline:
            time.sleep(0.1)
        assert frames and frames[0].width > 0, "no frame from /ns1/sim_camera on /camera/color/image_raw"
    pids = up.child_pids()
    assert up.stop() == 0
    assert not any(alive(pid) for pid in pids.values())


def test_a_crashing_node_is_reported_and_up_exits_nonzero(standins, run_up):
    up = run_up("with_crash", "--graph", str(standins / "graph.yaml"), "--nodes", "plain,crasher",
                pythonpath=standins)
    up.wait_for(r"crasher \(pid \d+\) died: exit code 3")
    assert up.process.wait(TIMEOUT) == 1
    assert "| boom: cannot go on" in up.text()
    assert not any(alive(pid) for pid in up.child_pids().values())


def test_respawn_restarts_a_crashed_node_and_a_failed_configure_is_reported(standins, run_up):
    up = run_up("with_crash", "--graph", str(standins / "graph.yaml"), "--nodes", "crasher,broken",
                "--respawn", "--respawn-delay", "0.2", pythonpath=standins)
    up.wait_for(r"broken: still unconfigured although autostart is on: its configure failed")
    assert "no weights for this stand-in" in up.text()
    up.wait_for(r"crasher \(pid \d+\) died: exit code 3[^\n]*\n(.*\n)*  respawning")
    up.wait_for(r"crasher restarted \(start 2\)")
    assert up.process.poll() is None
    assert up.stop() == 0


def test_dry_run_prints_the_real_graphs_commands(run_up, tmp_path):
    up = run_up("grasp", "--dry-run", "--nodes", "detector_node,grasp_orchestrator",
                "--profile", "tiny", "--namespace", "r2", "--planner", "embedded", pythonpath=tmp_path)
    assert up.process.wait(TIMEOUT) == 0, up.text()
    up.wait_for(r"grasp_orchestrator")
    detector, orchestrator = [line for line in up.lines if line.strip() and not line.startswith("#")]
    kept = Path(up.wait_for(r"# the parameter files these commands name are kept in (\S+)").group(1))
    kept_file = yaml.safe_load((kept / "r2__detector_node_0.yaml").read_text())
    shutil.rmtree(kept)
    assert kept_file["/r2/detector_node"]["ros__parameters"]["stream"] is True  # from detector_node.yaml
    assert " -m vla_perception.nodes.detector_node --ros-args -r __node:=detector_node -r __ns:=/r2 " \
        in detector
    assert "-p profile:=tiny" in detector and "-r image:=/camera/color/image_raw" in detector
    assert "-p autostart:=true" in detector
    assert "-p planner:=embedded" in orchestrator
    assert "-r image:=/camera/color/image_raw" in orchestrator  # the camera its snapshots come from


def test_unknown_nodes_are_refused_with_the_valid_names(run_up, tmp_path):
    up = run_up("perception", "--dry-run", "--nodes", "sim_camera", pythonpath=tmp_path)
    assert up.process.wait(TIMEOUT) == 2
    up.wait_for("its nodes: clip_node, detector_node, vlm_node, pose_node")
