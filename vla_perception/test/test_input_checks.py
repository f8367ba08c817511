"""The checks that refuse unusable inputs before they reach a model, a simulator or a robot (no ROS).

Each case is one the red-team run of the reliability issue found accepted: a NaN joint that
froze pybullet, a 1e-30 focal length that placed objects 1e31 m away, a target under the
table, a caption prefix that overflowed BLIP's positions.
"""
import math
from types import SimpleNamespace

import numpy as np
import pytest

from vla_perception.core.geometry import CameraIntrinsics
from vla_perception.core.limits import MAX_IMAGE_PIXELS, check_count, check_image_size
from vla_perception.core.orchestration import arm_joints_from_state, require_in_workspace
from vla_perception.core.pick_pipeline import StageFailure
from vla_perception.core.planning.base import MAX_TRAJECTORY_POINTS, MAX_TRAJECTORY_SECONDS, check_trajectory
from vla_perception.core.types import Object3D, VlaInputError

GOOD_TIMES = np.array([0.0, 0.5, 1.0])
GOOD_POSITIONS = np.zeros((3, 7))


def test_a_sane_trajectory_passes():
    check_trajectory(GOOD_POSITIONS, GOOD_TIMES)


@pytest.mark.parametrize("value, match", [(math.nan, "non-finite"), (math.inf, "non-finite"),
                                          (100.0, "beyond")])
def test_trajectories_with_unusable_joint_values_are_refused(value, match):
    positions = GOOD_POSITIONS.copy()
    positions[1, 3] = value
    with pytest.raises(VlaInputError, match=match):
        check_trajectory(positions, GOOD_TIMES)


@pytest.mark.parametrize("times", [[0.0, 0.5, MAX_TRAJECTORY_SECONDS + 1], [0.0, 0.5, math.nan], [-1.0, 0.5, 1.0],
                                   [0.0, 1.0, 0.5], [0.0, 0.5, 0.5]])
def test_trajectories_with_unusable_times_are_refused(times):
    with pytest.raises(VlaInputError, match="times"):
        check_trajectory(GOOD_POSITIONS, np.array(times))


def test_trajectories_over_the_point_cap_are_refused():
    count = MAX_TRAJECTORY_POINTS + 1
    with pytest.raises(VlaInputError, match=str(MAX_TRAJECTORY_POINTS)):
        check_trajectory(np.zeros((count, 7)), np.arange(count) * 0.01)


def cam(fx=500.0, width=640, height=480, cx=320.0, D=None):
    K = np.array([[fx, 0.0, cx], [0.0, fx, 240.0], [0.0, 0.0, 1.0]])
    return CameraIntrinsics(K=K, width=width, height=height, D=np.zeros(5) if D is None else np.asarray(D))


@pytest.mark.parametrize("changes, match", [
    ({"fx": 1e-30}, "implausible"), ({"fx": 1e30}, "implausible"), ({"cx": -5000.0}, "principal point"),
    ({"D": [math.nan, 0, 0, 0, 0]}, "not finite"),
])
def test_implausible_camera_intrinsics_are_refused(changes, match):
    with pytest.raises(VlaInputError, match=match):
        cam(**changes)


def test_real_cameras_from_fisheye_to_telephoto_are_accepted():
    for fx in (0.05 * 640, 500.0, 50 * 640):  # about 170, 65 and 1.1 degrees wide
        assert cam(fx=fx).fx == fx


def target(z, x=0.5, y=0.0):
    return Object3D("red mug", 1.0, np.array([x, y, z]), np.array([0.0, 0.0, 0.0, 1.0]), np.full(3, 0.08), 100, 1.0)


def test_a_target_under_the_support_plane_is_refused_with_the_reason():
    """Defect 5: a grasp was planned 37.5 cm below the table top for a nonsense command."""
    with pytest.raises(StageFailure, match="0.375 m below the support plane") as failure:
        require_in_workspace(target(-0.375), 0.0, 0.855, "panda_link0")
    assert failure.value.stage == "planning"


def test_targets_out_of_reach_or_not_finite_are_refused_and_a_table_top_object_is_not():
    with pytest.raises(StageFailure, match="beyond the arm's reach"):
        require_in_workspace(target(0.04, x=2.0), 0.0, 0.855, "panda_link0")
    with pytest.raises(StageFailure, match="not a finite position"):
        require_in_workspace(target(math.nan), 0.0, 0.855, "panda_link0")
    require_in_workspace(target(0.04), 0.0, 0.855, "panda_link0")
    require_in_workspace(target(-0.01), 0.0, 0.855, "panda_link0")  # within the depth-noise tolerance


def test_joint_states_with_non_finite_arm_joints_are_unusable():
    names = [f"panda_joint{i}" for i in range(1, 8)]
    assert arm_joints_from_state(names, [0.0] * 7) == [0.0] * 7
    assert arm_joints_from_state(names, [0.0] * 6 + [math.nan]) is None


def test_image_and_count_caps():
    check_image_size(3840, 2160)  # 4K UHD
    with pytest.raises(VlaInputError, match="MP"):
        check_image_size(7680, 4320)  # 8K: 100 MB as rgb8
    with pytest.raises(VlaInputError, match="aspect"):
        check_image_size(20000, 8)
    assert 4096 * 4096 == MAX_IMAGE_PIXELS
    check_count(100, 100, "boxes")
    with pytest.raises(VlaInputError, match="at most 100"):
        check_count(1000, 100, "boxes")


def test_stamps_too_far_apart_are_refused_with_both_stamps():
    from vla_perception.bridge.sync import check_stamps_close

    def stamp(seconds):
        return SimpleNamespace(sec=int(seconds), nanosec=int(round((seconds % 1) * 1e9)))

    check_stamps_close(stamp(100.0), stamp(100.4), 0.5)
    check_stamps_close(stamp(0.0), stamp(1_700_000_000.0), 0.5)  # unstamped detections: nothing to compare
    with pytest.raises(VlaInputError, match=r"stamped 1\.000 s and the depth 1700000000\.000 s"):
        check_stamps_close(stamp(1.0), stamp(1_700_000_000.0), 0.5)
