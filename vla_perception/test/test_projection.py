"""core.projection: base-frame points into pixels (checked against pybullet renders) and the plan overlay."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_perception.core.geometry import CameraIntrinsics, backproject_pixels
from vla_perception.core.projection import (
    APPROACH_COLOUR, GRASP_COLOUR, PATH_COLOUR, base_to_camera, draw_plan, project_base_points)

CAMERA = CameraIntrinsics(K=[[500.0, 0, 320.0], [0, 500.0, 240.0], [0, 0, 1]], width=640, height=480)


@pytest.fixture(scope="module")
def rendered_scene():
    from vla_perception.sim.scene import TabletopScene

    with TabletopScene() as scene:
        frame = scene.render()
        yield frame, scene.ground_truth(frame)


def box_corners(centre, orientation, size):
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    return Rotation.from_quat(orientation).apply(signs * np.asarray(size) / 2) + centre


def test_object_boxes_project_onto_what_the_simulator_rendered(rendered_scene):
    """The 3D boxes' projected corners enclose each object's segmentation box; the centre lies inside it."""
    frame, truths = rendered_scene
    visible = [t for t in truths if t.box is not None and t.visible_pixels > 200]
    assert len(visible) >= 3
    for truth in visible:
        corners_3d = box_corners(truth.position_world, truth.orientation_world, truth.size)
        corners, in_front = project_base_points(corners_3d, frame.camera_position, frame.camera_orientation,
                                                frame.intrinsics)
        assert in_front.all()
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        box = truth.box
        tolerance = 1.5  # pixels: the mask covers whole pixels
        assert lo[0] <= box.x_min + tolerance and lo[1] <= box.y_min + tolerance, truth.name
        assert hi[0] >= box.x_max - tolerance and hi[1] >= box.y_max - tolerance, truth.name
        # tight: a mesh fills most of its box's outline (a wrong extrinsic misses by far more)
        assert (hi - lo)[0] < 1.6 * box.width + 6 and (hi - lo)[1] < 1.6 * box.height + 6, truth.name
        centre, _ = project_base_points(truth.position_world, frame.camera_position, frame.camera_orientation,
                                        frame.intrinsics)
        u, v = centre[0]
        assert box.x_min <= u <= box.x_max and box.y_min <= v <= box.y_max, truth.name


def test_projection_inverts_back_projection_for_a_tilted_camera():
    rng = np.random.default_rng(3)
    position = np.array([1.2, -0.3, 0.8])
    orientation = Rotation.from_euler("xyz", [2.3, -0.4, 0.9]).as_quat()
    us, vs = rng.uniform(0, 640, 20), rng.uniform(0, 480, 20)
    depth = rng.uniform(0.3, 3.0, 20)
    in_camera = backproject_pixels(CAMERA, us, vs, depth)
    in_base = Rotation.from_quat(orientation).apply(in_camera) + position
    np.testing.assert_allclose(base_to_camera(in_base, position, orientation), in_camera, atol=1e-9)
    pixels, in_front = project_base_points(in_base, position, orientation, CAMERA)
    assert in_front.all()
    np.testing.assert_allclose(pixels, np.stack([us, vs], axis=1), atol=1e-6)


def test_points_behind_the_camera_get_no_pixel():
    identity = [0.0, 0.0, 0.0, 1.0]
    points = np.array([[0.0, 0.0, 2.0], [0.1, 0.0, -1.0], [0.0, 0.0, 0.0]])
    pixels, in_front = project_base_points(points, [0, 0, 0], identity, CAMERA)
    assert in_front.tolist() == [True, False, False]
    np.testing.assert_allclose(pixels[0], [320.0, 240.0])
    assert np.isnan(pixels[1:]).all()


def colour_mask(image, colour):
    return np.all(image == np.array(colour, dtype=np.uint8), axis=-1)


def test_draw_plan_draws_path_and_approach_and_skips_gaps():
    image = np.zeros((100, 200, 3), np.uint8)
    path = np.array([[10, 10], [60, 10], [np.nan, np.nan], [110, 90], [190, 90]], float)
    drawn = draw_plan(image, path, np.array([[100, 20], [100, 60]], float))
    assert image.max() == 0  # the input is left alone
    path_mask = colour_mask(drawn, PATH_COLOUR)
    assert path_mask[10, 15:55].all() and path_mask[90, 115:185].all()
    assert not path_mask[30:70, 70:100].any()  # no line across the point behind the camera
    approach = colour_mask(drawn, APPROACH_COLOUR)
    assert approach[25:50, 100].all()
    ring = colour_mask(drawn, GRASP_COLOUR)
    assert ring[55:66, 90:111].any() and not ring[:40].any()


def test_draw_plan_without_anything_to_draw_returns_the_image():
    image = np.full((20, 30, 3), 7, np.uint8)
    np.testing.assert_array_equal(draw_plan(image), image)
    np.testing.assert_array_equal(draw_plan(image, np.full((3, 2), np.nan), np.full((2, 2), np.nan)), image)
