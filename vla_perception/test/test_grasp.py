"""Grasp geometry: expected poses, widths and ranks worked out by hand in each test."""
import os

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_perception.core.grasp import (PANDA_MAX_OPENING, TCP_OFFSET, GraspParams, generate_grasps,
                                       hand_pose_from_tcp, object_in_base, pose_matrix)
from vla_perception.core.types import Object3D


def _box(position, size, yaw_deg=0.0):
    quaternion = Rotation.from_euler("z", yaw_deg, degrees=True).as_quat()
    return Object3D("box", 0.9, np.array(position, float), quaternion, np.array(size, float))


def _rotation(candidate):
    return Rotation.from_quat(candidate.orientation).as_matrix()


def test_small_yawed_box_top_down_across_its_narrow_axis():
    # narrow axis n = (cos30, sin30, 0); fingers along -n keeps the TCP x axis forward: x = (sin30, -cos30, 0)
    grasps = generate_grasps(_box((0.5, 0.0, 0.025), (0.03, 0.06, 0.05), yaw_deg=30))
    assert [g.kind for g in grasps] == ["top_down", "top_down_wide"]  # side: TCP >= 0.045, top 0.05
    best = grasps[0]
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    expected = np.array([[s, -c, 0], [-c, -s, 0], [0, 0, -1]]).T  # columns x, y, z
    np.testing.assert_allclose(_rotation(best), expected, atol=1e-9)
    np.testing.assert_allclose(best.position, [0.5, 0.0, 0.025], atol=1e-9)
    np.testing.assert_allclose(best.pregrasp, [0.5, 0.0, 0.125], atol=1e-9)
    np.testing.assert_allclose(best.lift, [0.5, 0.0, 0.175], atol=1e-9)
    assert best.width == pytest.approx(0.05)
    assert best.score == pytest.approx(1.0 - 0.2 * 0.05 / 0.08)
    assert grasps[1].width == pytest.approx(0.08)
    np.testing.assert_allclose(grasps[1].approach, [0, 0, -1], atol=1e-9)


def test_tall_object_prefers_a_side_grasp_from_the_robot():
    grasps = generate_grasps(_box((0.55, 0.0, 0.10), (0.05, 0.05, 0.20)))
    assert [g.kind for g in grasps] == ["side", "top_down", "top_down_wide"]
    side = grasps[0]
    np.testing.assert_allclose(_rotation(side), np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]]).T, atol=1e-9)
    np.testing.assert_allclose(side.position, [0.55, 0.0, 0.10], atol=1e-9)
    np.testing.assert_allclose(side.pregrasp, [0.45, 0.0, 0.10], atol=1e-9)
    np.testing.assert_allclose(side.lift, [0.55, 0.0, 0.25], atol=1e-9)
    assert side.width == pytest.approx(0.07)
    assert side.score == pytest.approx(0.9 - 0.2 * 0.07 / 0.08)
    np.testing.assert_allclose(grasps[1].position, [0.55, 0.0, 0.16], atol=1e-9)  # 0.04 below the 0.20 top


def test_side_approach_points_from_the_base_towards_the_object():
    grasps = generate_grasps(_box((0.4, 0.3, 0.08), (0.03, 0.03, 0.16)))
    sides = [g for g in grasps if g.kind == "side"]
    # radial (0.8, 0.6), plus square to the box faces x (cos 0.8) and y (cos 0.6 < cos 45: not offered)
    assert sorted(tuple(np.round(g.approach, 9)) for g in sides) == [(0.8, 0.6, 0.0), (1.0, 0.0, 0.0)]
    side = next(g for g in sides if g.approach[1] > 0.5)
    np.testing.assert_allclose(side.pregrasp, [0.4 - 0.08, 0.3 - 0.06, 0.08], atol=1e-9)


def test_too_wide_object_is_refused_with_the_opening_as_reason():
    rejected = []
    assert generate_grasps(_box((0.5, 0.0, 0.025), (0.12, 0.10, 0.05)), rejected=rejected) == []
    assert len(rejected) == 2 and all("opening" in reason and "0.080" in reason for reason in rejected)


def test_clearance_is_squeezed_to_the_max_opening_and_ranked_lower():
    """A 70 mm box: 70 + 20 mm clearance > 80 mm, but 70 + 6 mm least clearance fits: open fully, rank lower."""
    grasps = generate_grasps(_box((0.5, 0.0, 0.025), (0.07, 0.20, 0.05)))
    assert [g.kind for g in grasps] == ["top_down"]  # across the 0.20 m side nothing fits
    assert grasps[0].width == pytest.approx(0.08)
    # 10 mm of the wanted 20 mm clearance left: penalty 0.3 * (1 - 10 / 20); then the opening term
    assert grasps[0].score == pytest.approx(1.0 - 0.15 - 0.2 * 0.08 / 0.08)
    rejected = []
    assert generate_grasps(_box((0.5, 0.0, 0.025), (0.075, 0.20, 0.05)), rejected=rejected) == []
    assert "top_down: needs 0.081 m opening > gripper max 0.080 m" in rejected


def test_out_of_reach_object_is_refused_with_reach_as_reason():
    rejected = []
    assert generate_grasps(_box((1.2, 0.0, 0.025), (0.03, 0.03, 0.05)), rejected=rejected) == []
    assert rejected and all("reach" in reason for reason in rejected)


def test_thin_flat_object_keeps_the_tcp_above_the_table():
    grasps = generate_grasps(_box((0.5, 0.1, 0.005), (0.03, 0.1, 0.01)))
    assert grasps[0].position[2] == pytest.approx(0.015)


def test_params_change_offsets_and_opening():
    params = GraspParams(pregrasp_offset=0.2, lift_height=0.05, max_opening=0.04)
    grasps = generate_grasps(_box((0.5, 0.0, 0.025), (0.036, 0.06, 0.05)), params)
    assert [g.kind for g in grasps] == []  # even 0.036 + 0.006 least clearance > 0.04
    grasps = generate_grasps(_box((0.5, 0.0, 0.025), (0.015, 0.06, 0.05)), params)
    np.testing.assert_allclose(grasps[0].pregrasp, [0.5, 0.0, 0.225], atol=1e-9)
    np.testing.assert_allclose(grasps[0].lift, [0.5, 0.0, 0.075], atol=1e-9)


def test_max_opening_is_the_urdfs_finger_travel():
    pybullet = pytest.importorskip("pybullet")
    import pybullet_data

    client = pybullet.connect(pybullet.DIRECT)
    try:
        robot = pybullet.loadURDF(os.path.join(pybullet_data.getDataPath(), "franka_panda", "panda.urdf"),
                                  physicsClientId=client)
        joints = [pybullet.getJointInfo(robot, j, physicsClientId=client)
                  for j in range(pybullet.getNumJoints(robot, physicsClientId=client))]
        fingers = [info[9] for info in joints if b"finger_joint" in info[1]]
    finally:
        pybullet.disconnect(client)
    assert len(fingers) == 2
    assert PANDA_MAX_OPENING == pytest.approx(sum(fingers))


def test_hand_pose_backs_off_along_the_approach():
    tcp = pose_matrix([0.5, 0.0, 0.1], Rotation.from_euler("x", 180, degrees=True).as_quat())
    np.testing.assert_allclose(hand_pose_from_tcp(tcp)[:3, 3], [0.5, 0.0, 0.1 + TCP_OFFSET], atol=1e-12)


def test_tcp_offset_matches_the_urdf_grasp_target():
    pybullet_data = pytest.importorskip("pybullet_data")
    roboplan_core = pytest.importorskip("roboplan.core")
    folder = os.path.join(pybullet_data.getDataPath(), "franka_panda")
    scene = roboplan_core.Scene("panda", roboplan_core.loadUrdfSceneDescription(
        os.path.join(folder, "panda.urdf"), [folder]))
    q = np.array([0.3, -0.5, 0.2, -2.0, 0.1, 1.8, 0.5, 0.0])
    hand = scene.forwardKinematics(q, "panda_hand")
    target = scene.forwardKinematics(q, "panda_grasptarget")
    np.testing.assert_allclose(target[:3, 3] - hand[:3, 3], TCP_OFFSET * hand[:3, 2], atol=1e-9)
    np.testing.assert_allclose(hand_pose_from_tcp(target), hand, atol=1e-9)


def test_object_from_camera_to_base():
    camera_in_base = pose_matrix([0.0, 0.0, 1.0], Rotation.from_euler("x", 180, degrees=True).as_quat())
    obj = Object3D("cup", 0.9, np.array([0.1, 0.2, 0.9]), np.array([0, 0, 0, 1.0]),
                   np.array([0.05, 0.05, 0.1]))
    in_base = object_in_base(obj, camera_in_base)
    np.testing.assert_allclose(in_base.position, [0.1, -0.2, 0.1], atol=1e-12)
    rotation = Rotation.from_quat(in_base.orientation).as_matrix()
    np.testing.assert_allclose(rotation, np.diag([1.0, -1, -1]), atol=1e-12)


def test_rotated_tall_box_is_approached_square_to_its_face():
    # radial approach to (0.5, -0.1) measures 0.06 * (0.196 + 0.981) = 0.071: + 0.02 > 0.08, so only
    # 0.009 m of clearance is left (squeezed, ranked lower); along the box's x face the width is
    # 0.06 + 0.02 = 0.08 with full clearance, the cosine to radial 0.5 / sqrt(0.26)
    grasps = generate_grasps(_box((0.5, -0.1, 0.125), (0.06, 0.06, 0.25)))
    side = grasps[0]
    assert side.kind == "side"
    np.testing.assert_allclose(side.approach, [1.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(side.pregrasp, [0.4, -0.1, 0.125], atol=1e-9)
    assert side.width == pytest.approx(0.08)
    assert side.score == pytest.approx(0.9 - 0.1 * (1 - 0.5 / np.sqrt(0.26)) - 0.2)
    radial = [g for g in grasps if g.kind == "side"][1]
    np.testing.assert_allclose(radial.approach, np.array([0.5, -0.1, 0.0]) / np.sqrt(0.26), atol=1e-9)
    extent = 0.06 * (0.1 + 0.5) / np.sqrt(0.26)
    assert radial.width == pytest.approx(0.08)
    assert radial.score == pytest.approx(0.9 - 0.3 * (1 - (0.08 - extent) / 0.02) - 0.2)
