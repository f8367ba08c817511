"""Approximate-time synchronizer for N streams, without ROS (message_filters-like policy).

Each input keeps at most ``queue_size`` (stamp_seconds, item) pairs. When an item
arrives, the synchronizer looks for one item per other input whose stamps all lie
within ``slop`` seconds of each other (all pairs), preferring the closest stamps.
A match is emitted (callbacks and return value) and removed, together with every
item older than the matched ones on each input: those can no longer be part of a
later set because streams arrive in time order. Items that exceed the queue size
are dropped oldest first. Memory is therefore bounded by ``N * queue_size`` items.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Optional


class ApproximateTimeSynchronizer:
    """Pairs N streams by stamp; use :meth:`add` from each stream's callback."""

    def __init__(self, num_inputs: int, queue_size: int = 10, slop: float = 0.05):
        if num_inputs < 1:
            raise ValueError("need at least one input")
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        if slop < 0:
            raise ValueError("slop must be >= 0")
        self.queue_size = int(queue_size)
        self.slop = float(slop)
        self.queues: list[list[tuple[float, Any]]] = [[] for _ in range(num_inputs)]
        self.callbacks: list[Callable[..., None]] = []
        self.dropped = 0
        self.matched = 0

    def register_callback(self, callback: Callable[..., None]) -> None:
        """Call ``callback(*items)`` (one item per input, input order) for every match."""
        self.callbacks.append(callback)

    def queue_lengths(self) -> list[int]:
        return [len(q) for q in self.queues]

    def add(self, index: int, stamp: float, item: Any) -> Optional[tuple]:
        """Add an item to input ``index``; return the matched tuple of items if this completed a set."""
        queue = self.queues[index]
        queue.append((float(stamp), item))
        queue.sort(key=lambda entry: entry[0])
        while len(queue) > self.queue_size:
            queue.pop(0)
            self.dropped += 1
        match = self._find_match(index, float(stamp))
        if match is None:
            return None
        items = tuple(self.queues[i][j][1] for i, j in enumerate(match))
        self._consume(match)
        self.matched += 1
        for callback in self.callbacks:
            callback(*items)
        return items

    def _find_match(self, index: int, stamp: float) -> Optional[list[int]]:
        """Per-input queue positions of the tightest set that includes the new item, or None."""
        candidates = []
        for i, queue in enumerate(self.queues):
            if i == index:
                near = [j for j, (s, _) in enumerate(queue) if s == stamp][:1]
            else:
                near = sorted((j for j, (s, _) in enumerate(queue) if abs(s - stamp) <= self.slop),
                              key=lambda j: abs(queue[j][0] - stamp))[:5]  # bounds the search cost
            if not near:
                return None
            candidates.append(near)
        best, best_spread = None, None
        for combo in itertools.product(*candidates):
            stamps = [self.queues[i][j][0] for i, j in enumerate(combo)]
            spread = max(stamps) - min(stamps)
            if spread <= self.slop and (best_spread is None or spread < best_spread):
                best, best_spread = list(combo), spread
        return best

    def _consume(self, match: list[int]) -> None:
        for queue, j in zip(self.queues, match):
            self.dropped += j  # everything older than the matched item can never match later
            del queue[: j + 1]
