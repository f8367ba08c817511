"""Embedded planner (real roboplan on pybullet_data's Panda): reach, refuse, avoid; re-checked independently.

The re-check builds its own roboplan scene (own table and wall boxes) and interpolates every
trajectory segment at 2 mm steps, five times finer than the planner's own checks.
"""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

pytest.importorskip("roboplan")
pytest.importorskip("pybullet_data")

from roboplan.core import Box, hasCollisionsAlongPath  # noqa: E402

from vla_perception.core.planning import PANDA_READY, make_planner  # noqa: E402
from vla_perception.core.planning.embedded import load_panda_scene  # noqa: E402
from vla_perception.core.types import Object3D  # noqa: E402


def _box(position, size, label="box", yaw=0.0):
    return Object3D(
        label,
        0.9,
        np.array(position, float),
        Rotation.from_euler("z", yaw).as_quat(),
        np.array(size, float),
    )


@pytest.fixture(scope="module")
def planner():
    return make_planner("embedded")


def _checker(obstacles):
    """Build an independent scene: the robot, a table top at z=0 in front of it, the obstacles."""
    scene = load_panda_scene()
    table = np.eye(4)
    table[:3, 3] = [0.675, 0.0, -0.025]
    scene.addBoxGeometry("check_table", "universe", Box(1.05, 1.6, 0.05), table, np.ones(4))
    for index, obj in enumerate(obstacles):
        pose = np.eye(4)
        pose[:3, :3] = Rotation.from_quat(obj.orientation).as_matrix()
        pose[:3, 3] = obj.position
        scene.addBoxGeometry(f"check_{index}", "universe", Box(*obj.size), pose, np.ones(4))
        scene.setCollisions(
            "check_table", f"check_{index}", False
        )  # only the robot is checked, not the props
    return scene


def _collides(scene, positions, finger):
    def full(q):
        return np.concatenate([q, [finger]])

    return any(
        hasCollisionsAlongPath(scene, full(a), full(b), 0.002)
        for a, b in zip(positions[:-1], positions[1:])
    )


def _tcp(scene, q):
    return np.asarray(scene.forwardKinematics(np.concatenate([q, [0.0]]), "panda_grasptarget"))


def test_plans_to_a_reachable_cube_and_ends_on_the_grasp_pose(planner):
    result = planner.plan_for(_box((0.5, 0.1, 0.025), (0.04, 0.04, 0.05), "cube"))
    assert result.success, result.message
    grasp = result.chosen
    trajectory = result.trajectory
    assert trajectory.joint_names == [f"panda_joint{i}" for i in range(1, 8)]
    np.testing.assert_allclose(trajectory.positions[0], PANDA_READY, atol=1e-9)
    assert np.all(np.diff(trajectory.times) > 1e-6)
    assert np.all(np.diff(result.lift_trajectory.times) > 1e-6)  # executors reject repeated times
    scene = _checker([])
    final = _tcp(scene, trajectory.positions[-1])
    np.testing.assert_allclose(final[:3, 3], grasp.position, atol=2e-3)
    np.testing.assert_allclose(final[:3, :3], Rotation.from_quat(grasp.orientation).as_matrix(), atol=5e-3)
    lift_end = _tcp(scene, result.lift_trajectory.positions[-1])
    np.testing.assert_allclose(lift_end[:3, 3], grasp.lift, atol=2e-3)
    np.testing.assert_allclose(result.lift_trajectory.positions[0], trajectory.positions[-1], atol=1e-9)
    assert not _collides(scene, trajectory.positions, grasp.width / 2)


def test_approach_is_a_straight_line_down_to_the_grasp(planner):
    result = planner.plan_for(_box((0.45, -0.15, 0.025), (0.03, 0.05, 0.05), "cube", yaw=0.4))
    assert result.success, result.message
    scene, grasp = _checker([]), result.chosen
    tcps = np.array([_tcp(scene, q)[:3, 3] for q in result.trajectory.positions])
    near = tcps[
        np.linalg.norm(tcps - grasp.position, axis=1) < 0.095
    ]  # the last 9.5 cm: inside the approach
    offsets = near[:, :2] - grasp.position[:2]
    assert len(near) >= 3 and np.max(np.abs(offsets)) < 5e-3
    joint_steps = np.abs(np.diff(result.trajectory.positions, axis=0))
    assert np.max(joint_steps) < 0.3  # no jump between arm configurations


def test_refuses_an_out_of_reach_object_naming_reach(planner):
    result = planner.plan_for(_box((0.95, 0.0, 0.025), (0.04, 0.04, 0.05)))
    assert not result.success and "reach" in result.message and result.trajectory.empty


def test_refuses_a_pose_inside_the_robot_naming_ik(planner):
    result = planner.plan_for(_box((0.05, 0.05, 0.3), (0.04, 0.04, 0.05)))
    assert not result.success and "IK" in result.message and result.chosen_index == -1


def test_refuses_a_target_under_a_shelf_that_blocks_every_approach(planner):
    shelf = _box((0.5, 0.0, 0.12), (0.3, 0.3, 0.02), "shelf")
    result = planner.plan_for(_box((0.5, 0.0, 0.025), (0.04, 0.04, 0.05)), [shelf])
    assert not result.success and "candidate 0" in result.message


def test_plans_around_a_wall_in_the_way(planner):
    target = _box((0.5, -0.25, 0.025), (0.04, 0.04, 0.05), "cube")
    wall = _box((0.5, -0.1, 0.15), (0.4, 0.02, 0.3), "wall")  # between the ready pose (y=0) and the cube
    free = planner.plan_for(target)
    assert free.success, free.message
    assert _collides(
        _checker([wall]), free.trajectory.positions, free.chosen.width / 2
    )  # the wall is in the way
    around = planner.plan_for(target, [wall])
    assert around.success, around.message
    assert not _collides(_checker([wall]), around.trajectory.positions, around.chosen.width / 2)
    robot = _checker([])
    tcps = np.array([_tcp(robot, q)[:3, 3] for q in around.trajectory.positions])
    crossing = tcps[np.argmin(np.abs(tcps[:, 1] + 0.1))]
    assert crossing[2] > 0.3  # the hand passes over the wall


def test_other_objects_are_obstacles_and_the_target_is_not(planner):
    target = _box((0.5, 0.0, 0.025), (0.04, 0.04, 0.05), "cube")
    neighbour = _box((0.5, 0.09, 0.06), (0.06, 0.06, 0.12), "bottle")
    result = planner.plan_for(target, [neighbour])
    assert result.success, result.message
    assert not _collides(_checker([neighbour]), result.trajectory.positions, result.chosen.width / 2)


def test_start_in_collision_is_refused(planner):
    around_the_hand = _box((0.31, 0.0, 0.55), (0.15, 0.25, 0.1), "box on the hand")  # the ready pose's hand
    result = planner.plan_for(_box((0.5, 0.2, 0.025), (0.04, 0.04, 0.05)), [around_the_hand])
    assert not result.success and "start configuration" in result.message
