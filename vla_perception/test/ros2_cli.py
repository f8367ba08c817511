"""The real ``ros2`` command line as a robot user types it: ``ros2 launch`` in the background, verbs in front.

Needs ros2cli/launch_ros (a ROS 2 install, or ``scripts/install_ros2_tools.sh .venv`` from
../shared/ros2-tools); ``require_ros2_cli()`` skips a test module without them.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time

import pytest

from ros_harness import ros_env

INSTALL_HINT = ("install ROS 2 (ros2cli, launch_ros), or here: scripts/install_ros2_tools.sh .venv "
                "(from ../shared/ros2-tools beside the repository)")
# Verbs that would start a ros2 daemon unless told not to; the daemon outlives the test otherwise.
DAEMON_VERBS = {("param", "set"), ("param", "get"), ("param", "list"), ("lifecycle", "set"), ("lifecycle", "get"),
                ("lifecycle", "nodes"), ("node", "list"), ("service", "list"), ("topic", "list")}
LAUNCH_SIGTERM_TIMEOUT = 5.0  # launch's own default: after it, ros2 launch escalates SIGINT to SIGTERM


def require_ros2_cli(*modules: str) -> None:
    missing = [name for name in ("ros2cli", "launch_ros", *modules) if importlib.util.find_spec(name) is None]
    if missing or shutil.which("ros2") is None:
        pytest.skip(f"{', '.join(missing) or 'the ros2 command'} not installed: {INSTALL_HINT}",
                    allow_module_level=True)


def without_daemon(command: str) -> list[str]:
    """The command's words, with --no-daemon added for verbs that would otherwise start a daemon.

    Without a daemon the command discovers the graph itself, for ``--spin-time`` seconds (0.5 by default;
    discovery takes 0.04 s or 2-3 s at random, see docs/development.md).
    """
    words = shlex.split(command)
    return words + ["--no-daemon", "--spin-time", "2"] if tuple(words[1:3]) in DAEMON_VERBS else words


def ros2(command: str, timeout: float = 60.0, discovery: float = 30.0) -> str:
    """Run one ``ros2 ...`` command line; return what it printed (stdout + stderr). Fails the test on a timeout.

    A node not discovered yet ("Node not found") is retried for up to ``discovery`` seconds, as a user
    would: each run of the CLI discovers the graph anew, which on a busy machine can take longer
    than its spin time.
    """
    deadline = time.monotonic() + discovery
    while True:
        try:
            result = subprocess.run(without_daemon(command), env=ros_env(), capture_output=True, text=True,
                                    timeout=timeout)
        except subprocess.TimeoutExpired as error:
            pytest.fail(f"'{command}' did not finish in {timeout:.0f} s; it printed:\n{error.stdout}\n{error.stderr}")
        printed = result.stdout + result.stderr
        if "Node not found" not in printed or time.monotonic() > deadline:
            return printed


def stop_daemon() -> None:
    subprocess.run(["ros2", "daemon", "stop"], env=ros_env(), capture_output=True, timeout=30)


class Launch:
    """``ros2 launch ...`` in its own process group, its output read line by line with arrival times."""

    def __init__(self, command: str, **env: str):
        self.command = command
        self.lines: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")  # launch emulates a terminal: no colour codes in lines
        self.process = subprocess.Popen(shlex.split(command), env=ros_env(**env), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._changed.notify_all()

    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, pattern: str, timeout: float, count: int = 1) -> list[re.Match]:
        """Wait until ``count`` output lines match ``pattern``; fail with the output so far otherwise."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                matches = [m for m in (regex.search(line) for _, line in self.lines) if m]
                if len(matches) >= count:
                    return matches
                if time.monotonic() > deadline or self.process.poll() is not None:
                    pytest.fail(f"'{self.command}': {count} line(s) matching {pattern!r} not seen "
                                f"in {timeout:.0f} s; output:\n{self.output()[-6000:]}")
                self._changed.wait(0.2)

    def interrupt(self, whole_group: bool = False, timeout: float = 30.0) -> "Shutdown":
        """SIGINT to ros2 launch, which forwards it to every node; or, like a terminal's Ctrl-C, to the group.

        With ``whole_group`` each node gets SIGINT twice: from the "terminal" and from launch.
        """
        sent = time.monotonic()
        if whole_group:
            os.killpg(self.process.pid, signal.SIGINT)
        else:
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"ros2 launch still running {timeout:.0f} s after SIGINT:\n{self.output()[-6000:]}")
        self._reader.join(5.0)
        return Shutdown(sent, self.lines, self.process.returncode)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


class Shutdown:
    """What ros2 launch reported after the SIGINT: each node's exit and how long after the signal it came."""

    EXIT = re.compile(r"\[INFO\] \[(?P<process>[\w.-]+)\]: process has finished cleanly"
                      r"|\[ERROR\] \[(?P<died>[\w.-]+)\]: process has died \[pid \d+, exit code (?P<code>-?\d+)")

    def __init__(self, sent: float, lines: list[tuple[float, str]], returncode: int):
        self.returncode = returncode
        self.output = "\n".join(line for _, line in lines)
        self.exits: dict[str, tuple[float, int]] = {}  # process -> (seconds after SIGINT, exit code)
        for when, line in lines:
            match = self.EXIT.search(line)
            if match and when >= sent:
                name = match.group("process") or match.group("died")
                self.exits[name] = (when - sent, int(match.group("code") or 0))
        self.escalations = [line for _, line in lines if "SIGTERM" in line or "SIGKILL" in line]

    def summary(self) -> str:
        return ", ".join(f"{name} {seconds:.2f} s (exit {code})"
                         for name, (seconds, code) in sorted(self.exits.items()))
