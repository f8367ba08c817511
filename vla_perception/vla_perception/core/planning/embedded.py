"""The ``embedded`` backend: roboplan (Pinocchio IK, collision checking, RRT-Connect, TOPP-RA).

Loads pybullet_data's Franka Panda URDF, the model the simulator uses. The URDF has no SRDF, so
the self-collision pairs that can never touch (Franka's own fr3 SRDF list, renamed) are disabled
here; without that the arm is "in collision" in every configuration. Obstacles: the table (a box
whose top is at ``table_z``, in front of the robot base so the base does not touch it) and the
other objects as boxes. The target object itself is not an obstacle: the fingers enclose it.

Per candidate, in rank order: collision-checked IK for the pre-grasp (seeded from the start),
a straight Cartesian approach pre-grasp -> grasp by IK seeded waypoint to waypoint with no
restarts (restarts jump between arm configurations; every joint step is checked against
``max_joint_step``), RRT-Connect start -> pre-grasp with collision step 0.01, shortcutting with
step 0.01 (roboplan's default 0.05 cuts through thin obstacles), TOPP-RA time parameterisation,
then a dense re-check of the timed trajectory. The lift is a Cartesian segment the same way.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from vla_perception.core import robot
from vla_perception.core.grasp import GraspCandidate, GraspParams, pose_matrix
from vla_perception.core.planning.base import (
    PANDA_ARM_JOINTS,
    PANDA_READY,
    GraspPlanner,
    PlanningFailure,
    Trajectory,
)
from vla_perception.core.types import Object3D

IK_SAFETY_TIMEOUT = 1.0  # seconds; a solve normally takes well under 10 ms
GROUP = "panda_arm"
TCP_FRAME = "panda_grasptarget"
BASE_FRAME = robot.BASE_FRAME
_NEVER_COLLIDING = (
    "link0:link1 link0:link2 link0:link3 link0:link4 link1:link2 link1:link3 link1:link4 link2:link3 "
    "link2:link4 link2:link6 link3:link4 link3:link5 link3:link6 link3:link7 link4:link5 link4:link6 "
    "link4:link7 link4:link8 link5:link6 link5:link7 link6:link7 link6:link8 link7:link8 hand:leftfinger "
    "hand:rightfinger leftfinger:rightfinger hand:link3 hand:link4 hand:link6 hand:link7 hand:link8 "
    "leftfinger:link3 leftfinger:link4 leftfinger:link6 leftfinger:link7 leftfinger:link8 link3:rightfinger "
    "link4:rightfinger link6:rightfinger link7:rightfinger link8:rightfinger"
)


def panda_urdf_path() -> str:
    import pybullet_data

    return os.path.join(pybullet_data.getDataPath(), "franka_panda", "panda.urdf")


def panda_srdf() -> str:
    pairs = (pair.split(":") for pair in _NEVER_COLLIDING.split())
    disabled = "".join(
        f'<disable_collisions link1="panda_{a}" link2="panda_{b}" reason="Never"/>' for a, b in pairs
    )
    return (
        f'<robot name="panda"><group name="{GROUP}"><chain base_link="panda_link0" tip_link="panda_link8"/>'
        f"</group>{disabled}</robot>"
    )


def load_panda_scene(urdf_path: Optional[str] = None):
    """Roboplan scene of the Panda with its arm group ``panda_arm`` and sane self-collision pairs."""
    from roboplan.core import Scene, loadUrdfSceneDescription

    urdf_path = urdf_path or panda_urdf_path()
    scene = Scene("panda", loadUrdfSceneDescription(urdf_path, [os.path.dirname(urdf_path)]))
    scene.importSrdf(panda_srdf())
    return scene


def box_transform(position, quaternion=(0.0, 0.0, 0.0, 1.0)) -> np.ndarray:
    return pose_matrix(np.asarray(position, float), np.asarray(quaternion, float))


class EmbeddedPlanner(GraspPlanner):
    name = "embedded"

    def __init__(
        self,
        grasp_params: GraspParams = GraspParams(),
        urdf_path: Optional[str] = None,
        table_x: tuple[float, float] = (0.15, 1.2),
        table_y: tuple[float, float] = (-0.8, 0.8),
        table_thickness: float = 0.05,
        obstacle_padding: float = 0.01,
        rrt_time: float = 2.0,
        collision_step: float = 0.01,
        approach_steps: int = 10,
        max_joint_step: float = 0.3,
        ik_attempts: int = 4,
        velocity_scale: float = 0.5,
        acceleration_scale: float = 0.5,
        seed: int = 0,
    ):
        super().__init__(grasp_params)
        self.scene = load_panda_scene(urdf_path)
        self.obstacle_padding = obstacle_padding
        self.rrt_time = rrt_time
        self.collision_step = collision_step
        self.approach_steps = approach_steps
        self.max_joint_step = max_joint_step
        self.ik_attempts = ik_attempts
        self.velocity_scale, self.acceleration_scale = velocity_scale, acceleration_scale
        self.seed = seed
        self._obstacle_names: list[str] = []  # this request's obstacles, removed by _end
        self._add_table(table_x, table_y, table_thickness)

    def _add_table(self, table_x, table_y, thickness) -> None:
        from roboplan.core import Box

        centre = [
            (table_x[0] + table_x[1]) / 2,
            (table_y[0] + table_y[1]) / 2,
            self.grasp_params.table_z - thickness / 2,
        ]
        box = Box(table_x[1] - table_x[0], table_y[1] - table_y[0], thickness)
        self.scene.addBoxGeometry(
            "table", "universe", box, box_transform(centre), np.array([0.6, 0.5, 0.4, 1.0])
        )

    # ---- helpers on configurations ----
    def full(self, q, finger: float = 0.04) -> np.ndarray:
        full = self.scene.toFullJointPositions(GROUP, np.asarray(q, float))
        full[len(PANDA_ARM_JOINTS) :] = finger
        return full

    def tcp_pose(self, q) -> np.ndarray:
        return np.asarray(self.scene.forwardKinematics(self.full(q), TCP_FRAME))

    def in_collision(self, q, finger: float = 0.04) -> bool:
        return bool(self.scene.hasCollisions(self.full(q, finger)))

    # ---- planning (the candidate loop is GraspPlanner.plan) ----
    def _begin(self, obstacles: Sequence[Object3D], start_joints, target) -> np.ndarray:
        start = np.asarray(start_joints if start_joints is not None else PANDA_READY, float)
        self._obstacle_names = self._add_obstacles(obstacles)
        if self.in_collision(start):
            raise PlanningFailure("the start configuration is in collision (with the table or an object)")
        return start

    def _end(self) -> None:
        for name in self._obstacle_names:
            self.scene.removeGeometry(name)
        self._obstacle_names = []

    def _add_obstacles(self, obstacles: Sequence[Object3D]) -> list[str]:
        from roboplan.core import Box

        names = []
        for index, obj in enumerate(obstacles):
            name = f"obstacle_{index}"
            size = np.asarray(obj.size, float) + 2 * self.obstacle_padding
            self.scene.addBoxGeometry(
                name,
                "universe",
                Box(*size),
                box_transform(obj.position, obj.orientation),
                np.array([0.8, 0.2, 0.2, 1.0]),
            )
            names.append(name)
        # the environment may touch itself (objects stand on the table); only the robot is checked against it
        environment = ["table"] + names
        pairs = [(a, b) for i, a in enumerate(environment) for b in environment[i + 1 :]]
        if pairs:
            self.scene.setCollisions(pairs, False)
        return names

    def _plan_candidate(
        self, candidate: GraspCandidate, start: np.ndarray
    ) -> tuple[Trajectory, Trajectory, None]:
        finger = min(candidate.width / 2.0, 0.04)
        self.scene.setJointPositions(self.full(start, finger))
        approach_path = None
        for attempt in range(self.ik_attempts):
            pregrasp_q = self._ik(candidate.matrix("pregrasp"), start, restarts=5, seed=self.seed + attempt)
            if pregrasp_q is None:
                raise PlanningFailure("no collision-free IK solution for the pre-grasp pose")
            approach_path = self._cartesian(
                pregrasp_q, candidate.matrix("pregrasp"), candidate.matrix("grasp")
            )
            if approach_path is not None:
                break
        if approach_path is None:
            raise PlanningFailure("no continuous collision-free straight approach from pre-grasp to grasp")
        transit = self._rrt(start, pregrasp_q)
        trajectory = self._time(np.vstack([transit, approach_path[1:]]), finger)
        lift_path = self._cartesian(
            approach_path[-1], candidate.matrix("grasp"), candidate.matrix("lift"), check_collisions=False
        )
        if lift_path is None:
            raise PlanningFailure("no continuous straight lift from the grasp")
        return trajectory, self._time(lift_path, finger, check=False), None

    def _ik(
        self,
        target: np.ndarray,
        seed_q: np.ndarray,
        restarts: int,
        seed: int = 0,
        check_collisions: bool = True,
    ) -> Optional[np.ndarray]:
        from roboplan.core import CartesianConfiguration, JointConfiguration
        from roboplan.simple_ik import SimpleIk, SimpleIkOptions

        # Bounded by iterations (roboplan's max_iters per restart), not by the clock: a 0.02 s limit
        # made plans fail on a busy machine (20/30 picks at load 20) that succeed on an idle one.
        # max_time only guards against a pathological solve.
        options = SimpleIkOptions(
            group_name=GROUP, max_restarts=restarts, max_time=IK_SAFETY_TIMEOUT, check_collisions=check_collisions
        )
        solver = SimpleIk(self.scene, options)
        solver.setRngSeed(seed)
        solution = JointConfiguration()
        goal = CartesianConfiguration(BASE_FRAME, TCP_FRAME, target)
        try:
            found = solver.solveIk(goal, JointConfiguration(list(PANDA_ARM_JOINTS), seed_q), solution)
        except RuntimeError:  # roboplan raises when it cannot sample a collision-free restart
            return None
        return np.asarray(solution.positions, float) if found else None

    def _cartesian(
        self, q_start, pose_start, pose_end, check_collisions: bool = True
    ) -> Optional[np.ndarray]:
        """Joint waypoints along the straight TCP line; None on an IK failure or a joint jump."""
        path = [np.asarray(q_start, float)]
        for k in range(1, self.approach_steps + 1):
            pose = pose_start.copy()
            pose[:3, 3] = (
                pose_start[:3, 3] + (pose_end[:3, 3] - pose_start[:3, 3]) * k / self.approach_steps
            )
            q = self._ik(pose, path[-1], restarts=0, check_collisions=check_collisions)
            if q is None or np.max(np.abs(q - path[-1])) > self.max_joint_step:
                return None
            path.append(q)
        return np.array(path)

    def _rrt(self, start: np.ndarray, goal: np.ndarray) -> np.ndarray:
        from roboplan.core import JointConfiguration, PathShortcutter, PathShortcuttingOptions
        from roboplan.rrt import RRT, RRTOptions

        options = RRTOptions(
            group_name=GROUP,
            rrt_connect=True,
            collision_check_step_size=self.collision_step,
            max_planning_time=self.rrt_time,
        )
        rrt = RRT(self.scene, options)
        rrt.setRngSeed(self.seed)
        names = list(PANDA_ARM_JOINTS)
        try:
            path = rrt.plan(JointConfiguration(names, start), JointConfiguration(names, goal))
        except RuntimeError as error:
            raise PlanningFailure(f"RRT-Connect found no path to the pre-grasp ({error})") from error
        if not path.positions:
            raise PlanningFailure("RRT-Connect found no path to the pre-grasp")
        shortcutter = PathShortcutter(
            self.scene,
            PathShortcuttingOptions(group_name=GROUP, max_step_size=self.collision_step, seed=self.seed),
        )
        return np.array(shortcutter.shortcut(path).positions)

    def _time(self, waypoints: np.ndarray, finger: float, check: bool = True) -> Trajectory:
        from roboplan.core import JointPath
        from roboplan.toppra import PathParameterizerTOPPRA, TOPPRAOptions

        path = JointPath()
        path.joint_names = list(PANDA_ARM_JOINTS)
        path.positions = [np.asarray(q, float) for q in waypoints]
        options = TOPPRAOptions(
            dt=0.02, velocity_scale=self.velocity_scale, acceleration_scale=self.acceleration_scale
        )
        try:
            timed = PathParameterizerTOPPRA(self.scene, GROUP).generate(path, options)
        except RuntimeError as error:
            raise PlanningFailure(f"time parameterisation failed ({error})") from error
        times, positions = np.array(timed.times), np.array(timed.positions)
        distinct = np.concatenate([[True], np.diff(times) > 1e-6])  # TOPP-RA can repeat its last sample time
        trajectory = Trajectory(list(timed.joint_names), positions[distinct], times[distinct])
        if check and self.first_collision(trajectory.positions, finger) is not None:
            raise PlanningFailure("the timed trajectory collides (spline left the checked path)")
        return trajectory

    def first_collision(self, positions: np.ndarray, finger: float = 0.04) -> Optional[int]:
        """Index of the first segment of ``positions`` whose dense interpolation collides, else None."""
        from roboplan.core import hasCollisionsAlongPath

        for index in range(len(positions) - 1):
            if hasCollisionsAlongPath(
                self.scene,
                self.full(positions[index], finger),
                self.full(positions[index + 1], finger),
                self.collision_step,
            ):
                return index
        return None


def orientation_error(pose_a: np.ndarray, pose_b: np.ndarray) -> float:
    return float(
        (Rotation.from_matrix(pose_a[:3, :3]).inv() * Rotation.from_matrix(pose_b[:3, :3])).magnitude()
    )
