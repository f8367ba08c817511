"""CONTRACT test of the moveit backend: checks OUR request construction against moveit_py's documented API.

moveit_py is not installable here, so this does not run MoveIt. The fakes below mirror the
documented calls and message fields (MoveItPy.get_planning_component / get_robot_model /
get_planning_scene_monitor().read_write(), RobotState.set_joint_group_positions,
PlanningComponent.set_start_state(robot_state=) / set_goal_state(pose_stamped_msg=, pose_link=) /
plan(single_plan_parameters=), PlanRequestParameters(moveit, namespace), CollisionObject with
SolidPrimitive.BOX primitives) and record what we send; expected values are worked out by hand.
"""

from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vla_perception.core.grasp import GraspCandidate
from vla_perception.core.planning import make_planner, moveit_available
from vla_perception.core.planning.moveit import (
    MoveItApi,
    MoveItPlanner,
    MoveItSettings,
    goal_pose,
    prepare_request,
    scene_objects,
)
from vla_perception.core.types import Object3D


class _Vector(SimpleNamespace):
    def __init__(self):
        super().__init__(x=0.0, y=0.0, z=0.0)


class FakePose:
    def __init__(self):
        self.position = _Vector()
        self.orientation = SimpleNamespace(x=0.0, y=0.0, z=0.0, w=1.0)


class FakePoseStamped:
    def __init__(self):
        self.header = SimpleNamespace(frame_id="", stamp=None)
        self.pose = FakePose()


class FakeSolidPrimitive:
    BOX = 1

    def __init__(self):
        self.type = 0
        self.dimensions = []


class FakeCollisionObject:
    ADD = 0

    def __init__(self):
        self.header = SimpleNamespace(frame_id="")
        self.id = ""
        self.primitives = []
        self.primitive_poses = []
        self.operation = None


class FakeRobotState:
    def __init__(self, model):
        self.model, self.groups, self.updated = model, {}, False

    def set_joint_group_positions(self, group, positions):
        self.groups[group] = np.array(positions)

    def update(self):
        self.updated = True


class FakePlanRequestParameters:
    def __init__(self, moveit, namespace):
        self.namespace = namespace
        self.planning_pipeline = self.planner_id = ""
        self.planning_time = self.max_velocity_scaling_factor = self.max_acceleration_scaling_factor = 0.0


def _point(positions, seconds):
    return SimpleNamespace(
        positions=list(positions),
        time_from_start=SimpleNamespace(sec=int(seconds), nanosec=int(round(seconds % 1 * 1e9))),
    )


class FakeArm:
    """Plan two points, one second, from the start state to start + 0.1 rad (or fail on request)."""

    def __init__(self, fail_goals=()):
        self.calls, self.fail_goals = [], list(fail_goals)

    def set_start_state(self, robot_state=None, configuration_name=None):
        self.calls.append(("start", robot_state))
        self.start = robot_state

    def set_goal_state(
        self, pose_stamped_msg=None, pose_link=None, robot_state=None, configuration_name=None
    ):
        self.calls.append(("goal", pose_stamped_msg, pose_link))
        self.goal = pose_stamped_msg

    def plan(self, single_plan_parameters=None, multi_plan_parameters=None):
        self.calls.append(("plan", single_plan_parameters))
        z = self.goal.pose.position.z
        if any(abs(z - fail) < 1e-9 for fail in self.fail_goals):
            return None
        start = self.start.groups["panda_arm"]
        joint_trajectory = SimpleNamespace(
            joint_names=[f"panda_joint{i}" for i in range(1, 8)],
            points=[_point(start, 0.0), _point(start + 0.1, 1.0)],
        )
        message = SimpleNamespace(joint_trajectory=joint_trajectory)
        return SimpleNamespace(trajectory=SimpleNamespace(get_robot_trajectory_msg=lambda: message))


class FakeMoveItPy:
    def __init__(self, arm):
        self.arm, self.applied, self.scene_updates, self.groups = arm, [], 0, []
        self.model = object()

    def get_planning_component(self, group):
        self.groups.append(group)
        return self.arm

    def get_robot_model(self):
        return self.model

    def get_planning_scene_monitor(self):
        moveit = self

        class Monitor:
            @contextmanager
            def read_write(self):
                def update():
                    moveit.scene_updates += 1

                yield SimpleNamespace(
                    apply_collision_object=moveit.applied.append,
                    current_state=SimpleNamespace(update=update),
                )

        return Monitor()


API = MoveItApi(
    Pose=FakePose,
    PoseStamped=FakePoseStamped,
    CollisionObject=FakeCollisionObject,
    SolidPrimitive=FakeSolidPrimitive,
    RobotState=FakeRobotState,
    MoveItPy=None,
    PlanRequestParameters=FakePlanRequestParameters,
)
TOP_DOWN = Rotation.from_euler("x", 180, degrees=True)


def _candidate(z=0.02):
    return GraspCandidate(
        "top_down",
        np.array([0.5, 0.1, z]),
        TOP_DOWN.as_quat(),
        np.array([0.5, 0.1, z + 0.1]),
        np.array([0.5, 0.1, z + 0.15]),
        0.05,
        1.0,
    )


def test_goal_is_the_hand_pose_behind_the_tcp_in_the_base_frame():
    tcp = np.eye(4)
    tcp[:3, :3] = TOP_DOWN.as_matrix()
    tcp[:3, 3] = [0.5, 0.1, 0.02]
    goal = goal_pose(API, tcp, MoveItSettings())
    assert goal.header.frame_id == "panda_link0"
    # hand z points down, so the hand sits 0.105 m above the TCP
    assert (goal.pose.position.x, goal.pose.position.y) == pytest.approx((0.5, 0.1))
    assert goal.pose.position.z == pytest.approx(0.125)
    q = goal.pose.orientation
    assert abs(q.x) == pytest.approx(1.0) and q.y == pytest.approx(0) and q.w == pytest.approx(0, abs=1e-12)


def test_scene_has_the_table_and_each_obstacle_as_boxes():
    bottle = Object3D(
        "bottle",
        0.8,
        np.array([0.4, -0.2, 0.1]),
        Rotation.from_euler("z", 90, degrees=True).as_quat(),
        np.array([0.06, 0.07, 0.2]),
    )
    objects = scene_objects(API, [bottle], MoveItSettings())
    assert [o.id for o in objects] == ["table", "object_0_bottle"]
    assert all(
        o.operation == FakeCollisionObject.ADD and o.header.frame_id == "panda_link0" for o in objects
    )
    assert all(len(o.primitives) == 1 and o.primitives[0].type == FakeSolidPrimitive.BOX for o in objects)
    assert objects[0].primitives[0].dimensions == [1.05, 1.6, 0.05]
    assert objects[0].primitive_poses[0].position.z == pytest.approx(-0.025)  # top face at z = 0
    assert objects[1].primitives[0].dimensions == pytest.approx([0.06, 0.07, 0.2])
    pose = objects[1].primitive_poses[0]
    assert (pose.position.x, pose.position.y, pose.position.z) == pytest.approx((0.4, -0.2, 0.1))
    assert (pose.orientation.z, pose.orientation.w) == pytest.approx((np.sqrt(0.5), np.sqrt(0.5)))


def test_request_sets_start_state_goal_link_and_pipeline():
    arm = FakeArm()
    moveit = FakeMoveItPy(arm)
    settings = MoveItSettings(
        pipeline="pilz_industrial_motion_planner", planner_id="PTP", planning_time=1.5
    )
    tcp = np.eye(4)
    params = prepare_request(API, moveit, arm, [0.1] * 7, tcp, settings)
    start = arm.calls[0][1]
    assert arm.calls[0][0] == "start" and start.updated and start.model is moveit.model
    np.testing.assert_allclose(start.groups["panda_arm"], [0.1] * 7)
    assert arm.calls[1][0] == "goal" and arm.calls[1][2] == "panda_hand"
    assert params.namespace == "ompl_rrtc"
    assert (params.planning_pipeline, params.planner_id, params.planning_time) == (
        "pilz_industrial_motion_planner",
        "PTP",
        1.5,
    )
    assert params.max_velocity_scaling_factor == 0.5


def test_planner_applies_the_scene_plans_three_segments_and_falls_back_to_the_next_candidate():
    failing_z = 0.02 + 0.1 + 0.105  # the first candidate's pre-grasp hand height: MoveIt "fails" there
    arm = FakeArm(fail_goals=[failing_z])
    moveit = FakeMoveItPy(arm)
    planner = MoveItPlanner(moveit=moveit, api=API)
    obstacle = Object3D(
        "box", 0.9, np.array([0.6, 0.2, 0.05]), np.array([0, 0, 0, 1.0]), np.array([0.1] * 3)
    )
    result = planner.plan([_candidate(0.02), _candidate(0.04)], [obstacle], start_joints=[0.0] * 7)
    assert moveit.groups == ["panda_arm"]
    assert [o.id for o in moveit.applied] == ["table", "object_0_box"] and moveit.scene_updates == 1
    assert result.success and result.chosen_index == 1 and result.planner == "moveit"
    assert "candidate 0" in result.failures[0] and "pre-grasp" in result.failures[0]
    # transit then approach, each +0.1 rad over 1 s, joined at the pre-grasp
    np.testing.assert_allclose(result.trajectory.times, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(result.trajectory.positions[-1], [0.2] * 7)
    np.testing.assert_allclose(result.lift_trajectory.positions[0], [0.2] * 7)
    np.testing.assert_allclose(result.lift_trajectory.positions[-1], [0.3] * 7)
    goals_z = [call[1].pose.position.z for call in arm.calls if call[0] == "goal"]
    assert goals_z == pytest.approx([failing_z, 0.04 + 0.1 + 0.105, 0.04 + 0.105, 0.04 + 0.15 + 0.105])


@pytest.mark.skipif(moveit_available(), reason="moveit_py is importable here, so the factory builds it")
def test_factory_says_moveit_py_is_missing_and_names_the_alternatives():
    with pytest.raises(ValueError, match="moveit_py.*embedded"):
        make_planner("moveit")


def test_factory_rejects_unknown_names_and_builds_poses_only():
    with pytest.raises(ValueError, match="unknown planner 'rrt'.*poses_only"):
        make_planner("rrt")
    planner = make_planner("poses_only")
    result = planner.plan([_candidate()])
    assert (
        result.success
        and result.chosen_index == 0
        and result.trajectory.empty
        and result.planner == "poses_only"
    )
    box = Object3D(
        "cube", 0.9, np.array([0.5, 0.0, 0.025]), np.array([0, 0, 0, 1.0]), np.array([0.04, 0.04, 0.05])
    )
    assert planner.plan_for(box).candidates[0].kind == "top_down"
    far = Object3D(
        "cube", 0.9, np.array([1.5, 0.0, 0.025]), np.array([0, 0, 0, 1.0]), np.array([0.04, 0.04, 0.05])
    )
    refused = planner.plan_for(far)
    assert not refused.success and "reach" in refused.message
