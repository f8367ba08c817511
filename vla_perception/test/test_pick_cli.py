"""``vla-perception pick`` as a user runs it: its printed stages, result lines and exit codes.

Real sim_camera, detector_node (its simulation backend: the simulator's boxes with noise and
distractors, not a model), clip_node (tiny random weights: plumbing only), pose_node and
grasp_orchestrator processes; the CLI runs as its own process. A second orchestrator reaches the
detector through a test-side stand-in that answers 3 s late, only to keep a pick inside a stage
long enough to press Ctrl-C or hit --timeout.
The action's own feedback/cancel/timeout semantics are tested in test_orchestrator_e2e.py.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ros_harness import NodeProcess, RosClient, ros_env, write_params

from vla_perception import names

SRC_DIR = Path(__file__).resolve().parents[1]
FEEDBACK_LINE = re.compile(r"^\[\s*(?P<elapsed>\d+\.\d+) s\] (?P<stage>\S+)")
SLOW_SECONDS = 3.0


def cli_env() -> dict:
    return ros_env(PYTHONPATH=os.pathsep.join([str(SRC_DIR), os.environ.get("PYTHONPATH", "")]))


def pick(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vla_perception.cli", "pick", *args], capture_output=True,
                          text=True, env=cli_env(), timeout=timeout)


def orchestrator(name: str, directory: str, **params) -> NodeProcess:
    base = {"planner": "embedded", "stage_timeout": 20.0}
    path = write_params(name, {**base, **params}, directory)
    return NodeProcess("vla_perception.nodes.grasp_orchestrator",
                       ["-r", f"__node:={name}", "--params-file", path], name=name)


@pytest.fixture(scope="module")
def graph(tmp_path_factory, tiny_models_dir):
    from rclpy.callback_groups import ReentrantCallbackGroup
    from test_orchestrator_e2e import lifecycle_node, wait_until_the_graph_answers
    from vla_perception_interfaces.srv import Detect

    directory = str(tmp_path_factory.mktemp("params"))
    sim_params = write_params("sim_camera", {"rate": 2.0}, directory)
    pose_params = write_params("pose_node", {"autostart": True}, directory)
    processes = [
        NodeProcess("vla_perception.nodes.sim_camera", ["--params-file", sim_params]),
        lifecycle_node("detector_node", directory, tiny_models_dir, backend="sim"),
        lifecycle_node("clip_node", directory, tiny_models_dir, profile="tiny"),
        NodeProcess("vla_perception.nodes.pose_node", ["--params-file", pose_params]),
        orchestrator("grasp_orchestrator", directory),
        orchestrator("orch_slow", directory, detector_service="/slow/detect"),
    ]
    client = RosClient("pick_cli_test")
    real_detect = client.node.create_client(Detect, names.DETECT.absolute)

    def slow(request, response):  # the detector's answer, SLOW_SECONDS late
        time.sleep(SLOW_SECONDS)
        done = threading.Event()
        future = real_detect.call_async(request)
        future.add_done_callback(lambda _: done.set())
        done.wait(10.0)
        return future.result() or response

    client.node.create_service(Detect, "/slow/detect", slow, callback_group=ReentrantCallbackGroup())
    try:
        wait_until_the_graph_answers(client)
        yield client
    finally:
        client.close()
        for process in reversed(processes):
            process.stop()


def stages(stdout: str) -> list[tuple[str, float]]:
    return [(m["stage"], float(m["elapsed"])) for m in map(FEEDBACK_LINE.match, stdout.splitlines()) if m]


def test_a_failing_pick_names_its_stage_and_exits_1(graph):
    run = pick("pick up the purple giraffe")
    assert run.returncode == 1, run.stdout + run.stderr
    assert [stage for stage, _ in stages(run.stdout)] == ["snapshot", "parsing", "detecting"]
    expected = "failed at detecting (aborted): detecting: no 'purple giraffe' above threshold 0.35; best was "
    assert expected in run.stdout
    assert "trajectory:" not in run.stdout


def test_no_action_server_exits_2_and_says_what_to_start(graph):
    run = pick("pick up the red mug", "--action", "/nobody/pick", "--server-timeout", "1")
    assert run.returncode == 2
    assert "action server /nobody/pick is not available" in run.stderr
    assert "grasp_orchestrator" in run.stderr
    assert stages(run.stdout) == []


def start_pick(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vla_perception.cli", "pick", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=cli_env())


def read_until(process: subprocess.Popen, marker: str, timeout: float = 30.0) -> list[str]:
    """Lines the CLI printed up to and including the first one containing ``marker``."""
    lines: list[str] = []
    found = threading.Event()

    def reader():
        for line in process.stdout:
            lines.append(line)
            if marker in line:
                found.set()
                return

    threading.Thread(target=reader, daemon=True).start()
    if not found.wait(timeout):
        process.kill()
        raise AssertionError(f"no line with {marker!r} within {timeout} s: {''.join(lines)}")
    return lines


def test_ctrl_c_cancels_the_goal_and_exits_1(graph):
    process = start_pick("pick up the red mug", "--action", "/orch_slow/pick", "--execute")
    try:
        head = read_until(process, "detecting")
        process.send_signal(signal.SIGINT)  # while the orchestrator waits for the slow detection
        rest, _ = process.communicate(timeout=30.0)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(head) + rest
    assert process.returncode == 1, output
    assert "interrupted: goal cancel requested" in output
    assert re.search(r"^cancelled: .*cancelled", output, re.MULTILINE), output
    assert [stage for stage, _ in stages(output)] == ["snapshot", "parsing", "detecting"]


def test_the_goal_timeout_ends_a_pick_that_takes_too_long(graph):
    started = time.monotonic()
    baseline = pick("pick up the purple giraffe")  # the same CLI, a pick that ends at detecting by itself
    baseline_seconds = time.monotonic() - started
    started = time.monotonic()
    run = pick("pick up the red mug", "--action", "/orch_slow/pick", "--timeout", "0.2")
    assert baseline.returncode == 1 and run.returncode == 1, run.stdout + run.stderr
    # the orchestrator keeps the goal's timeout itself, before this CLI's own cancel would fire
    assert "the goal's timeout of 0.2 s passed" in run.stdout, run.stdout
    assert "planning" not in [stage for stage, _ in stages(run.stdout)]
    # the orchestrator ends the slow call at the goal's deadline: within the baseline's work, the slow
    # stage and the cancel's grace, not a whole pick
    from vla_perception.cli.pick import TIMEOUT_GRACE

    assert time.monotonic() - started < 2 * baseline_seconds + SLOW_SECONDS + TIMEOUT_GRACE


@pytest.fixture
def scene_restored_after(graph):
    """The test lifts an object: put the scene back afterwards, so test order does not matter."""
    from std_srvs.srv import Trigger

    yield graph
    assert graph.call(Trigger, names.RESET.absolute, Trigger.Request(), timeout=60.0).success


def test_execute_prints_every_stage_in_order_then_the_plan_and_exits_0(scene_restored_after):
    run = pick("pick up the red mug", "--execute")
    assert run.returncode == 0, run.stdout + run.stderr
    printed = stages(run.stdout)
    assert [stage for stage, _ in printed] == ["snapshot", "parsing", "detecting", "re-ranking", "localising",
                                               "localising", "planning", "executing"]
    elapsed = [seconds for _, seconds in printed]
    assert elapsed == sorted(elapsed)
    lines = run.stdout.splitlines()
    assert lines[0] == "pick: 'pick up the red mug' -> /grasp_orchestrator/pick (execute)"
    assert re.search(r"^succeeded: planned a grasp of 'red mug' .*executed: 'red_mug' lifted", run.stdout,
                     re.MULTILINE), run.stdout
    assert re.search(r"^  executed: 'red_mug' lifted \(\d+ mm\)$", run.stdout, re.MULTILINE), run.stdout
    assert re.search(r"^  snapshot: \d+\.\d{9} \(every stage used this frame\)$", run.stdout, re.MULTILINE)
    assert re.search(r"^  object: 'red mug' at \[[-\d., ]+\] m in panda_link0", run.stdout, re.MULTILINE)
    planner = re.search(r"^  planner: embedded, planning time (\d+\.\d+) s, (\d+) grasp candidate",
                        run.stdout, re.MULTILINE)
    assert planner and float(planner[1]) > 0 and int(planner[2]) >= 1, run.stdout
    trajectory = re.search(r"^  trajectory: (\d+) points to the grasp, (\d+) points to lift", run.stdout,
                           re.MULTILINE)
    assert trajectory and int(trajectory[1]) > 2 and int(trajectory[2]) > 2, run.stdout
