"""The ``moveit`` backend: MoveIt 2 through ``moveit_py`` (only where it imports; not on this machine).

Request construction is a set of pure functions over an ``api`` namespace holding the message
and moveit_py classes (``MoveItApi.load()`` imports the real ones), so it is tested here against a
small fake of moveit_py's documented API (test_planning_moveit_contract.py). The calls used:
``MoveItPy.get_planning_component(group)``, ``.get_robot_model()``, ``.get_planning_scene_monitor()``
whose ``read_write()`` context gives a scene with ``apply_collision_object(msg)`` and
``current_state.update()``; ``RobotState(model).set_joint_group_positions(group, q)`` and
``.update()``; ``PlanningComponent.set_start_state(robot_state=...)``,
``.set_goal_state(pose_stamped_msg=..., pose_link=...)``, ``.plan(single_plan_parameters=...)``;
``PlanRequestParameters(moveit, namespace)`` with ``planning_pipeline``, ``planner_id``,
``planning_time``, ``max_velocity_scaling_factor``, ``max_acceleration_scaling_factor``; and
``plan_result.trajectory.get_robot_trajectory_msg().joint_trajectory``.

Goals are for ``panda_hand`` (MoveIt's panda end-effector link), converted from our TCP poses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Optional, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from vla_perception.core.grasp import TCP_OFFSET, GraspCandidate, GraspParams, hand_pose_from_tcp
from vla_perception.core.planning.base import PANDA_READY, GraspPlanner, PlanResult, Trajectory
from vla_perception.core.types import Object3D


@dataclass(frozen=True)
class MoveItSettings:
    group: str = "panda_arm"
    pose_link: str = "panda_hand"
    frame_id: str = "panda_link0"
    pipeline: str = "ompl"
    planner_id: str = "RRTConnectkConfigDefault"
    parameter_namespace: str = "ompl_rrtc"  # moveit_py's PlanRequestParameters namespace in its YAML
    planning_time: float = 2.0
    velocity_scale: float = 0.5
    acceleration_scale: float = 0.5
    table_size: tuple[float, float, float] = (1.05, 1.6, 0.05)
    table_centre: tuple[float, float, float] = (0.675, 0.0, -0.025)
    tcp_offset: float = TCP_OFFSET


class MoveItApi(SimpleNamespace):
    """The classes the request needs: PoseStamped, Pose, CollisionObject, SolidPrimitive, RobotState, ..."""

    @classmethod
    def load(cls) -> "MoveItApi":
        from geometry_msgs.msg import Pose, PoseStamped
        from moveit.core.robot_state import RobotState
        from moveit.planning import MoveItPy, PlanRequestParameters
        from moveit_msgs.msg import CollisionObject
        from shape_msgs.msg import SolidPrimitive

        return cls(
            Pose=Pose,
            PoseStamped=PoseStamped,
            CollisionObject=CollisionObject,
            SolidPrimitive=SolidPrimitive,
            RobotState=RobotState,
            MoveItPy=MoveItPy,
            PlanRequestParameters=PlanRequestParameters,
        )


def pose_msg(api, matrix: np.ndarray):
    pose = api.Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in matrix[:3, 3])
    x, y, z, w = Rotation.from_matrix(matrix[:3, :3]).as_quat()
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (
        float(v) for v in (x, y, z, w)
    )
    return pose


def goal_pose(api, tcp_pose: np.ndarray, settings: MoveItSettings):
    """PoseStamped of ``settings.pose_link`` (panda_hand) that puts the TCP at ``tcp_pose``."""
    stamped = api.PoseStamped()
    stamped.header.frame_id = settings.frame_id
    stamped.pose = pose_msg(api, hand_pose_from_tcp(tcp_pose, settings.tcp_offset))
    return stamped


def box_object(api, object_id: str, frame_id: str, size, matrix: np.ndarray):
    collision = api.CollisionObject()
    collision.header.frame_id = frame_id
    collision.id = object_id
    box = api.SolidPrimitive()
    box.type = api.SolidPrimitive.BOX
    box.dimensions = [float(v) for v in size]
    collision.primitives.append(box)
    collision.primitive_poses.append(pose_msg(api, matrix))
    collision.operation = api.CollisionObject.ADD
    return collision


def scene_objects(api, obstacles: Sequence[Object3D], settings: MoveItSettings) -> list:
    """Table and obstacle boxes as CollisionObject messages in the planning frame."""
    table = np.eye(4)
    table[:3, 3] = settings.table_centre
    objects = [box_object(api, "table", settings.frame_id, settings.table_size, table)]
    for index, obj in enumerate(obstacles):
        matrix = np.eye(4)
        matrix[:3, :3] = Rotation.from_quat(obj.orientation).as_matrix()
        matrix[:3, 3] = obj.position
        objects.append(box_object(api, f"object_{index}_{obj.label}", settings.frame_id, obj.size, matrix))
    return objects


def apply_scene(moveit, objects: Sequence) -> None:
    with moveit.get_planning_scene_monitor().read_write() as scene:
        for collision in objects:
            scene.apply_collision_object(collision)
        scene.current_state.update()


def robot_state(api, moveit, joints: Sequence[float], settings: MoveItSettings):
    state = api.RobotState(moveit.get_robot_model())
    state.set_joint_group_positions(settings.group, np.asarray(joints, float))
    state.update()
    return state


def plan_parameters(api, moveit, settings: MoveItSettings):
    params = api.PlanRequestParameters(moveit, settings.parameter_namespace)
    params.planning_pipeline = settings.pipeline
    params.planner_id = settings.planner_id
    params.planning_time = settings.planning_time
    params.max_velocity_scaling_factor = settings.velocity_scale
    params.max_acceleration_scaling_factor = settings.acceleration_scale
    return params


def prepare_request(api, moveit, arm, start_joints, tcp_pose: np.ndarray, settings: MoveItSettings):
    """Set start state and pose goal on ``arm``; return the plan parameters for ``arm.plan``."""
    arm.set_start_state(robot_state=robot_state(api, moveit, start_joints, settings))
    arm.set_goal_state(pose_stamped_msg=goal_pose(api, tcp_pose, settings), pose_link=settings.pose_link)
    return plan_parameters(api, moveit, settings)


def trajectory_from_plan(plan_result) -> Trajectory:
    message = plan_result.trajectory.get_robot_trajectory_msg().joint_trajectory
    positions = np.array([list(point.positions) for point in message.points], float)
    times = np.array(
        [point.time_from_start.sec + point.time_from_start.nanosec * 1e-9 for point in message.points]
    )
    return Trajectory(list(message.joint_names), positions, times)


def concatenate(first: Trajectory, second: Trajectory) -> Trajectory:
    if first.empty:
        return second
    times = np.concatenate([first.times, second.times[1:] + first.times[-1]])
    return Trajectory(first.joint_names, np.vstack([first.positions, second.positions[1:]]), times)


class MoveItPlanner(GraspPlanner):
    name = "moveit"

    def __init__(
        self,
        grasp_params: GraspParams = GraspParams(),
        settings: MoveItSettings = MoveItSettings(),
        moveit=None,
        api=None,
        node_name: str = "vla_moveit_py",
    ):
        super().__init__(grasp_params)
        self.settings = settings
        self.api = api or MoveItApi.load()
        self.moveit = moveit or self.api.MoveItPy(node_name=node_name)
        self.arm = self.moveit.get_planning_component(settings.group)

    def _segment(self, start, tcp_pose: np.ndarray, what: str) -> Trajectory:
        params = prepare_request(self.api, self.moveit, self.arm, start, tcp_pose, self.settings)
        result = self.arm.plan(single_plan_parameters=params)
        if not result:
            raise RuntimeError(f"MoveIt found no plan to the {what}")
        return trajectory_from_plan(result)

    def plan(
        self,
        candidates: Sequence[GraspCandidate],
        obstacles: Sequence[Object3D] = (),
        start_joints: Optional[Sequence[float]] = None,
    ) -> PlanResult:
        started = time.monotonic()
        start = list(start_joints if start_joints is not None else PANDA_READY)
        apply_scene(self.moveit, scene_objects(self.api, obstacles, self.settings))
        failures = []
        for index, candidate in enumerate(candidates):
            try:
                transit = self._segment(start, candidate.matrix("pregrasp"), "pre-grasp")
                approach = self._segment(transit.positions[-1], candidate.matrix("grasp"), "grasp")
                lift = self._segment(approach.positions[-1], candidate.matrix("lift"), "lift")
            except RuntimeError as error:
                failures.append(f"candidate {index} ({candidate.kind}): {error}")
                continue
            return PlanResult(
                True,
                f"planned candidate {index} ({candidate.kind}) with MoveIt",
                self.name,
                list(candidates),
                index,
                concatenate(transit, approach),
                lift,
                time.monotonic() - started,
                failures,
            )
        return PlanResult(
            False,
            "no candidate could be planned: " + "; ".join(failures),
            self.name,
            list(candidates),
            failures=failures,
            planning_time=time.monotonic() - started,
        )
