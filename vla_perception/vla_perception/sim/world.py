"""World conventions of the simulated tabletop (robot and camera conventions: core/robot.py).

World frame == robot base frame ``panda_link0``: z up, x forward (away from the robot),
metres. The Franka Panda stands at the origin; the table top is the plane z = 0; objects
stand in the reach region below.
"""
from __future__ import annotations

from vla_perception.core.robot import (  # noqa: F401 - READY_JOINTS: the simulator starts the arm there
    BASE_FRAME,
    READY_JOINTS,
    SIM_CAMERA_EYE,
    SIM_CAMERA_FRAME,
    SIM_CAMERA_TARGET,
    SIM_CAMERA_UP,
)

WORLD_FRAME = BASE_FRAME
CAMERA_OPTICAL_FRAME = SIM_CAMERA_FRAME

ROBOT_URDF = "franka_panda/panda.urdf"
ROBOT_BASE_POSITION = (0.0, 0.0, 0.0)
ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (9, 10)
HAND_LINK = 8  # panda_hand
GRASP_TARGET_LINK = 11  # panda_grasptarget: 0.105 m along the hand's z axis, between the finger pads
ARM_MAX_FORCES = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
GRIPPER_MAX_OPENING = 0.08  # metres between the fingers
GRASPABLE_EXTENT = 0.065  # every object has at least one horizontal extent at most this

TABLE_TOP_Z = 0.0
TABLE_THICKNESS = 0.05
TABLE_X_RANGE = (-0.30, 1.30)
TABLE_Y_RANGE = (-0.80, 0.80)
FLOOR_Z = -0.75

REACH_X_RANGE = (0.35, 0.70)
REACH_Y_ABS = 0.30

IMAGE_WIDTH = 640
IMAGE_HEIGHT = 480
CAMERA_FOV_DEG = 58.0  # vertical field of view
CAMERA_NEAR = 0.05
CAMERA_FAR = 5.0
DEFAULT_CAMERA_EYE = SIM_CAMERA_EYE
DEFAULT_CAMERA_TARGET = SIM_CAMERA_TARGET
DEFAULT_CAMERA_UP = SIM_CAMERA_UP

SIM_TIMESTEP = 1.0 / 240.0
