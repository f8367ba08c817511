"""3D pose/size estimation on synthetic ray-cast depth with exact ground truth.

The depth images are made here by intersecting pixel rays with a table plane and oriented
boxes (independent of the estimator), seen by a camera 0.9 m away pitched 50 degrees down.
"""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_perception.core.geometry import CameraIntrinsics, decode_depth
from vla_perception.core.pose_estimation import (PoseEstimatorConfig, estimate_naive, estimate_object_pose,
                                                 fit_plane_ransac, min_area_rectangle)
from vla_perception.core.types import Box2D, VlaInputError

PITCH = np.radians(50)
CAM_POS = np.array([0.0, -0.9 * np.cos(PITCH), 0.9 * np.sin(PITCH)])  # world: table z = 0, z up
# world <- optical: z forward (towards the origin, downwards), x = world x, y = z cross x
WORLD_FROM_CAM = Rotation.from_matrix(np.column_stack([
    [1.0, 0.0, 0.0], [0.0, -np.sin(PITCH), -np.cos(PITCH)], [0.0, np.cos(PITCH), -np.sin(PITCH)]]))


def make_cam(width=640, height=480, f=520.0):
    s = width / 640
    k = np.array([[f * s, 0, width / 2 - 0.5], [0, f * s, height / 2 - 0.5], [0, 0, 1]])
    return CameraIntrinsics(K=k, width=width, height=height)


def rays(cam):
    vs, us = np.mgrid[0:cam.height, 0:cam.width]
    return np.stack([(us - cam.cx) / cam.fx, (vs - cam.cy) / cam.fy, np.ones(us.shape)], -1)


def render(cam, boxes, table=True, cam_pos=CAM_POS, world_from_cam=WORLD_FROM_CAM):
    """Depth (z along the optical axis) and per-pixel hit index (-1 table/none, i = boxes[i])."""
    d_world = world_from_cam.apply(rays(cam).reshape(-1, 3))
    t_best = np.full(len(d_world), np.inf)
    hit = np.full(len(d_world), -1)
    if table:
        with np.errstate(divide="ignore"):
            t = -cam_pos[2] / d_world[:, 2]
        t_best = np.where(t > 0, t, np.inf)
    for i, (centre, yaw, size) in enumerate(boxes):
        rot = Rotation.from_euler("z", yaw)
        o = rot.inv().apply(cam_pos - centre)
        d = rot.inv().apply(d_world)
        half = np.asarray(size) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-half - o) / d, (half - o) / d
        t_near = np.nanmax(np.minimum(t1, t2), axis=1)
        t_far = np.nanmin(np.maximum(t1, t2), axis=1)
        ok = (t_near <= t_far) & (t_near > 0) & (t_near < t_best)
        t_best[ok], hit[ok] = t_near[ok], i
    depth = t_best.reshape(cam.height, cam.width).astype(np.float32)  # ray z = 1, so t is z
    depth[~np.isfinite(depth)] = np.nan
    return depth, hit.reshape(cam.height, cam.width)


def box_of(hit, i):
    vs, us = np.nonzero(hit == i)
    return Box2D(us.min(), vs.min(), us.max() + 1.0, vs.max() + 1.0)


def to_cam(p_world):
    return WORLD_FROM_CAM.inv().apply(np.asarray(p_world) - CAM_POS)


def yaw_error_deg(obj, yaw, size):
    """Angle between the estimated long axis and the true one, modulo 180 (90 for square) degrees."""
    long_axis_world = Rotation.from_euler("z", yaw).apply([1.0, 0, 0] if size[0] >= size[1] else [0, 1.0, 0])
    est_x = WORLD_FROM_CAM.apply(Rotation.from_quat(obj.orientation).apply([1.0, 0, 0]))
    angle = np.degrees(np.arccos(np.clip(abs(est_x @ long_axis_world), 0, 1)))
    return min(angle, 90.0 - angle) if np.isclose(size[0], size[1]) else angle


BOX = (np.array([0.03, 0.02, 0.04]), 0.5, (0.12, 0.05, 0.08))  # centre (world), yaw, size


def check_estimate(obj, box, pos_tol=0.004, size_tol=0.005):
    centre, yaw, size = box
    assert np.linalg.norm(obj.position - to_cam(centre)) < pos_tol
    np.testing.assert_allclose(obj.size, [max(size[:2]), min(size[:2]), size[2]], atol=size_tol)
    assert yaw_error_deg(obj, yaw, size) < 2.0
    up = WORLD_FROM_CAM.apply(Rotation.from_quat(obj.orientation).apply([0, 0, 1.0]))
    assert up[2] > np.cos(np.radians(1.0))  # the box's z axis is the table normal


def test_box_on_table_centre_size_yaw():
    cam = make_cam()
    depth, hit = render(cam, [BOX])
    result = estimate_object_pose(depth, cam, box_of(hit, 0), label="box")
    assert result.ok, result.reason
    check_estimate(result.object, BOX)
    assert result.object.extra["method"] == "support_plane"
    assert result.object.num_points > 500 and result.object.confidence > 0.8
    np.testing.assert_allclose(np.linalg.norm(result.object.orientation), 1.0)


def test_top_down_view_sees_only_the_top_face_and_still_gets_the_height():
    cam = make_cam()
    cam_pos = np.array([0.05, 0.0, 0.8])
    down = Rotation.from_matrix(np.column_stack([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]]))
    depth, hit = render(cam, [BOX], cam_pos=cam_pos, world_from_cam=down)
    obj = estimate_object_pose(depth, cam, box_of(hit, 0)).object
    centre, yaw, size = BOX
    assert np.linalg.norm(obj.position - down.inv().apply(centre - cam_pos)) < 0.004
    np.testing.assert_allclose(obj.size, [0.12, 0.05, 0.08], atol=0.005)
    assert obj.extra["method"] == "support_plane"


def test_up_hint_picks_the_table_when_a_wall_stands_right_behind():
    cam = make_cam()
    wall = (np.array([0.0, 0.10, 0.2]), 0.0, (1.5, 0.02, 0.4))
    depth, hit = render(cam, [BOX, wall])
    table_normal_in_camera = WORLD_FROM_CAM.inv().apply([0, 0, 1.0])
    config = PoseEstimatorConfig(up_hint=tuple(table_normal_in_camera))
    result = estimate_object_pose(depth, cam, box_of(hit, 0), config=config)
    assert result.ok, result.reason
    check_estimate(result.object, BOX)


def test_naive_baseline_is_biased_towards_the_visible_surface():
    cam = make_cam()
    depth, hit = render(cam, [BOX])
    naive = estimate_naive(depth, cam, box_of(hit, 0)).object
    robust = estimate_object_pose(depth, cam, box_of(hit, 0)).object
    true = to_cam(BOX[0])
    assert np.linalg.norm(robust.position - true) < 0.5 * np.linalg.norm(naive.position - true)


def test_holes_and_nans_in_depth_are_ignored():
    cam = make_cam()
    depth, hit = render(cam, [BOX])
    rng = np.random.default_rng(3)
    holes = rng.random(depth.shape) < 0.3
    depth[holes] = np.nan
    depth[100:110, :] = np.inf
    result = estimate_object_pose(decode_depth(depth, "32FC1"), cam, box_of(hit, 0))
    assert result.ok, result.reason
    check_estimate(result.object, BOX)


def test_16uc1_millimetres_give_the_same_answer_as_32fc1():
    cam = make_cam()
    depth, hit = render(cam, [BOX])
    raw_mm = np.nan_to_num(np.round(depth * 1000), nan=0).astype(np.uint16)
    metres = estimate_object_pose(decode_depth(depth, "32FC1"), cam, box_of(hit, 0)).object
    millis = estimate_object_pose(decode_depth(raw_mm, "16UC1"), cam, box_of(hit, 0)).object
    assert np.linalg.norm(metres.position - millis.position) < 0.002
    check_estimate(millis, BOX, pos_tol=0.005, size_tol=0.006)


def test_depth_at_half_the_colour_resolution():
    colour_cam, depth_cam = make_cam(), make_cam(320, 240)
    _, hit = render(colour_cam, [BOX])
    depth, _ = render(depth_cam, [BOX])
    result = estimate_object_pose(depth, depth_cam, box_of(hit, 0), image_size=(640, 480))
    assert result.ok, result.reason
    check_estimate(result.object, BOX, pos_tol=0.006, size_tol=0.008)


def test_object_behind_leaking_into_the_box_is_not_merged():
    cam = make_cam()
    front = (np.array([0.0, -0.05, 0.03]), 0.2, (0.05, 0.05, 0.06))
    behind = (np.array([0.0, 0.03, 0.10]), 0.0, (0.25, 0.04, 0.20))  # tall box 3.5 cm behind it
    depth, hit = render(cam, [front, behind])
    box = box_of(hit, 0)
    assert np.any(hit[int(box.y_min):int(box.y_max), int(box.x_min):int(box.x_max)] == 1)  # it does leak in
    result = estimate_object_pose(depth, cam, box)
    assert result.ok, result.reason
    check_estimate(result.object, front)


def test_mask_selects_the_object_pixels():
    cam = make_cam()
    depth, hit = render(cam, [BOX])
    result = estimate_object_pose(depth, cam, box_of(hit, 0), mask=hit == 0)
    assert result.ok, result.reason
    check_estimate(result.object, BOX)


def test_all_invalid_depth_in_the_box_gives_a_reason_not_a_guess():
    cam = make_cam()
    depth, hit = render(cam, [BOX])
    box = box_of(hit, 0)
    depth[int(box.y_min):int(box.y_max), int(box.x_min):int(box.x_max)] = np.nan
    result = estimate_object_pose(depth, cam, box)
    assert not result.ok and result.object is None
    assert "not enough valid depth" in result.reason
    assert not estimate_naive(depth, cam, box).ok


def test_a_box_on_bare_table_finds_nothing_above_it():
    cam = make_cam()
    depth, _ = render(cam, [])
    result = estimate_object_pose(depth, cam, Box2D(300, 200, 340, 240))
    assert not result.ok
    assert "above the support plane" in result.reason


def test_no_table_falls_back_to_a_pca_box():
    cam = make_cam()
    floating = (np.array([0.0, 0.0, 0.2]), 0.3, (0.10, 0.04, 0.06))
    depth, hit = render(cam, [floating], table=False)
    result = estimate_object_pose(depth, cam, box_of(hit, 0))
    assert result.ok and result.object.extra["method"] == "pca"
    assert result.object.confidence < 0.7  # no support plane: lower confidence
    # only the visible faces are measured: the centre lies between the visible surface and the true centre
    assert np.linalg.norm(result.object.position - to_cam(floating[0])) < 0.04


def test_up_hint_rejects_planes_at_the_wrong_angle():
    rng = np.random.default_rng(0)
    wall = np.column_stack([rng.uniform(-1, 1, 400), rng.uniform(-1, 1, 400), np.full(400, 2.0)])
    plane = fit_plane_ransac(wall, 0.005, 50, rng)
    np.testing.assert_allclose(abs(plane.normal[2]), 1.0, atol=1e-9)
    assert fit_plane_ransac(wall, 0.005, 50, rng, up_hint=np.array([0, -1.0, 0])) is None


def test_min_area_rectangle_of_a_rotated_rectangle():
    corners = np.array([[0, 0], [0.2, 0], [0.2, 0.1], [0, 0.1]]) - [0.1, 0.05]
    rot = Rotation.from_euler("z", 0.4).as_matrix()[:2, :2]
    pts = corners @ rot.T + [1.0, 2.0]
    centre, angle, ext = min_area_rectangle(pts)
    np.testing.assert_allclose(centre, [1.0, 2.0], atol=1e-9)
    np.testing.assert_allclose(sorted(ext), [0.1, 0.2], atol=1e-9)


@pytest.mark.parametrize("bad", ["three_channel", "wrong_shape", "uint16_not_decoded"])
def test_bad_depth_inputs_are_clear_errors(bad):
    cam = make_cam()
    depth, hit = render(cam, [BOX])
    arr = {"three_channel": np.dstack([depth] * 3), "wrong_shape": depth[:200],
           "uint16_not_decoded": np.zeros(depth.shape, np.uint16)}[bad]
    with pytest.raises(VlaInputError):
        estimate_object_pose(arr, cam, box_of(hit, 0))


def test_box_outside_the_image_is_an_error():
    cam = make_cam()
    depth, _ = render(cam, [BOX])
    with pytest.raises(VlaInputError, match="outside"):
        estimate_object_pose(depth, cam, Box2D(700, 10, 760, 50))


def test_config_min_points_is_respected():
    cam = make_cam()
    depth, hit = render(cam, [BOX])
    result = estimate_object_pose(depth, cam, box_of(hit, 0), config=PoseEstimatorConfig(min_points=10**6))
    assert not result.ok and "need 1000000" in result.reason
