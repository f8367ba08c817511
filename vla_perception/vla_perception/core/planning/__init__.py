"""Grasp planning backends behind one interface: ``make_planner(name, **params).plan_for(target, obstacles)``.

Backends: ``embedded`` (roboplan, always available here), ``poses_only`` (grasp candidates, no
motion), ``moveit`` (moveit_py, only where it imports), ``auto`` (moveit when it imports, else embedded).
"""

from __future__ import annotations

from vla_perception.core.planning.base import (
    PANDA_ARM_JOINTS,
    PANDA_READY,
    GraspPlanner,
    PlanResult,
    Trajectory,
)

PLANNERS = ("auto", "embedded", "poses_only", "moveit")

__all__ = [
    "PANDA_ARM_JOINTS",
    "PANDA_READY",
    "PLANNERS",
    "GraspPlanner",
    "PlanResult",
    "Trajectory",
    "make_planner",
    "moveit_available",
]


def moveit_available() -> bool:
    try:
        import moveit.planning  # noqa: F401
    except ImportError:
        return False
    return True


def make_planner(name: str, **params) -> GraspPlanner:
    """Build the named backend; ``params`` go to its constructor."""
    if name == "auto":
        name = "moveit" if moveit_available() else "embedded"
    if name == "embedded":
        from vla_perception.core.planning.embedded import EmbeddedPlanner

        return EmbeddedPlanner(**params)
    if name == "poses_only":
        from vla_perception.core.planning.poses_only import PosesOnlyPlanner

        return PosesOnlyPlanner(**params)
    if name == "moveit":
        if not moveit_available():
            raise ValueError(
                "planner 'moveit' needs moveit_py (module moveit.planning), which is not importable "
                "here: source a ROS 2 install with MoveIt, or use planner 'embedded' or 'poses_only'"
            )
        from vla_perception.core.planning.moveit import MoveItPlanner

        return MoveItPlanner(**params)
    raise ValueError(f"unknown planner '{name}': choose one of {', '.join(PLANNERS)}")
