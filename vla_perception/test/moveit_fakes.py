"""CONTRACT fakes of moveit_py and the ROS messages it takes, for test_planning_moveit_contract.py.

moveit_py cannot be installed here, so these stand in for it. Every signature below is taken
from moveit2's own pybind sources, not from our code or from memory (paths in github.com/moveit/moveit2):

- ``moveit_py/src/moveit/moveit_ros/moveit_cpp/planning_component.cpp``
  humble: ``PlanRequestParameters(moveit_cpp)`` (one positional argument; loads ``plan_request_params.*``),
  ``plan(parameters=None)``; iron, jazzy, kilted, main: ``PlanRequestParameters(moveit_cpp, ns)``,
  ``plan(single_plan_parameters=None, multi_plan_parameters=None, planning_scene=None,
  solution_selection_function=None, stopping_criterion_callback=None)``. Both:
  ``set_start_state(configuration_name=None, robot_state=None)`` (exactly one),
  ``set_goal_state(configuration_name=None, robot_state=None, pose_stamped_msg=None, pose_link=None,
  motion_plan_constraints=None)`` (one kind; pose message and link together), PlanSolution with
  ``trajectory``, ``error_code``, ``start_state`` and ``__bool__``; PlanRequestParameters'
  read-write fields planner_id, planning_pipeline, planning_attempts, planning_time,
  max_velocity_scaling_factor, max_acceleration_scaling_factor (and nothing else).
- ``moveit_py/src/moveit/moveit_ros/moveit_cpp/moveit_cpp.cpp``: ``MoveItPy(node_name="moveit_py",
  name_space="", launch_params_filepaths=<--params-file paths of sys.argv>, config_dict=None,
  provide_planning_service=True, remappings=None)``; humble: ``execute(group_name, robot_trajectory,
  blocking=True)``; iron+: ``execute(robot_trajectory, controllers)`` (no default for controllers);
  ``get_planning_component(planning_component_name)``, ``get_planning_scene_monitor()``,
  ``get_robot_model()``.
- ``moveit_py/src/moveit/moveit_ros/planning_scene_monitor/planning_scene_monitor.cpp``:
  ``read_only()`` / ``read_write()`` context managers yielding the PlanningScene.
- ``moveit_py/src/moveit/moveit_core/planning_scene/planning_scene.cpp``: ``current_state`` (reference
  to the scene's state), ``planning_scene_message``, ``apply_collision_object(collision_object_msg,
  color_msg=None)``, ``process_attached_collision_object(object)``; ``allowed_collision_matrix``
  is read-only on humble (``def_property_readonly``, reference_internal) and read-write on main.
- ``moveit_py/src/moveit/moveit_core/collision_detection/collision_matrix.cpp``:
  ``get_entry(name1, name2)``, ``set_entry(name1, name2, allowed)``, ``remove_entry(name1, name2)``.
- ``moveit_py/src/moveit/moveit_core/robot_state/robot_state.cpp``: ``RobotState(robot_model)``
  (positional), ``__copy__``, ``joint_positions`` (dict property), ``set_joint_group_positions(
  joint_model_group_name, position_values)``, ``update(force=False, type="all")``.
- ``moveit_py/src/moveit/moveit_core/robot_trajectory/robot_trajectory.cpp``: ``__getitem__(idx)``
  (size_t: no negative index), ``__len__``, ``get_robot_trajectory_msg(joint_filter=[])``.
- ``moveit_py/src/moveit/moveit_core/controller_manager/controller_manager.cpp``: ExecutionStatus
  with ``status`` and ``__bool__``.

Named states are moveit_resources' ``panda_moveit_config/config/panda.srdf`` (hand group ``open``:
panda_finger_joint1/2 = 0.035, ``close``: 0). Message fields are those of geometry_msgs, shape_msgs
and moveit_msgs (CollisionObject ADD=0 REMOVE=1). pybind classes and rosidl messages both reject
unknown attributes, so every fake here has ``__slots__``.
"""
from __future__ import annotations

import copy
from contextlib import contextmanager

import numpy as np

ARM = [f"panda_joint{i}" for i in range(1, 8)]
FINGERS = ["panda_finger_joint1", "panda_finger_joint2"]
GROUPS = {"panda_arm": ARM, "hand": FINGERS}
NAMED_STATES = {("hand", "open"): [0.035, 0.035], ("hand", "close"): [0.0, 0.0],
                ("panda_arm", "ready"): [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]}
GENERATIONS = ("humble", "iron+")


# ---- messages (rosidl classes have __slots__) ---------------------------------------------------
class _Message:
    __slots__ = ()
    _fields: dict = {}

    def __init__(self):
        for name, default in self._fields.items():
            setattr(self, name, default() if callable(default) else default)


def _message(name: str, **fields):
    return type(name, (_Message,), {"__slots__": tuple(fields), "_fields": fields})


Point = _message("Point", x=0.0, y=0.0, z=0.0)
Quaternion = _message("Quaternion", x=0.0, y=0.0, z=0.0, w=1.0)
Pose = _message("Pose", position=Point, orientation=Quaternion)
Header = _message("Header", stamp=None, frame_id="")
PoseStamped = _message("PoseStamped", header=Header, pose=Pose)
SolidPrimitive = _message("SolidPrimitive", type=0, dimensions=list)
SolidPrimitive.BOX = 1
CollisionObject = _message("CollisionObject", header=Header, pose=Pose, id="", type=None, primitives=list,
                           primitive_poses=list, meshes=list, mesh_poses=list, planes=list, plane_poses=list,
                           subframe_names=list, subframe_poses=list, operation=0)
CollisionObject.ADD, CollisionObject.REMOVE, CollisionObject.APPEND, CollisionObject.MOVE = 0, 1, 2, 3
AttachedCollisionObject = _message("AttachedCollisionObject", link_name="", object=CollisionObject,
                                   touch_links=list, detach_posture=None, weight=0.0)
World = _message("World", collision_objects=list)
RobotStateMsg = _message("RobotStateMsg", attached_collision_objects=list)
PlanningSceneMsg = _message("PlanningSceneMsg", world=World, robot_state=RobotStateMsg)
Duration = _message("Duration", sec=0, nanosec=0)
TrajectoryPoint = _message("TrajectoryPoint", positions=list, time_from_start=Duration)
JointTrajectory = _message("JointTrajectory", joint_names=list, points=list)
RobotTrajectoryMsg = _message("RobotTrajectoryMsg", joint_trajectory=JointTrajectory)
MoveItErrorCodes = _message("MoveItErrorCodes", val=1)


# ---- moveit.core -------------------------------------------------------------------------------
class RobotModel:
    __slots__ = ("name",)

    def __init__(self):
        self.name = "panda"


class RobotState:
    """Variables start unset (None), as MoveIt leaves them until something sets them."""

    __slots__ = ("_model", "_positions")

    def __init__(self, robot_model, /):
        self._model = robot_model
        self._positions = {name: None for name in ARM + FINGERS}

    def __copy__(self):
        other = RobotState(self._model)
        other._positions = dict(self._positions)
        return other

    @property
    def robot_model(self):
        return self._model

    @property
    def joint_positions(self) -> dict:
        return dict(self._positions)

    @joint_positions.setter
    def joint_positions(self, values: dict) -> None:
        self._positions.update(values)

    def set_joint_group_positions(self, joint_model_group_name, position_values):
        self._positions.update(zip(GROUPS[joint_model_group_name], map(float, position_values)))

    def get_joint_group_positions(self, joint_model_group_name):
        return np.array([self._positions[name] for name in GROUPS[joint_model_group_name]])

    def update(self, force=False, type="all"):  # noqa: A002 - the binding's argument name
        pass


class RobotTrajectory:
    __slots__ = ("joint_model_group_name", "_states", "_times")

    def __init__(self, group, states, times):
        self.joint_model_group_name, self._states, self._times = group, states, times

    def __len__(self):
        return len(self._states)

    def __getitem__(self, idx):
        if not isinstance(idx, int) or idx < 0:  # pybind: size_t argument
            raise TypeError("__getitem__(): incompatible function arguments (idx: int >= 0)")
        return self._states[idx]

    def get_robot_trajectory_msg(self, joint_filter=()):
        message = RobotTrajectoryMsg()
        message.joint_trajectory.joint_names = list(GROUPS[self.joint_model_group_name])
        for state, seconds in zip(self._states, self._times):
            point = TrajectoryPoint()
            point.positions = list(state.get_joint_group_positions(self.joint_model_group_name))
            point.time_from_start.sec = int(seconds)
            point.time_from_start.nanosec = int(round(seconds % 1 * 1e9))
            message.joint_trajectory.points.append(point)
        return message


class AllowedCollisionMatrix:
    __slots__ = ("_entries",)

    def __init__(self):
        self._entries = {}

    def get_entry(self, name1, name2):
        return self._entries.get(frozenset((name1, name2)))

    def set_entry(self, name1, name2, allowed):
        self._entries[frozenset((name1, name2))] = bool(allowed)

    def remove_entry(self, name1, name2):
        self._entries.pop(frozenset((name1, name2)), None)

    def clear(self):
        self._entries.clear()

    def allowed_pairs(self) -> set:
        return {pair for pair, allowed in self._entries.items() if allowed}


class PlanningScene:
    """World objects, attached objects and the ACM; writes are refused unless read_write() locked it."""

    __slots__ = ("_state", "_acm", "world", "attached", "writable", "log")

    def __init__(self, state):
        self._state, self._acm = state, AllowedCollisionMatrix()
        self.world, self.attached, self.writable, self.log = {}, {}, False, []

    @property
    def current_state(self):
        return self._state

    @property
    def allowed_collision_matrix(self):
        return self._acm

    @property
    def planning_scene_message(self):
        message = PlanningSceneMsg()
        message.world.collision_objects = [copy.copy(o) for o in self.world.values()]
        message.robot_state.attached_collision_objects = list(self.attached.values())
        return message

    def _write(self):
        if not self.writable:
            raise RuntimeError("scene changed outside read_write()")

    def apply_collision_object(self, collision_object_msg, color_msg=None):
        self._write()
        msg = collision_object_msg
        if msg.operation == CollisionObject.ADD:
            self.world[msg.id] = msg
        elif msg.operation == CollisionObject.REMOVE:
            if msg.id not in self.world:
                raise RuntimeError(f"removing unknown object {msg.id}")
            del self.world[msg.id]
        self.log.append(("world", msg.operation, msg.id))

    def process_attached_collision_object(self, object):  # noqa: A002 - the binding's argument name
        self._write()
        object_id = object.object.id
        if object.object.operation == CollisionObject.ADD:  # attach the existing world object
            if object_id not in self.world:
                raise RuntimeError(f"attaching unknown object {object_id}")
            self.world.pop(object_id)
            self.attached[object_id] = object
        else:  # REMOVE: detach; the object goes back into the world
            attached = self.attached.pop(object_id)
            world_object = CollisionObject()
            world_object.id = object_id
            self.world[object_id] = world_object
            del attached
        self.log.append(("attached", object.object.operation, object_id))


class PlanningSceneIron(PlanningScene):
    __slots__ = ()

    @PlanningScene.allowed_collision_matrix.setter
    def allowed_collision_matrix(self, matrix):
        self._acm = matrix


class PlanningSceneMonitor:
    __slots__ = ("scene",)

    def __init__(self, scene):
        self.scene = scene

    @contextmanager
    def read_only(self):
        yield self.scene

    @contextmanager
    def read_write(self):
        self.scene.writable = True
        try:
            yield self.scene
        finally:
            self.scene.writable = False


# ---- moveit.planning ---------------------------------------------------------------------------
class _PlanRequestParameters:
    __slots__ = ("planner_id", "planning_pipeline", "planning_attempts", "planning_time",
                 "max_velocity_scaling_factor", "max_acceleration_scaling_factor")

    def _load(self, moveit, namespace):
        moveit.parameter_namespaces.append(namespace)
        self.planner_id, self.planning_pipeline, self.planning_attempts = "", "", 5
        self.planning_time = self.max_velocity_scaling_factor = self.max_acceleration_scaling_factor = 1.0


class PlanRequestParametersHumble(_PlanRequestParameters):
    __slots__ = ()

    def __init__(self, moveit_cpp, /):
        self._load(moveit_cpp, "plan_request_params")


class PlanRequestParametersIron(_PlanRequestParameters):
    __slots__ = ()

    def __init__(self, moveit_cpp, ns, /):
        self._load(moveit_cpp, f"{ns}.plan_request_params")


class PlanSolution:
    __slots__ = ("trajectory", "error_code", "start_state")

    def __init__(self, trajectory, success: bool):
        self.trajectory, self.start_state = trajectory, None
        self.error_code = MoveItErrorCodes()
        self.error_code.val = 1 if success else 99999  # SUCCESS / FAILURE

    def __bool__(self):
        return self.error_code.val == 1


class Request:
    """What one plan() call asked for (recorded by the fake planning component)."""

    __slots__ = ("group", "start", "goal", "pipeline", "planner_id", "planning_time", "velocity", "acceleration",
                 "allowed_pairs", "trajectory")

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))


class _PlanningComponent:
    """Plans a two-waypoint trajectory from the start state to a goal state (fake IK: arm joints = hand z).

    Refuses start states with unset variables, pipelines the MoveItPy did not load, and goals
    ``moveit.fail`` names (a predicate over the Request).
    """

    __slots__ = ("group", "moveit", "_start", "_goal")

    def __init__(self, joint_model_group_name, moveit_py_instance):
        self.group, self.moveit, self._start, self._goal = joint_model_group_name, moveit_py_instance, None, None

    def set_start_state(self, configuration_name=None, robot_state=None):
        if (configuration_name is None) == (robot_state is None):
            raise ValueError("specify exactly one of configuration_name and robot_state")
        self._start = copy.copy(robot_state) if robot_state is not None else configuration_name
        return True

    def set_goal_state(self, configuration_name=None, robot_state=None, pose_stamped_msg=None, pose_link=None,
                       motion_plan_constraints=None):
        kinds = [configuration_name, robot_state, pose_stamped_msg, motion_plan_constraints]
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError("specify exactly one kind of goal")
        if (pose_stamped_msg is None) != (pose_link is None):
            raise ValueError("Must specify both message and corresponding link")
        if configuration_name is not None and (self.group, configuration_name) not in NAMED_STATES:
            raise ValueError(f"no named state '{configuration_name}' for group {self.group}")
        self._goal = {"configuration_name": configuration_name, "pose_stamped_msg": pose_stamped_msg,
                      "pose_link": pose_link}
        return True

    def _plan(self, parameters):
        start = self._start
        if not isinstance(start, RobotState) or any(v is None for v in start.joint_positions.values()):
            raise RuntimeError("start state has unset joint variables")
        with self.moveit.monitor.read_only() as scene:
            allowed = scene.allowed_collision_matrix.allowed_pairs()
        request = Request(group=self.group, start=start, goal=dict(self._goal),
                          pipeline=parameters.planning_pipeline, planner_id=parameters.planner_id,
                          planning_time=parameters.planning_time, velocity=parameters.max_velocity_scaling_factor,
                          acceleration=parameters.max_acceleration_scaling_factor, allowed_pairs=allowed)
        self.moveit.requests.append(request)
        goal = copy.copy(start)
        if self._goal["configuration_name"] is not None:
            goal.set_joint_group_positions(self.group, NAMED_STATES[(self.group, self._goal["configuration_name"])])
        else:
            goal.set_joint_group_positions(self.group, [self._goal["pose_stamped_msg"].pose.position.z] * 7)
        success = parameters.planning_pipeline in self.moveit.pipelines and not self.moveit.fail(request)
        request.trajectory = RobotTrajectory(self.group, [start, goal], [0.0, 1.0])
        return PlanSolution(request.trajectory if success else None, success)


class PlanningComponentHumble(_PlanningComponent):
    __slots__ = ()

    def plan(self, parameters=None):
        return self._plan(parameters)


class PlanningComponentIron(_PlanningComponent):
    __slots__ = ()

    def plan(self, single_plan_parameters=None, multi_plan_parameters=None, planning_scene=None,
             solution_selection_function=None, stopping_criterion_callback=None):
        return self._plan(single_plan_parameters)


class ExecutionStatus:
    __slots__ = ("status",)

    def __init__(self, status="SUCCEEDED"):
        self.status = status

    def __bool__(self):
        return self.status == "SUCCEEDED"


def _check_types(**arguments) -> None:
    """Refuse wrongly typed arguments with a TypeError, as pybind's argument conversion does."""
    for name, (value, expected) in arguments.items():
        if not isinstance(value, expected):
            raise TypeError(f"incompatible function arguments: {name} must be {expected.__name__}")


class _MoveItPy:
    """One MoveItPy: the scene starts with the arm at 'ready', fingers closed, and a foreign object."""

    __slots__ = ("model", "monitor", "components", "requests", "executed", "parameter_namespaces", "pipelines",
                 "fail", "execution_fails")
    component_class = _PlanningComponent
    scene_class = PlanningScene

    def __init__(self, node_name="moveit_py", name_space="", launch_params_filepaths=(), config_dict=None,
                 provide_planning_service=True, remappings=None, *,
                 pipelines=("ompl", "pilz_industrial_motion_planner"),
                 fail=lambda request: False):
        self.model = RobotModel()
        state = RobotState(self.model)
        state.set_joint_group_positions("panda_arm", NAMED_STATES[("panda_arm", "ready")])
        state.set_joint_group_positions("hand", [0.0, 0.0])
        self.monitor = PlanningSceneMonitor(self.scene_class(state))
        foreign = CollisionObject()
        foreign.id = "shelf"  # someone else's object: ours must never touch it
        self.monitor.scene.world["shelf"] = foreign
        self.components, self.requests, self.executed, self.parameter_namespaces = {}, [], [], []
        self.pipelines, self.fail, self.execution_fails = set(pipelines), fail, set()

    def get_planning_component(self, planning_component_name):
        return self.components.setdefault(planning_component_name,
                                           self.component_class(planning_component_name, self))

    def get_planning_scene_monitor(self):
        return self.monitor

    def get_robot_model(self):
        return self.model

    def _execute(self, group, trajectory, **details):
        with self.monitor.read_only() as scene:
            attached = sorted(scene.attached)
        self.executed.append({"group": group, "trajectory": trajectory, "attached": attached, **details})
        return ExecutionStatus("ABORTED" if group in self.execution_fails else "SUCCEEDED")


class MoveItPyHumble(_MoveItPy):
    __slots__ = ()
    component_class = PlanningComponentHumble

    def execute(self, group_name, robot_trajectory, blocking=True):
        _check_types(group_name=(group_name, str), robot_trajectory=(robot_trajectory, RobotTrajectory))
        return self._execute(group_name, robot_trajectory, blocking=blocking)


class MoveItPyIron(_MoveItPy):
    __slots__ = ()
    component_class = PlanningComponentIron
    scene_class = PlanningSceneIron

    def execute(self, robot_trajectory, controllers):
        _check_types(robot_trajectory=(robot_trajectory, RobotTrajectory), controllers=(controllers, list))
        return self._execute(robot_trajectory.joint_model_group_name, robot_trajectory, controllers=controllers)


def api(generation: str):
    """The ``MoveItApi`` fields for one generation's fakes."""
    from vla_perception.core.planning.moveit import MoveItApi

    humble = generation == "humble"
    return MoveItApi(Pose=Pose, PoseStamped=PoseStamped, CollisionObject=CollisionObject,
                     AttachedCollisionObject=AttachedCollisionObject, SolidPrimitive=SolidPrimitive,
                     RobotState=RobotState, MoveItPy=MoveItPyHumble if humble else MoveItPyIron,
                     PlanRequestParameters=PlanRequestParametersHumble if humble else PlanRequestParametersIron)
