"""The ``moveit`` backend: MoveIt 2 through ``moveit_py`` (only where it imports; not on this machine).

A pick the way MoveIt's own pick pipelines do it, per grasp candidate:

1. open the gripper: the hand group to its SRDF named state ``open``;
2. free-space move to the pre-grasp (OMPL, pose goal for ``panda_hand``);
3. allow collisions between the hand links and the target, then a straight approach to the grasp
   (Pilz ``LIN``; when the Pilz pipeline is not configured, an OMPL pose goal, with the reason logged);
4. close the gripper (named state ``close``);
5. straight lift (Pilz ``LIN``, same fallback).

Every segment starts where the previous one ends (a RobotTrajectory's last waypoint); the first
starts from a copy of the planning scene's current state, so every joint (fingers included) is set.
``execute`` runs the segments with ``MoveItPy.execute`` and attaches the target to the hand once the
gripper has closed on it. Our collision objects carry the ``vla_`` id prefix: each plan first
detaches and removes every object with that prefix, then adds the table, the obstacles and the target.

moveit_py changed between Humble and Iron; the generation is chosen at run time from what the
binding accepts (``ApiGeneration.detect``), see test_planning_moveit_contract.py for the sources.
Request construction takes an ``api`` namespace of the message and moveit_py classes
(``MoveItApi.load()`` imports the real ones), so the contract test can pass fakes.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Optional, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from vla_perception.core.grasp import TCP_OFFSET, GraspCandidate, GraspParams, hand_pose_from_tcp
from vla_perception.core.planning.base import (
    GraspPlanner,
    PlannerUnavailable,
    PlanningFailure,
    PlanResult,
    Trajectory,
)
from vla_perception.core.planning.moveit_config import MOVEIT_NODE_NAME, MoveItConfig
from vla_perception.core.types import Object3D


@dataclass(frozen=True)
class MoveItSettings:
    arm_group: str = "panda_arm"
    hand_group: str = "hand"
    open_state: str = "open"  # the hand group's SRDF named states (moveit_resources' panda.srdf)
    close_state: str = "close"
    pose_link: str = "panda_hand"
    hand_links: tuple[str, ...] = ("panda_hand", "panda_leftfinger", "panda_rightfinger")
    frame_id: str = "panda_link0"
    free_pipeline: str = "ompl"
    free_planner_id: str = "RRTConnectkConfigDefault"
    free_namespace: str = "vla_free"  # PlanRequestParameters namespaces (Iron+) in config/moveit_py.yaml
    line_pipeline: str = "pilz_industrial_motion_planner"
    line_planner_id: str = "LIN"
    line_namespace: str = "vla_line"
    planning_time: float = 2.0
    velocity_scale: float = 0.5
    acceleration_scale: float = 0.5
    table_size: tuple[float, float, float] = (1.05, 1.6, 0.05)
    table_centre: tuple[float, float, float] = (0.675, 0.0, -0.025)
    tcp_offset: float = TCP_OFFSET
    id_prefix: str = "vla_"

    ROBOT_NAMES = ("arm_group", "hand_group", "open_state", "close_state", "pose_link", "hand_links", "frame_id",
                   "tcp_offset")

    @classmethod
    def from_config(cls, config: Optional[MoveItConfig]) -> "MoveItSettings":
        """The robot's names from the MoveIt parameters' ``vla_grasp.*`` (config/moveit_py.yaml: the Panda's)."""
        values = config.parameters if config is not None else {}
        names = {name: values[f"vla_grasp.{name}"] for name in cls.ROBOT_NAMES if f"vla_grasp.{name}" in values}
        if "hand_links" in names:
            names["hand_links"] = tuple(names["hand_links"])
        return cls(**names)


class MoveItApi(SimpleNamespace):
    """The message and moveit_py classes the requests need."""

    @classmethod
    def load(cls) -> "MoveItApi":
        from geometry_msgs.msg import Pose, PoseStamped
        from moveit.core.robot_state import RobotState
        from moveit.planning import MoveItPy, PlanRequestParameters
        from moveit_msgs.msg import AttachedCollisionObject, CollisionObject
        from shape_msgs.msg import SolidPrimitive

        return cls(Pose=Pose, PoseStamped=PoseStamped, CollisionObject=CollisionObject,
                   AttachedCollisionObject=AttachedCollisionObject, SolidPrimitive=SolidPrimitive,
                   RobotState=RobotState, MoveItPy=MoveItPy, PlanRequestParameters=PlanRequestParameters)


@dataclass(frozen=True)
class ApiGeneration:
    """The moveit_py calls that differ between Humble and Iron-or-newer.

    Humble: ``PlanRequestParameters(moveit)``, ``plan(parameters=...)``,
    ``execute(group_name, robot_trajectory, blocking=True)``. Iron+: ``PlanRequestParameters(moveit, ns)``,
    ``plan(single_plan_parameters=...)``, ``execute(robot_trajectory, controllers=[])``. All three
    changed together (moveit2 humble vs iron branches), so the constructor's arity tells them apart.
    """

    humble: bool

    @classmethod
    def detect(cls, api, moveit, namespace: str) -> tuple["ApiGeneration", Any]:
        """Probe the binding: (generation, the PlanRequestParameters it built for ``namespace``)."""
        try:
            return cls(humble=False), api.PlanRequestParameters(moveit, namespace)
        except TypeError:  # pybind: "incompatible constructor arguments" -> the one-argument Humble binding
            return cls(humble=True), api.PlanRequestParameters(moveit)

    @property
    def name(self) -> str:
        return "humble" if self.humble else "iron+"

    def parameters(self, api, moveit, namespace: str):
        return api.PlanRequestParameters(moveit) if self.humble else api.PlanRequestParameters(moveit, namespace)

    def plan(self, component, parameters):
        if self.humble:
            return component.plan(parameters=parameters)
        return component.plan(single_plan_parameters=parameters)

    def execute(self, moveit, trajectory, group: str):
        if self.humble:
            return moveit.execute(group, trajectory, blocking=True)
        return moveit.execute(trajectory, controllers=[])


# ---- messages ----------------------------------------------------------------------------------
def pose_msg(api, matrix: np.ndarray):
    pose = api.Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in matrix[:3, 3])
    x, y, z, w = Rotation.from_matrix(matrix[:3, :3]).as_quat()
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (
        float(v) for v in (x, y, z, w))
    return pose


def goal_pose(api, tcp_pose: np.ndarray, settings: MoveItSettings):
    """PoseStamped of ``settings.pose_link`` (panda_hand) that puts the TCP at ``tcp_pose``."""
    stamped = api.PoseStamped()
    stamped.header.frame_id = settings.frame_id
    stamped.pose = pose_msg(api, hand_pose_from_tcp(tcp_pose, settings.tcp_offset))
    return stamped


def object_matrix(obj: Object3D) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_quat(obj.orientation).as_matrix()
    matrix[:3, 3] = obj.position
    return matrix


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


def remove_object(api, object_id: str, frame_id: str):
    collision = api.CollisionObject()
    collision.header.frame_id = frame_id
    collision.id = object_id
    collision.operation = api.CollisionObject.REMOVE
    return collision


def attached_object(api, object_id: str, settings: MoveItSettings, operation):
    """Attach (ADD) the world object ``object_id`` to the hand, or detach it (REMOVE)."""
    attached = api.AttachedCollisionObject()
    attached.link_name = settings.pose_link
    attached.object.id = object_id
    attached.object.header.frame_id = settings.frame_id
    attached.object.operation = operation
    attached.touch_links = list(settings.hand_links)
    return attached


def object_id(settings: MoveItSettings, kind: str, label: str, index: Optional[int] = None) -> str:
    number = "" if index is None else f"{index}_"
    return f"{settings.id_prefix}{kind}_{number}{label.replace(' ', '_')}"


def scene_objects(api, obstacles: Sequence[Object3D], settings: MoveItSettings,
                  target: Optional[Object3D] = None) -> list:
    """Table, obstacles and target as CollisionObject ADD messages in the planning frame, ids prefixed."""
    table = np.eye(4)
    table[:3, 3] = settings.table_centre
    objects = [box_object(api, f"{settings.id_prefix}table", settings.frame_id, settings.table_size, table)]
    for index, obj in enumerate(obstacles):
        objects.append(box_object(api, object_id(settings, "obstacle", obj.label, index), settings.frame_id,
                                  obj.size, object_matrix(obj)))
    if target is not None:
        objects.append(box_object(api, object_id(settings, "target", target.label), settings.frame_id,
                                  target.size, object_matrix(target)))
    return objects


# ---- trajectories ------------------------------------------------------------------------------
def last_state(robot_trajectory):
    """The final waypoint (a RobotState) of a RobotTrajectory; its ``__getitem__`` takes size_t indices."""
    return robot_trajectory[len(robot_trajectory) - 1]


def trajectory_from_robot_trajectory(robot_trajectory) -> Trajectory:
    message = robot_trajectory.get_robot_trajectory_msg().joint_trajectory
    positions = np.array([list(point.positions) for point in message.points], float)
    times = np.array([point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
                      for point in message.points])
    return Trajectory(list(message.joint_names), positions, times)


def concatenate(first: Trajectory, second: Trajectory) -> Trajectory:
    if first.empty:
        return second
    times = np.concatenate([first.times, second.times[1:] + first.times[-1]])
    return Trajectory(first.joint_names, np.vstack([first.positions, second.positions[1:]]), times)


@dataclass(frozen=True)
class Segment:
    name: str  # open, transit, approach, close, lift
    group: str
    trajectory: Any  # moveit_py RobotTrajectory


@dataclass(frozen=True)
class MoveItPlan:
    """What ``MoveItPlanner.execute`` runs: the segments in order, and the target's scene id."""

    segments: tuple[Segment, ...]
    target_id: Optional[str]


class MoveItPlanner(GraspPlanner):
    name = "moveit"
    executes = True

    def __init__(
        self,
        grasp_params: GraspParams = GraspParams(),
        settings: Optional[MoveItSettings] = None,  # None: MoveItSettings.from_config(config)
        moveit=None,
        api=None,
        config: Optional[MoveItConfig] = None,
        node_name: str = MOVEIT_NODE_NAME,
        namespace: str = "",
        log: Callable[[str], None] = logging.getLogger(__name__).info,
    ):
        super().__init__(grasp_params)
        settings = settings or MoveItSettings.from_config(config)
        self.settings, self.log = settings, log
        self._target_id: Optional[str] = None  # this pick's target in the scene
        self.api = api or self._load_api()
        if moveit is None:
            moveit = self._start_moveit(node_name, namespace)
        self.moveit = moveit
        self.arm = moveit.get_planning_component(settings.arm_group)
        self.hand = moveit.get_planning_component(settings.hand_group)
        self.scene_monitor = moveit.get_planning_scene_monitor()
        self.generation, self.free = ApiGeneration.detect(self.api, moveit, settings.free_namespace)
        self._configure(self.free, settings.free_pipeline, settings.free_planner_id)
        pilz_problem = config.pilz_problem() if config is not None else None
        if pilz_problem:
            self.line = self.free
            log(f"moveit: straight approach and lift fall back to free-space {settings.free_pipeline} pose goals "
                f"(not guaranteed straight): Pilz LIN is not available: {pilz_problem}")
        else:
            self.line = self.generation.parameters(self.api, moveit, settings.line_namespace)
            self._configure(self.line, settings.line_pipeline, settings.line_planner_id)
        log(f"moveit: moveit_py API generation {self.generation.name}; groups {settings.arm_group} and "
            f"{settings.hand_group}; scene objects prefixed '{settings.id_prefix}'")

    @staticmethod
    def _load_api() -> MoveItApi:
        try:
            return MoveItApi.load()
        except ImportError as error:
            raise PlannerUnavailable(f"a module moveit_py needs is missing: {error}") from error

    def _start_moveit(self, node_name: str, namespace: str):
        try:
            return self.api.MoveItPy(node_name=node_name, name_space=namespace.rstrip("/"))
        except Exception as error:  # pybind turns MoveItCpp's std::runtime_error into RuntimeError
            raise PlannerUnavailable(f"MoveItPy could not start: {error}") from error

    def _configure(self, parameters, pipeline: str, planner_id: str) -> None:
        s = self.settings
        parameters.planning_pipeline = pipeline
        parameters.planner_id = planner_id
        parameters.planning_time = s.planning_time
        parameters.max_velocity_scaling_factor = s.velocity_scale
        parameters.max_acceleration_scaling_factor = s.acceleration_scale

    # ---- the scene ----
    def _edit_scene(self, edit: Callable[[Any], None]) -> None:
        with self.scene_monitor.read_write() as scene:
            edit(scene)
            scene.current_state.update()

    def _clear_our_objects(self, scene) -> None:
        """Detach and remove every collision object whose id has our prefix (earlier picks' objects)."""
        prefix, message = self.settings.id_prefix, scene.planning_scene_message
        for attached in message.robot_state.attached_collision_objects:
            if attached.object.id.startswith(prefix):
                scene.process_attached_collision_object(
                    attached_object(self.api, attached.object.id, self.settings, self.api.CollisionObject.REMOVE))
                scene.apply_collision_object(remove_object(self.api, attached.object.id, self.settings.frame_id))
        for collision in message.world.collision_objects:
            if collision.id.startswith(prefix):
                scene.apply_collision_object(remove_object(self.api, collision.id, self.settings.frame_id))

    def _hand_contacts(self, scene, target_id: Optional[str], allowed: bool) -> None:
        if target_id is None:
            return
        matrix = scene.allowed_collision_matrix
        for link in self.settings.hand_links:
            if allowed:
                matrix.set_entry(link, target_id, True)
            else:
                matrix.remove_entry(link, target_id)

    def _begin(self, obstacles, start_joints, target):
        """Fresh scene objects for this pick; the start is the scene's current state (``start_joints`` unused)."""
        objects = scene_objects(self.api, obstacles, self.settings, target)
        target_id = objects[-1].id if target is not None else None

        def reset(scene):
            self._clear_our_objects(scene)
            for collision in objects:
                scene.apply_collision_object(collision)

        self._edit_scene(reset)
        self._target_id = target_id
        with self.scene_monitor.read_only() as scene:
            start = copy.copy(scene.current_state)
        start.update()
        return start

    def _end(self) -> None:
        """Forbid hand-target contacts again: the target stays an obstacle until it is grasped."""
        target_id = self._target_id
        self._edit_scene(lambda scene: self._hand_contacts(scene, target_id, False))

    # ---- planning ----
    def _segment(self, component, start, goal: dict, parameters, what: str):
        component.set_start_state(robot_state=start)
        component.set_goal_state(**goal)
        solution = self.generation.plan(component, parameters)
        if not solution:
            raise PlanningFailure(f"MoveIt found no plan {what} (error code {solution.error_code.val})")
        return solution.trajectory

    def _pose_goal(self, tcp_pose: np.ndarray) -> dict:
        return {"pose_stamped_msg": goal_pose(self.api, tcp_pose, self.settings),
                "pose_link": self.settings.pose_link}

    def _plan_candidate(self, candidate: GraspCandidate, start) -> tuple[Trajectory, Trajectory, MoveItPlan]:
        s, target_id = self.settings, self._target_id
        self._edit_scene(lambda scene: self._hand_contacts(scene, target_id, False))
        straight = "along a straight line" if self.line is not self.free else "(free-space fallback for LIN)"
        opened = self._segment(self.hand, start, {"configuration_name": s.open_state}, self.free,
                               f"to open the gripper (named state '{s.open_state}')")
        transit = self._segment(self.arm, last_state(opened), self._pose_goal(candidate.matrix("pregrasp")),
                                self.free, "to the pre-grasp")
        self._edit_scene(lambda scene: self._hand_contacts(scene, target_id, True))
        approach = self._segment(self.arm, last_state(transit), self._pose_goal(candidate.matrix("grasp")),
                                 self.line, f"{straight} to the grasp")
        closed = self._segment(self.hand, last_state(approach), {"configuration_name": s.close_state}, self.free,
                               f"to close the gripper (named state '{s.close_state}')")
        lift = self._segment(self.arm, last_state(closed), self._pose_goal(candidate.matrix("lift")),
                             self.line, f"{straight} to the lift")
        segments = (Segment("open", s.hand_group, opened), Segment("transit", s.arm_group, transit),
                    Segment("approach", s.arm_group, approach), Segment("close", s.hand_group, closed),
                    Segment("lift", s.arm_group, lift))
        return (concatenate(trajectory_from_robot_trajectory(transit), trajectory_from_robot_trajectory(approach)),
                trajectory_from_robot_trajectory(lift), MoveItPlan(segments, target_id))

    # ---- execution ----
    def execute(self, plan: PlanResult) -> str:
        """Run the plan's segments in order; the target is attached to the hand before the lift."""
        moveit_plan: MoveItPlan = plan.backend_plan
        if not isinstance(moveit_plan, MoveItPlan):
            raise RuntimeError("this plan has no MoveIt trajectories to execute")
        for segment in moveit_plan.segments:
            if segment.name == "lift" and moveit_plan.target_id is not None:
                self._edit_scene(lambda scene: self._attach(scene, moveit_plan.target_id))
            status = self.generation.execute(self.moveit, segment.trajectory, segment.group)
            if not status:
                raise RuntimeError(f"MoveIt could not execute the {segment.name} segment ({status.status})")
        return "executed with MoveIt: " + ", ".join(segment.name for segment in moveit_plan.segments)

    def _attach(self, scene, target_id: str) -> None:
        self._hand_contacts(scene, target_id, False)  # touch_links cover the hand once attached
        scene.process_attached_collision_object(
            attached_object(self.api, target_id, self.settings, self.api.CollisionObject.ADD))
