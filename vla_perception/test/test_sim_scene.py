"""pybullet tabletop: world conventions, render/intrinsics consistency, ground truth, pose estimation, grasp.

Real pybullet (DIRECT mode), real Panda URDF. One scene is shared per module to keep it fast.
"""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_perception.core.geometry import backproject_pixels, decode_depth
from vla_perception.core.pose_estimation import estimate_naive, estimate_object_pose
from vla_perception.sim import world
from vla_perception.sim.objects import ObjectSpec, random_objects
from vla_perception.sim.scene import CameraConfig, TabletopScene, camera_to_world, world_to_camera

# Per-kind centre tolerances (m) from bench/bench_pose.py (docs/pose_accuracy.md), noise-free p95:
# flat-sided boxes/cubes/trays <= 1 mm, ducks ~9 mm, mugs ~16 mm (hidden handle) -> margin above those.
CENTRE_TOL = {"box": 0.003, "cube": 0.003, "tray": 0.003, "duck": 0.015, "mug": 0.025}
SIZE_TOL = {"box": 0.003, "cube": 0.003, "tray": 0.003, "duck": 0.012, "mug": 0.035}


@pytest.fixture(scope="module")
def scene():
    with TabletopScene(seed=3) as sc:
        yield sc


@pytest.fixture(scope="module")
def frame(scene):
    return scene.render()


def test_frame_formats(frame):
    assert frame.rgb.shape == (480, 640, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == (480, 640) and frame.depth.dtype == np.float32
    assert frame.segmentation.shape == (480, 640)
    assert frame.intrinsics.width == 640 and frame.intrinsics.fx > 0


def test_default_scene_has_a_red_mug_and_objects_in_reach(scene):
    truths = scene.ground_truth()
    assert len(truths) >= 4
    mug = next(t for t in truths if t.label == "red mug")
    assert mug.rgba[0] > 0.6 and mug.rgba[1] < 0.3
    for t in truths:
        x, y = t.position_world[:2]
        assert world.REACH_X_RANGE[0] - 0.01 <= x <= world.REACH_X_RANGE[1] + 0.01, t.name
        assert abs(y) <= world.REACH_Y_ABS + 0.01, t.name
        bottom = t.position_world[2] - t.size[2] / 2
        assert abs(bottom - world.TABLE_TOP_Z) < 0.006, (t.name, bottom)  # resting on the table top
        assert min(t.size[:2]) <= world.GRASPABLE_EXTENT + 1e-6, t.name


def test_objects_do_not_overlap(scene):
    truths = scene.ground_truth()
    for i, a in enumerate(truths):
        for b in truths[i + 1:]:
            gap = np.linalg.norm(a.position_world[:2] - b.position_world[:2])
            assert gap > (min(a.size[:2]) + min(b.size[:2])) / 2, (a.name, b.name)


def test_back_projected_table_pixels_lie_on_the_table_plane(scene, frame):
    vs, us = np.nonzero(frame.segmentation == scene.table)
    assert len(us) > 10000
    points = camera_to_world(backproject_pixels(frame.intrinsics, us, vs, frame.depth[vs, us]), frame)
    assert np.abs(points[:, 2] - world.TABLE_TOP_Z).max() < 1e-4  # 0.1 mm over the whole table
    # and the cube's top face is at its height
    cube = scene.truth("green_cube", frame)
    vs, us = np.nonzero(frame.segmentation == cube.body_id)
    pts = camera_to_world(backproject_pixels(frame.intrinsics, us, vs, frame.depth[vs, us]), frame)
    top_height = cube.position_world[2] + cube.size[2] / 2
    assert np.sum(np.abs(pts[:, 2] - top_height) < 2e-4) > 0.2 * len(pts)


def test_camera_pose_maps_ground_truth_into_the_segmentation_box(scene, frame):
    for t in scene.ground_truth(frame):
        assert t.visible_pixels > 100, t.name
        uv = frame.intrinsics.K @ t.position_camera
        u, v = uv[:2] / uv[2]
        assert t.box.x_min <= u <= t.box.x_max and t.box.y_min <= v <= t.box.y_max, t.name
        np.testing.assert_allclose(world_to_camera(t.position_world[None], frame)[0], t.position_camera)
        assert 0.5 <= np.linalg.norm(t.position_camera) <= 1.5


def test_link_frame_not_centre_of_mass(scene):
    # the duck's inertial origin is offset 2 cm in the URDF: the link pose must undo that offset
    link_pos, _ = scene.object_link_pose("yellow_duck")
    com_pos, _ = scene.client.getBasePositionAndOrientation(scene.bodies["yellow_duck"])
    assert 0.015 < np.linalg.norm(np.asarray(com_pos) - link_pos) < 0.025


def test_estimates_match_ground_truth_with_segmentation_boxes(scene, frame):
    errors, naive_errors = [], []
    for t in scene.ground_truth(frame):
        kind = scene.specs[t.name].kind
        result = estimate_object_pose(frame.depth, frame.intrinsics, t.box, label=t.label)
        assert result.ok, (t.name, result.reason)
        err = np.linalg.norm(result.object.position - t.position_camera)
        assert err < CENTRE_TOL[kind], (t.name, err)
        size_err = np.abs(np.sort(result.object.size) - np.sort(t.size)).max()
        assert size_err < SIZE_TOL[kind], (t.name, size_err)
        errors.append(err)
        naive = estimate_naive(frame.depth, frame.intrinsics, t.box).object
        naive_errors.append(np.linalg.norm(naive.position - t.position_camera))
    assert np.median(errors) < 0.010 and np.median(errors) < np.median(naive_errors)


def test_estimate_from_16uc1_depth(scene, frame):
    raw_mm = np.nan_to_num(np.round(frame.depth * 1000), nan=0).astype(np.uint16)
    t = scene.truth("blue_box", frame)
    result = estimate_object_pose(decode_depth(raw_mm, "16UC1"), frame.intrinsics, t.box)
    assert np.linalg.norm(result.object.position - t.position_camera) < 0.004


def test_seeded_scenes_are_reproducible_and_differ_by_seed():
    specs = random_objects(np.random.default_rng(5), 3)
    with TabletopScene(objects=specs, seed=11, settle_time=0.0) as a:
        pa = [t.position_world for t in a.ground_truth()]
    with TabletopScene(objects=random_objects(np.random.default_rng(5), 3), seed=11, settle_time=0.0) as b:
        pb = [t.position_world for t in b.ground_truth()]
    with TabletopScene(objects=random_objects(np.random.default_rng(5), 3), seed=12, settle_time=0.0) as c:
        pc = [t.position_world for t in c.ground_truth()]
    np.testing.assert_allclose(pa, pb)
    assert not np.allclose(pa, pc)


def test_too_wide_objects_are_rejected():
    with pytest.raises(ValueError, match="too wide"):
        TabletopScene(objects=[ObjectSpec("slab", "box", size=(0.1, 0.1, 0.02))])


def test_camera_config_intrinsics_follow_fov():
    cam = CameraConfig(fov_deg=90.0, width=320, height=240)
    k = cam.intrinsics().K
    assert k[1, 1] == pytest.approx(120.0) and k[0, 0] == pytest.approx(120.0)


def test_scripted_top_down_grasp_lifts_the_cube():
    with TabletopScene(objects=[ObjectSpec("cube", "cube", position=(0.5, 0.1), yaw=0.4)]) as sc:
        truth = sc.truth("cube")
        yaw = Rotation.from_quat(truth.orientation_world).as_euler("xyz")[2]
        down = (Rotation.from_euler("z", yaw) * Rotation.from_euler("x", np.pi)).as_quat()
        pre = sc.inverse_kinematics(truth.position_world + [0, 0, 0.12], down)
        grasp = sc.inverse_kinematics(truth.position_world, down, rest=pre)
        assert sc.open_gripper(0.08) > 0.07
        sc.execute_joint_trajectory([sc.joint_positions(), pre, grasp], [0.0, 1.0, 1.6])
        ee_pos, _ = sc.end_effector_pose()
        assert np.linalg.norm(ee_pos - truth.position_world) < 0.01
        opening = sc.close_gripper()
        assert 0.04 < opening < 0.06  # stopped by the 5 cm cube
        assert sc.object_lifted("cube") == (False, pytest.approx(0.0, abs=0.005))
        sc.lift(0.15)
        lifted, risen = sc.object_lifted("cube", min_height=0.05)
        assert lifted and risen > 0.12


def test_without_closing_the_gripper_nothing_is_lifted():
    with TabletopScene(objects=[ObjectSpec("cube", "cube", position=(0.5, -0.1), yaw=0.0)]) as sc:
        truth = sc.truth("cube")
        down = Rotation.from_euler("x", np.pi).as_quat()
        grasp = sc.inverse_kinematics(truth.position_world, down)
        sc.open_gripper(0.08)
        sc.move_to_joints(sc.inverse_kinematics(truth.position_world + [0, 0, 0.1], down), 0.8)
        sc.move_to_joints(grasp, 0.6)
        sc.lift(0.15)
        assert not sc.object_lifted("cube")[0]


def test_trajectory_input_is_validated(scene):
    with pytest.raises(ValueError):
        scene.execute_joint_trajectory(np.zeros((2, 6)), [0.0, 1.0])
    with pytest.raises(ValueError):
        scene.execute_joint_trajectory(np.zeros((2, 7)), [1.0, 1.0])
