"""Grasp planning backends behind one interface: ``make_planner(name).plan_for(target, obstacles)``.

Backends: ``embedded`` (roboplan, always available here), ``poses_only`` (grasp candidates, no
motion), ``moveit`` (moveit_py with a robot's MoveIt configuration), ``auto``: moveit when moveit_py
imports AND a MoveIt configuration was passed to this process (see moveit_config.py) AND MoveItPy
starts; otherwise embedded, with the reason logged. An explicit ``moveit`` that cannot start raises
PlannerUnavailable naming what is missing.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from vla_perception.core.planning.base import (
    PANDA_ARM_JOINTS,
    PANDA_READY,
    GraspPlanner,
    PlannerUnavailable,
    PlanningFailure,
    PlanResult,
    Trajectory,
)
from vla_perception.core.planning.moveit_config import MoveItConfig

PLANNERS = ("auto", "embedded", "poses_only", "moveit")

__all__ = [
    "PANDA_ARM_JOINTS",
    "PANDA_READY",
    "PLANNERS",
    "GraspPlanner",
    "PlannerChoice",
    "PlannerUnavailable",
    "PlanningFailure",
    "PlanResult",
    "Trajectory",
    "choose_planner",
    "make_planner",
    "moveit_available",
]


def moveit_available() -> bool:
    try:
        import moveit.planning  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class PlannerChoice:
    name: str  # embedded, poses_only or moveit
    reason: str  # logged with the choice


def choose_planner(requested: str, moveit_importable: bool, config_problem: Optional[str]) -> PlannerChoice:
    """Resolve ``auto``; an explicit name is kept (make_planner says when it cannot start)."""
    if requested != "auto":
        return PlannerChoice(requested, "requested")
    if not moveit_importable:
        return PlannerChoice("embedded", "auto: moveit_py (module moveit.planning) is not importable")
    if config_problem:
        return PlannerChoice("embedded", f"auto: moveit_py imports but {config_problem}")
    return PlannerChoice("moveit", "auto: moveit_py imports and a MoveIt configuration was passed")


def _moveit_unavailable(reason: str) -> PlannerUnavailable:
    return PlannerUnavailable(f"planner 'moveit' cannot start: {reason}; "
                              "or use planner 'embedded' or 'poses_only'")


def make_planner(name: str, *, argv: Optional[Sequence[str]] = None, namespace: str = "",
                 log: Callable[[str], None] = logging.getLogger(__name__).info, **params) -> GraspPlanner:
    """Build the named backend (``params`` go to its constructor); logs one line: which one, and why.

    ``argv``: the command line moveit_py reads its ``--params-file`` MoveIt configuration from
    (default: this process's); ``namespace``: the MoveItPy node's namespace.
    """
    if name not in PLANNERS:
        raise ValueError(f"unknown planner '{name}': choose one of {', '.join(PLANNERS)}")
    config = None
    config_problem = None
    importable = name in ("auto", "moveit") and moveit_available()
    if importable:
        config = MoveItConfig.from_command_line(sys.argv if argv is None else argv, namespace)
        config_problem = config.problem()
    choice = choose_planner(name, importable, config_problem)
    if choice.name == "moveit":
        if not importable:
            raise _moveit_unavailable("moveit_py (module moveit.planning) is not importable here: source a "
                                      "ROS 2 install with MoveIt")
        if config_problem:
            raise _moveit_unavailable(config_problem)
        from vla_perception.core.planning.moveit import MoveItPlanner

        try:
            planner = MoveItPlanner(config=config, namespace=namespace, log=log, **params)
        except PlannerUnavailable as error:
            if name == "moveit":
                raise _moveit_unavailable(str(error)) from None
            choice = PlannerChoice("embedded", f"auto: {error}")
        else:
            log(f"planner: moveit ({choice.reason})")
            return planner
    if choice.name == "embedded":
        from vla_perception.core.planning.embedded import EmbeddedPlanner

        planner = EmbeddedPlanner(**params)
    else:
        from vla_perception.core.planning.poses_only import PosesOnlyPlanner

        planner = PosesOnlyPlanner(**params)
    log(f"planner: {planner.name} ({choice.reason})")
    return planner
