"""Robot and simulator conventions, written once: the Franka Panda's frames, joints, ready pose, the camera.

The simulator (sim/world.py), the planners and the grasp orchestrator's defaults read them here.

Frames follow REP-103/105: the robot base frame ``panda_link0`` is the world of the simulator (z up, x
forward, metres); the camera's pose is its optical frame (x right, y down, z forward) in that frame.
"""
from __future__ import annotations

from vla_perception.core.geometry import look_at_rotation

BASE_FRAME = "panda_link0"
ARM_JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))
READY_JOINTS = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)  # Franka's "ready" pose (MoveIt's panda config)

SIM_CAMERA_FRAME = "sim_camera_color_optical_frame"
SIM_CAMERA_EYE = (1.35, 0.45, 0.65)  # where the simulated camera stands (base frame, m)
SIM_CAMERA_TARGET = (0.52, 0.0, 0.0)  # the point it looks at
SIM_CAMERA_UP = (0.0, 0.0, 1.0)


def camera_pose_looking_at(eye, target, up=SIM_CAMERA_UP) -> list[float]:
    """Pose (x y z qx qy qz qw) of the optical frame of a camera at ``eye`` looking at ``target`` (base frame)."""
    return [float(v) for v in (*eye, *look_at_rotation(eye, target, up).as_quat())]


SIM_CAMERA_POSE = camera_pose_looking_at(SIM_CAMERA_EYE, SIM_CAMERA_TARGET)
