"""The ``poses_only`` backend: grasp candidates, no motion plan (for robots that plan elsewhere)."""

from __future__ import annotations

import time

from vla_perception.core.planning.base import GraspPlanner, PlanResult


class PosesOnlyPlanner(GraspPlanner):
    name = "poses_only"

    def plan(self, candidates, obstacles=(), start_joints=None, target=None) -> PlanResult:
        started = time.monotonic()
        if not candidates:
            return PlanResult(False, "no grasp candidates to return", self.name)
        return PlanResult(
            True,
            f"{len(candidates)} grasp candidate(s), not planned (poses_only)",
            self.name,
            candidates=list(candidates),
            chosen_index=0,
            planning_time=time.monotonic() - started,
        )
