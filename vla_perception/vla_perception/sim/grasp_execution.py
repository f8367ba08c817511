"""Execute a grasp plan in the tabletop: open, approach, close, lift, and check what rose."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from vla_perception.sim import world
from vla_perception.sim.scene import TabletopScene

LIFTED_MIN_HEIGHT = 0.05  # metres the object must rise to count as lifted
FINGER_CLEARANCE = 0.01  # open this much wider than the planned width before approaching


@dataclass
class ExecutionReport:
    lifted: bool
    lift_height: float  # how far the named (or highest-risen) object rose, metres
    object_name: str
    gripper_opening: float  # after closing: > 0 means something is between the fingers

    def __str__(self) -> str:
        verdict = "lifted" if self.lifted else "not lifted"
        return f"'{self.object_name}' {verdict} ({self.lift_height * 1000:.0f} mm)"


def execute_grasp(scene: TabletopScene, approach: tuple[np.ndarray, np.ndarray],
                  lift: Optional[tuple[np.ndarray, np.ndarray]], gripper_width: float,
                  object_name: str = "", lift_height: float = 0.15) -> ExecutionReport:
    """approach/lift: (K x 7 joint positions, K times from 0). ``lift`` None: rise ``lift_height`` straight up."""
    scene.open_gripper(min(gripper_width + FINGER_CLEARANCE, world.GRIPPER_MAX_OPENING))
    scene.execute_joint_trajectory(*approach)
    opening = scene.close_gripper()
    if lift is not None and len(lift[0]) >= 2:
        scene.execute_joint_trajectory(*lift)
    else:
        scene.lift(lift_height)
    name = object_name or _highest_risen(scene)
    lifted, height = scene.object_lifted(name, LIFTED_MIN_HEIGHT)
    return ExecutionReport(lifted, height, name, opening)


def _highest_risen(scene: TabletopScene) -> str:
    return max(scene.bodies, key=lambda name: scene.object_lifted(name)[1])
