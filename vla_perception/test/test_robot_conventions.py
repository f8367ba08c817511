"""The robot and camera conventions of core/robot.py hold in the real simulator (pybullet).

The grasp orchestrator's defaults are those conventions.
"""
import numpy as np
import pytest

from vla_perception.core import robot
from vla_perception.core.geometry import pose_matrix
from vla_perception.core.orchestration import PARAMS

pytest.importorskip("pybullet")
from vla_perception.sim.scene import TabletopScene  # noqa: E402

DEFAULTS = {spec.name: spec.default for spec in PARAMS}


@pytest.fixture(scope="module")
def scene():
    with TabletopScene(seed=3) as built:
        yield built


def test_the_orchestrators_default_camera_pose_maps_the_simulators_camera_frame_onto_its_world(scene):
    """Camera-frame truths land on their world poses through the orchestrator's default camera_pose.

    That is the transform every pick uses without TF.
    """
    camera_in_base = pose_matrix(DEFAULTS["camera_pose"][:3], DEFAULTS["camera_pose"][3:])
    truths = scene.ground_truth(scene.render())
    assert len(truths) >= 4
    for truth in truths:
        in_base = camera_in_base[:3, :3] @ truth.position_camera + camera_in_base[:3, 3]
        np.testing.assert_allclose(in_base, truth.position_world, atol=1e-6)


def test_the_simulator_starts_the_arm_in_the_ready_pose_the_planner_starts_from(scene):
    np.testing.assert_allclose(scene.joint_positions(), DEFAULTS["start_joints"], atol=1e-3)  # held by motors
    assert list(DEFAULTS["start_joints"]) == list(robot.READY_JOINTS)


def test_the_arm_joint_names_are_the_urdfs(scene):
    names = [scene.client.getJointInfo(scene.robot, j)[1].decode() for j in range(7)]
    assert tuple(names) == robot.ARM_JOINT_NAMES


def test_the_base_frame_is_the_urdfs_root_link(scene):
    assert scene.client.getBodyInfo(scene.robot)[0].decode() == robot.BASE_FRAME == DEFAULTS["base_frame"]
