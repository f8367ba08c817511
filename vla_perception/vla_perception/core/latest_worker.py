"""One worker thread that always processes the most recent item and drops older ones.

A camera publishes faster than a model infers. Queueing frames makes results ever
staler; this keeps at most one pending item, so a result is never older than about one
inference time plus one frame interval, however fast items arrive.
"""
from __future__ import annotations

import threading
from typing import Any, Callable


class LatestOnlyWorker:
    """Run ``process(item)`` on a background thread for the newest submitted item only."""

    def __init__(self, process: Callable[[Any], None], name: str = "latest-only-worker",
                 on_error: Callable[[BaseException], None] | None = None):
        self._process = process
        self._on_error = on_error
        self._condition = threading.Condition()
        self._pending: Any = None
        self._has_pending = False
        self._running = True
        self.processed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: Any) -> None:
        """Make ``item`` the next one processed; an item still waiting is dropped."""
        with self._condition:
            if self._has_pending:
                self.dropped += 1
            self._pending, self._has_pending = item, True
            self._condition.notify()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while self._running and not self._has_pending:
                    self._condition.wait()
                if not self._running:
                    return
                item, self._pending, self._has_pending = self._pending, None, False
            try:
                self._process(item)
            except Exception as error:  # a bad frame must not kill the worker
                if self._on_error is not None:
                    self._on_error(error)
            self.processed += 1

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the item in progress (if any); pending items are dropped."""
        with self._condition:
            self._running = False
            self._condition.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
