"""Start, watch and stop a set of child processes, leaving none behind (ROS-free).

What ``vla-perception up`` uses to run the nodes of a bringup:

- each child runs in its own session (process group), so a terminal's Ctrl-C reaches only
  the supervisor, which forwards it: SIGINT to every group, then SIGTERM, then SIGKILL,
  each after a timeout; signalling the group also stops anything a child started;
- on Linux each child also gets SIGTERM from the kernel if the supervisor dies without
  cleaning up (PR_SET_PDEATHSIG), and an ``atexit`` hook stops the children on any
  normal interpreter exit;
- a reader thread per child prefixes its output lines with the child's name and keeps
  the last lines, so a child that dies is reported with its exit code and last words;
- with ``respawn`` a child that died is started again after ``respawn_delay``.

Children are started from the thread that calls :meth:`Supervisor.start` / :meth:`poll`
(the main thread in ``up``): PR_SET_PDEATHSIG fires when the *thread* that forked exits.
"""
from __future__ import annotations

import atexit
import collections
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, TextIO

PR_SET_PDEATHSIG = 1
TAIL_LINES = 20


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    env: Optional[dict[str, str]] = None
    respawn: bool = False
    respawn_delay: float = 2.0


@dataclass
class ChildExit:
    """A child that exited while it was supposed to run."""

    name: str
    pid: int
    returncode: int
    last_lines: list[str]
    respawning: bool

    def describe(self) -> str:
        how = (f"killed by {signal.Signals(-self.returncode).name}" if self.returncode < 0
               else f"exit code {self.returncode}")
        lines = [f"{self.name} (pid {self.pid}) died: {how}"]
        if self.last_lines:
            lines.append(f"  last {len(self.last_lines)} log lines of {self.name}:")
            lines += [f"  | {line}" for line in self.last_lines]
        else:
            lines.append(f"  {self.name} printed nothing")
        return "\n".join(lines)


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen
    tail: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))
    reader: Optional[threading.Thread] = None
    starts: int = 1
    restart_at: Optional[float] = None  # monotonic time of a pending respawn


# Loaded before any fork: the pre-exec hook must not load libraries in the forked child.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def exit_with_parent() -> None:
    """In the child, before exec: ask the kernel for SIGTERM when the supervisor dies (Linux only)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def proc_stat(pid: str) -> Optional[tuple[str, int]]:
    """(state, process group) of a /proc entry, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    return fields[0], int(fields[2])


def process_running(pid: int) -> bool:
    """Tell whether ``pid`` exists and is not a zombie (a zombie has stopped; it awaits reaping)."""
    stat = proc_stat(str(pid))
    return stat is not None and stat[0] != "Z"


def group_running(pgid: int) -> bool:
    """Tell whether a non-zombie process is left in process group ``pgid``.

    Zombies are ignored: a container's PID 1 may never reap orphaned grandchildren.
    """
    if not os.path.isdir("/proc"):
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(entry)
            if stat is not None and stat[1] == pgid and stat[0] != "Z":
                return True
    return False


class Supervisor:
    def __init__(self, specs: list[ChildSpec], output: Optional[TextIO] = None,
                 stop_timeout: float = 10.0, term_timeout: float = 5.0,
                 report: Optional[Callable[[str], None]] = None):
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique: {names}")
        self.specs = specs
        self.output = output if output is not None else sys.stdout
        self.stop_timeout = stop_timeout
        self.term_timeout = term_timeout
        self.report = report or (lambda line: print(line, file=sys.stderr, flush=True))
        self.children: dict[str, Child] = {}
        self._output_lock = threading.Lock()
        self._stopping = False
        atexit.register(self.stop)

    # ----- starting ------------------------------------------------------------------------
    def start(self) -> None:
        for spec in self.specs:
            self.children[spec.name] = self._spawn(spec)
            self.report(f"{spec.name} started, pid {self.children[spec.name].process.pid}")

    def _spawn(self, spec: ChildSpec, starts: int = 1) -> Child:
        process = subprocess.Popen(
            spec.argv, env=spec.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=exit_with_parent)
        child = Child(spec, process, starts=starts)
        child.reader = threading.Thread(target=self._forward_output, args=(child,), daemon=True,
                                        name=f"output-{spec.name}")
        child.reader.start()
        return child

    def _forward_output(self, child: Child) -> None:
        for raw in iter(child.process.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            child.tail.append(line)
            with self._output_lock:
                print(f"[{child.spec.name}] {line}", file=self.output, flush=True)
        child.process.stdout.close()

    # ----- watching ---------------------------------------------------------------------------
    def pids(self) -> dict[str, int]:
        return {name: child.process.pid for name, child in self.children.items()}

    def poll(self) -> list[ChildExit]:
        """Children that exited since the last poll; starts due respawns. Call it periodically."""
        exits = []
        now = time.monotonic()
        for name, child in list(self.children.items()):
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self.children[name] = self._spawn(child.spec, child.starts + 1)
                    self.report(f"{name} restarted (start {child.starts + 1}), "
                                f"pid {self.children[name].process.pid}")
                continue
            returncode = child.process.poll()
            if returncode is None or self._stopping:
                continue
            if child.reader is not None:
                child.reader.join(timeout=2.0)  # let the last lines arrive before reporting them
            self._signal_group(child, signal.SIGKILL)  # orphans the dead child left in its group
            exits.append(ChildExit(name, child.process.pid, returncode, list(child.tail), child.spec.respawn))
            if child.spec.respawn:
                child.restart_at = now + child.spec.respawn_delay
        return exits

    def running(self) -> list[str]:
        return [name for name, child in self.children.items() if child.process.poll() is None]

    # ----- stopping -----------------------------------------------------------------------------
    def stop(self) -> dict[str, int]:
        """SIGINT every child's process group, then SIGTERM, then SIGKILL; returns exit codes."""
        self._stopping = True
        for sig, timeout in ((signal.SIGINT, self.stop_timeout), (signal.SIGTERM, self.term_timeout),
                             (signal.SIGKILL, 5.0)):
            alive = [child for child in self.children.values() if self._group_alive(child)]
            if not alive:
                break
            for child in alive:
                self._signal_group(child, sig)
            self._wait(alive, timeout)
        for child in self.children.values():
            if child.reader is not None:
                child.reader.join(timeout=2.0)
        atexit.unregister(self.stop)
        return {name: child.process.returncode for name, child in self.children.items()}

    def _group_alive(self, child: Child) -> bool:
        # also after the child exited: has something it started stayed behind in its group?
        return child.process.poll() is None or group_running(child.process.pid)

    @staticmethod
    def _signal_group(child: Child, sig: signal.Signals) -> None:
        try:
            os.killpg(child.process.pid, sig)
        except ProcessLookupError:
            pass

    def _wait(self, children: list[Child], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(self._group_alive(child) for child in children):
            time.sleep(0.05)


def supervise(supervisor: Supervisor, on_tick: Optional[Callable[[], None]] = None,
              on_exit: Optional[Callable[[ChildExit], None]] = None, interval: float = 0.1) -> int:
    """Run until Ctrl-C or SIGTERM (exit 0 after a clean stop) or a child dies without respawn (exit 1).

    ``on_tick`` runs between polls (``up`` spins its readiness checks there); it may block
    for about ``interval``.
    """
    # Set explicitly: a shell starts background jobs with SIGINT ignored, and `kill -INT` must still stop us.
    previous = {sig: signal.signal(sig, _raise_keyboard_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        supervisor.start()
        while True:
            exits = supervisor.poll()
            for exited in exits:
                supervisor.report(exited.describe() + ("\n  respawning" if exited.respawning else ""))
                if on_exit is not None:
                    on_exit(exited)
            if any(not exited.respawning for exited in exits):
                status = 1
                break
            if on_tick is not None:
                on_tick()
            else:
                time.sleep(interval)
    except KeyboardInterrupt:
        supervisor.report("interrupted: stopping every node (SIGINT, then SIGTERM, then SIGKILL)")
    finally:
        codes = supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    supervisor.report("stopped: " + ", ".join(f"{name} ({code})" for name, code in codes.items()))
    return status


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
