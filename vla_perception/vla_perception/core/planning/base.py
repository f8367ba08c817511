"""Planner interface and results shared by the planning backends (no ROS)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from vla_perception.core import robot
from vla_perception.core.grasp import GraspCandidate, GraspParams, generate_grasps
from vla_perception.core.types import Object3D, VlaInputError

PANDA_ARM_JOINTS = robot.ARM_JOINT_NAMES
PANDA_READY = robot.READY_JOINTS

# Caps on a trajectory handed to a simulator or a robot (a planned pick has tens of points, a few seconds).
MAX_TRAJECTORY_POINTS = 2000
MAX_TRAJECTORY_SECONDS = 120.0
MAX_JOINT_ABS = 2 * np.pi  # rad: no revolute joint of an arm we drive turns further


def check_trajectory(positions: np.ndarray, times: np.ndarray, what: str = "trajectory") -> None:
    """Raise VlaInputError unless the waypoints are finite, bounded and timed strictly forward from 0.

    A NaN joint once sent pybullet's IK into an endless loop; an hour-long time stamp would
    simulate for an hour: neither may reach a simulator or a robot.
    """
    positions, times = np.asarray(positions, float), np.asarray(times, float)
    if len(times) > MAX_TRAJECTORY_POINTS:
        raise VlaInputError(f"{what} has {len(times)} points; at most {MAX_TRAJECTORY_POINTS} are accepted")
    if not np.all(np.isfinite(positions)):
        raise VlaInputError(f"{what} has non-finite joint positions (NaN or inf)")
    if np.any(np.abs(positions) > MAX_JOINT_ABS):
        raise VlaInputError(f"{what} has joint positions beyond +-{MAX_JOINT_ABS:.2f} rad")
    if not np.all(np.isfinite(times)) or (len(times) and (times[0] < 0 or times[-1] > MAX_TRAJECTORY_SECONDS)):
        raise VlaInputError(f"{what} times must be finite and within [0, {MAX_TRAJECTORY_SECONDS:.0f}] s")
    if np.any(np.diff(times) <= 0):
        raise VlaInputError(f"{what} times must increase strictly")


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
    # what a backend that executes its own plans needs for that (MoveIt: its trajectory segments)
    backend_plan: Any = field(default=None, repr=False, compare=False)

    @property
    def chosen(self) -> Optional[GraspCandidate]:
        return self.candidates[self.chosen_index] if self.chosen_index >= 0 else None


class PlanningFailure(Exception):
    """One candidate (or the whole request) could not be planned; the message says which step failed."""


class PlannerUnavailable(ValueError):
    """The requested planner cannot start here; the message says what is missing."""


class GraspPlanner:
    """A backend. ``plan`` tries the ranked candidates in order and returns the first that works.

    The candidate loop lives here only; a backend supplies three steps: ``_begin`` (set up its
    scene for this request; a PlanningFailure refuses the whole request), ``_plan_candidate``
    (approach and lift trajectories, or a PlanningFailure naming the step that failed) and
    ``_end`` (undo what ``_begin`` set up that must not outlive the request; it runs even when
    ``_begin`` failed half-way, so a backend keeps what it must undo on itself).
    """

    name = "base"
    executes = False  # True: the backend executes its own plans (``execute``), e.g. MoveIt on a robot

    def __init__(self, grasp_params: GraspParams = GraspParams()):
        self.grasp_params = grasp_params

    def _begin(self, obstacles: Sequence[Object3D], start_joints, target: Optional[Object3D]):
        return None

    def _plan_candidate(self, candidate: GraspCandidate, context) -> tuple[Trajectory, Trajectory, Any]:
        """(start -> pre-grasp -> grasp, grasp -> lift, backend_plan or None)."""
        raise NotImplementedError

    def _end(self) -> None:
        pass

    def plan(
        self,
        candidates: Sequence[GraspCandidate],
        obstacles: Sequence[Object3D] = (),
        start_joints: Optional[Sequence[float]] = None,
        target: Optional[Object3D] = None,
    ) -> PlanResult:
        started = time.monotonic()
        failures: list[str] = []

        def result(success: bool, message: str, index: int = -1, planned=(None, None, None)) -> PlanResult:
            approach, lift, backend_plan = planned
            return PlanResult(success, message, self.name, list(candidates), index,
                              approach or Trajectory(), lift or Trajectory(),
                              time.monotonic() - started, failures, backend_plan)

        try:
            try:
                context = self._begin(obstacles, start_joints, target)
            except PlanningFailure as failure:
                return result(False, str(failure))
            for index, candidate in enumerate(candidates):
                try:
                    planned = self._plan_candidate(candidate, context)
                except PlanningFailure as failure:
                    failures.append(f"candidate {index} ({candidate.kind}): {failure}")
                    continue
                return result(True, f"planned candidate {index} ({candidate.kind})", index, planned)
        finally:
            self._end()
        return result(False, "no candidate could be planned: " + "; ".join(failures) if failures
                      else "no grasp candidates")

    def execute(self, plan: PlanResult) -> str:
        """Run ``plan`` on the robot (backends with ``executes``); returns what happened, raises on failure."""
        raise NotImplementedError(f"the {self.name} planner does not execute its plans")

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
        result = self.plan(candidates, obstacles, start_joints, target)
        result.failures = rejected + result.failures
        return result
