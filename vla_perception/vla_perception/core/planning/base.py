"""Planner interface and results shared by the planning backends (no ROS)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from vla_perception.core.grasp import GraspCandidate, GraspParams, generate_grasps
from vla_perception.core.types import Object3D

PANDA_ARM_JOINTS = tuple(f"panda_joint{i}" for i in range(1, 8))
PANDA_READY = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)  # Franka's "ready" pose (MoveIt's panda config)


@dataclass
class Trajectory:
    """Joint trajectory: positions (N, J) at times (N,) seconds from its start."""

    joint_names: list[str] = field(default_factory=list)
    positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def empty(self) -> bool:
        return len(self.times) == 0


@dataclass
class PlanResult:
    success: bool
    message: str
    planner: str
    candidates: list[GraspCandidate] = field(default_factory=list)
    chosen_index: int = -1
    trajectory: Trajectory = field(default_factory=Trajectory)  # start -> pre-grasp -> grasp
    lift_trajectory: Trajectory = field(default_factory=Trajectory)  # grasp -> lift
    planning_time: float = 0.0
    failures: list[str] = field(default_factory=list)  # why each tried/dropped candidate failed

    @property
    def chosen(self) -> Optional[GraspCandidate]:
        return self.candidates[self.chosen_index] if self.chosen_index >= 0 else None


class GraspPlanner:
    """A backend: ``plan`` tries the ranked candidates in order and returns the first that works."""

    name = "base"

    def __init__(self, grasp_params: GraspParams = GraspParams()):
        self.grasp_params = grasp_params

    def plan(
        self,
        candidates: Sequence[GraspCandidate],
        obstacles: Sequence[Object3D] = (),
        start_joints: Optional[Sequence[float]] = None,
    ) -> PlanResult:
        raise NotImplementedError

    def plan_for(
        self,
        target: Object3D,
        obstacles: Sequence[Object3D] = (),
        start_joints: Optional[Sequence[float]] = None,
    ) -> PlanResult:
        """Generate grasps for ``target`` (robot base frame) and plan them; refusals name the reason."""
        started = time.monotonic()
        rejected: list[str] = []
        candidates = generate_grasps(target, self.grasp_params, rejected)
        if not candidates:
            return PlanResult(
                False,
                f"no feasible grasp of '{target.label}': " + "; ".join(rejected),
                self.name,
                failures=rejected,
                planning_time=time.monotonic() - started,
            )
        result = self.plan(candidates, obstacles, start_joints)
        result.failures = rejected + result.failures
        return result
