"""Depth decoding, intrinsics and back-projection on synthetic inputs with exact answers."""
import numpy as np
import pytest

from vla_perception.core.geometry import (CameraIntrinsics, backproject_pixels, backproject_region,
                                          box_to_depth_pixels, decode_depth, project_points,
                                          resize_mask_nearest)
from vla_perception.core.types import Box2D, VlaInputError


def make_cam(width=640, height=480, f=500.0, cx=None, cy=None, **kw):
    cx = width / 2 - 0.5 if cx is None else cx
    cy = height / 2 - 0.5 if cy is None else cy
    k = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
    return CameraIntrinsics(K=k, width=width, height=height, **kw)


def test_backprojection_of_a_fronto_parallel_plane_is_exact():
    cam = make_cam(f=400.0, cx=300.0, cy=200.0)
    depth = np.full((480, 640), 2.0, np.float32)
    pts, us, vs = backproject_region(depth, cam, 0, 0, 640, 480)
    assert len(pts) == 640 * 480
    np.testing.assert_allclose(pts[:, 2], 2.0)
    # pixel (300, 200) is the principal point: straight ahead; pixel (700, 200) would be 1 m right at 2 m.
    i = np.flatnonzero((us == 300) & (vs == 200))[0]
    np.testing.assert_allclose(pts[i], [0.0, 0.0, 2.0], atol=1e-12)
    j = np.flatnonzero((us == 500) & (vs == 0))[0]
    np.testing.assert_allclose(pts[j], [200 / 400 * 2.0, -200 / 400 * 2.0, 2.0], atol=1e-12)


def test_project_inverts_backproject():
    cam = make_cam()
    rng = np.random.default_rng(0)
    us, vs = rng.uniform(0, 640, 50), rng.uniform(0, 480, 50)
    pts = backproject_pixels(cam, us, vs, rng.uniform(0.3, 3.0, 50))
    np.testing.assert_allclose(project_points(cam, pts), np.stack([us, vs], 1), atol=1e-9)


def test_decode_16uc1_millimetres_and_invalid_values():
    raw = np.array([[0, 1000, 1500], [65535, 250, 12000]], np.uint16)
    depth = decode_depth(raw, "16UC1", max_range=10.0)
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth[0, 1:], [1.0, 1.5])
    assert np.isnan(depth[0, 0])  # 0 = no reading
    assert np.isnan(depth[1, 0]) and np.isnan(depth[1, 2])  # beyond max range
    assert depth[1, 1] == pytest.approx(0.25)


def test_decode_32fc1_metres_and_invalid_values():
    raw = np.array([[0.0, np.nan, np.inf, -1.0, 0.8, 11.0]], np.float32)
    depth = decode_depth(raw, "32FC1", max_range=10.0)
    assert np.all(np.isnan(depth[0, [0, 1, 2, 3, 5]]))
    assert depth[0, 4] == pytest.approx(0.8)


def test_decode_custom_scale_and_dtype_default():
    raw = np.array([[4000]], np.uint16)
    assert decode_depth(raw, depth_scale=0.00025)[0, 0] == pytest.approx(1.0)  # 0.25 mm units
    assert decode_depth(raw)[0, 0] == pytest.approx(4.0)  # integers default to millimetres
    assert decode_depth(raw.astype(np.float32) / 1000)[0, 0] == pytest.approx(4.0)


def test_decode_rejects_three_channel_depth_and_unknown_encoding():
    with pytest.raises(VlaInputError, match="single-channel"):
        decode_depth(np.zeros((4, 4, 3), np.uint16), "16UC1")
    with pytest.raises(VlaInputError, match="encoding"):
        decode_depth(np.zeros((4, 4), np.uint8), "rgb8")


def test_intrinsics_reject_zero_focal_length_and_distortion():
    with pytest.raises(VlaInputError, match="focal"):
        make_cam(f=0.0)
    with pytest.raises(VlaInputError, match="distortion"):
        make_cam(D=np.array([0.1, 0, 0, 0, 0]))
    with pytest.raises(VlaInputError, match="distortion model"):
        make_cam(distortion_model="fisheye_magic")
    assert make_cam(distortion_model="rational_polynomial", D=np.zeros(8)).fx == 500.0


def test_from_camera_info_like_object():
    class Info:
        k = [525.0, 0, 319.5, 0, 525.0, 239.5, 0, 0, 1]
        d = [0.0] * 5
        width, height, distortion_model = 640, 480, "plumb_bob"

    cam = CameraIntrinsics.from_camera_info(Info())
    assert (cam.fx, cam.cy, cam.width) == (525.0, 239.5, 640)


def test_scaled_intrinsics_see_the_same_ray():
    cam = make_cam()
    half = cam.scaled_to(320, 240)
    point = np.array([[0.1, -0.05, 1.2]])
    uv_full, uv_half = project_points(cam, point)[0], project_points(half, point)[0]
    # pixel centre convention: full-res coordinate u maps to (u + 0.5) / 2 - 0.5 at half resolution.
    np.testing.assert_allclose(uv_half, (uv_full + 0.5) / 2 - 0.5, atol=1e-9)


def test_box_scaling_to_depth_resolution_and_clipping():
    cam = make_cam(width=320, height=240)
    box = box_to_depth_pixels(Box2D(100, 50, 300, 150), (640, 480), cam)
    assert box == Box2D(50, 25, 150, 75)
    clipped = box_to_depth_pixels(Box2D(-10, -10, 20, 20), None, cam)
    assert clipped == Box2D(0, 0, 20, 20)
    with pytest.raises(VlaInputError, match="outside"):
        box_to_depth_pixels(Box2D(400, 10, 500, 20), None, cam)
    with pytest.raises(VlaInputError, match="positive"):
        box_to_depth_pixels(Box2D(10, 10, 10, 20), None, cam)


def test_resize_mask_nearest_keeps_the_region():
    mask = np.zeros((480, 640), bool)
    mask[100:200, 300:400] = True
    small = resize_mask_nearest(mask, 320, 240)
    assert small.shape == (240, 320)
    assert small[50:100, 150:200].all() and small.sum() == 50 * 50
