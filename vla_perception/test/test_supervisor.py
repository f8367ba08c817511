"""Process supervision of ``vla-perception up`` (bringup/supervisor.py) with plain dummy children.

No ROS here: the children are small Python scripts that sleep, trap signals, spawn a
grandchild or die. Whether a process is gone is checked by PID from /proc, independently
of the supervisor's own helpers.
"""
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vla_perception.bringup.supervisor import ChildSpec, Supervisor, supervise

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(),
                                reason="needs Linux /proc to check PIDs")

SRC_DIR = str(Path(__file__).resolve().parents[1])


def alive(pid: int) -> bool:
    """Tell whether the process exists and is not a zombie (State line of /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "zombie" not in state


def eventually(condition, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached in {timeout} s")


def child(name: str, code: str, **kwargs) -> ChildSpec:
    return ChildSpec(name, [sys.executable, "-u", "-c", textwrap.dedent(code)], **kwargs)


SLEEPER = "import time\nprint('ready')\ntime.sleep(60)"


def trap(marker: Path, on: list[str], ignore: list[str] = (), exit_code: int = 0) -> str:
    """Write a child that records the signal it got in ``marker`` and exits, ignoring ``ignore``."""
    return f"""
        import signal, sys, time
        def handler(signum, frame):
            open({str(marker)!r}, "a").write(signal.Signals(signum).name + "\\n")
            sys.exit({exit_code})
        for name in {list(on)!r}:
            signal.signal(getattr(signal, name), handler)
        for name in {list(ignore)!r}:
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        print("ready")
        time.sleep(60)
    """


def wait_ready(supervisor, *names):
    for name in names:
        eventually(lambda: "ready" in supervisor.children[name].tail, what=f"{name} ready")


@pytest.fixture
def quiet():
    return dict(output=io.StringIO(), report=lambda line: None)


def test_stop_ends_children_and_what_they_started(quiet):
    spawner = """
        import subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print("grandchild", grandchild.pid)
        print("ready")
        time.sleep(60)
    """
    supervisor = Supervisor([child("spawner", spawner), child("sleeper", SLEEPER)], stop_timeout=5.0, **quiet)
    supervisor.start()
    wait_ready(supervisor, "spawner", "sleeper")
    grandchild = int(next(line.split()[1] for line in supervisor.children["spawner"].tail
                          if line.startswith("grandchild")))
    pids = [*supervisor.pids().values(), grandchild]
    assert all(alive(pid) for pid in pids)
    supervisor.stop()
    eventually(lambda: not any(alive(pid) for pid in pids), 5.0, "all processes gone")
    assert "[sleeper] ready" in quiet["output"].getvalue()  # output forwarded with the child's name


def test_ctrl_c_is_forwarded_as_sigint_first(tmp_path, quiet):
    marker = tmp_path / "signals"
    supervisor = Supervisor([child("polite", trap(marker, ["SIGINT", "SIGTERM"]))], **quiet)
    supervisor.start()
    wait_ready(supervisor, "polite")
    assert supervisor.stop() == {"polite": 0}
    assert marker.read_text().split() == ["SIGINT"]


def test_sigterm_after_a_timeout_when_sigint_is_ignored(tmp_path, quiet):
    marker = tmp_path / "signals"
    supervisor = Supervisor([child("deaf", trap(marker, ["SIGTERM"], ["SIGINT"], exit_code=3))],
                            stop_timeout=0.3, **quiet)
    supervisor.start()
    wait_ready(supervisor, "deaf")
    assert supervisor.stop() == {"deaf": 3}
    assert marker.read_text().split() == ["SIGTERM"]


def test_sigkill_when_sigint_and_sigterm_are_ignored(tmp_path, quiet):
    marker = tmp_path / "signals"
    supervisor = Supervisor([child("stubborn", trap(marker, [], ["SIGINT", "SIGTERM"]))],
                            stop_timeout=0.2, term_timeout=0.2, **quiet)
    supervisor.start()
    wait_ready(supervisor, "stubborn")
    pid = supervisor.pids()["stubborn"]
    assert supervisor.stop() == {"stubborn": -signal.SIGKILL}
    assert not alive(pid) and not marker.exists()


def test_a_dying_child_is_reported_with_its_exit_code_and_last_lines(quiet):
    dying = "import sys\nprint('loading model')\nprint('fatal: no weights', file=sys.stderr)\nsys.exit(4)"
    supervisor = Supervisor([child("dying", dying), child("sleeper", SLEEPER)], **quiet)
    supervisor.start()
    exits = []
    eventually(lambda: exits.extend(supervisor.poll()) or exits, what="exit reported")
    (exited,) = exits
    assert (exited.name, exited.returncode, exited.respawning) == ("dying", 4, False)
    assert exited.last_lines == ["loading model", "fatal: no weights"]
    text = exited.describe()
    assert "dying" in text and "exit code 4" in text and "fatal: no weights" in text
    assert supervisor.running() == ["sleeper"]
    supervisor.stop()


def test_supervise_stops_the_others_and_fails_when_a_child_dies(quiet):
    reports = []
    supervisor = Supervisor([child("sleeper", SLEEPER), child("crasher", "import time, os\ntime.sleep(0.3)\n"
                                                                        "os.abort()")],
                            output=io.StringIO(), report=reports.append)
    assert supervise(supervisor, interval=0.02) == 1
    assert not alive(supervisor.pids()["sleeper"])
    assert any("crasher" in line and "killed by SIGABRT" in line for line in reports)


def test_respawn_starts_a_dead_child_again(quiet):
    supervisor = Supervisor([child("flaky", "import sys\nprint('up')\nsys.exit(5)", respawn=True,
                                   respawn_delay=0.05)], **quiet)
    supervisor.start()
    first_pid = supervisor.pids()["flaky"]
    exits = []
    eventually(lambda: exits.extend(supervisor.poll()) or len(exits) >= 2, what="two exits")
    assert all(exited.returncode == 5 and exited.respawning for exited in exits)
    assert supervisor.children["flaky"].starts >= 2 and supervisor.pids()["flaky"] != first_pid
    supervisor.stop()


def run_supervisor_script(tmp_path, body: str) -> subprocess.Popen:
    """Start a separate Python process that runs a Supervisor over two sleepers and prints their PIDs."""
    script = tmp_path / "supervise.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from vla_perception.bringup.supervisor import ChildSpec, Supervisor, supervise
        sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
        specs = [ChildSpec(name, sleeper) for name in ("a", "b")]
        supervisor = Supervisor(specs, stop_timeout=2.0)
        def print_pids():
            if not getattr(print_pids, "done", False):
                print("pids", *supervisor.pids().values(), flush=True)
                print_pids.done = True
            time.sleep(0.05)
    """) + textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": SRC_DIR + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-u", str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture
def leftovers():
    """PIDs to SIGKILL after the test, so a failing test leaves no processes behind either."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def read_pids(process: subprocess.Popen, leftovers: list[int]) -> list[int]:
    line = process.stdout.readline()
    assert line.startswith("pids"), line + process.stderr.read()
    pids = [int(pid) for pid in line.split()[1:]]
    leftovers.extend(pids)
    assert len(pids) == 2 and all(alive(pid) for pid in pids)
    return pids


def test_sigint_to_the_supervisor_process_stops_everything_and_exits_zero(tmp_path, leftovers):
    process = run_supervisor_script(tmp_path, "sys.exit(supervise(supervisor, on_tick=print_pids))\n")
    pids = read_pids(process, leftovers)
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0
    assert not any(alive(pid) for pid in pids)
    assert "stopped: a (" in process.stderr.read()


def test_atexit_stops_children_when_the_program_just_ends(tmp_path, leftovers):
    process = run_supervisor_script(tmp_path, "supervisor.start()\nprint_pids()\nprint('bye')\n")
    pids = read_pids(process, leftovers)
    assert process.wait(10) == 0
    eventually(lambda: not any(alive(pid) for pid in pids), 5.0, "children gone after exit")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_children_die_with_a_killed_supervisor(tmp_path, leftovers):
    process = run_supervisor_script(tmp_path, "supervisor.start()\nprint_pids()\ntime.sleep(60)\n")
    pids = read_pids(process, leftovers)
    process.kill()  # no atexit, no cleanup: only the kernel's parent-death signal is left
    process.wait(10)
    eventually(lambda: not any(alive(pid) for pid in pids), 5.0, "children gone after SIGKILL")
