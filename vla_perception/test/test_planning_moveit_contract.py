"""CONTRACT test of the moveit backend against fakes of moveit_py's real bindings, both API generations.

moveit_py cannot be installed here, so this does not run MoveIt. The fakes (test/moveit_fakes.py)
copy the pybind signatures of moveit2's humble branch and of its iron/jazzy/kilted/main branches
(the upstream files are listed there) and reject unknown attributes through ``__slots__``, as the
real classes do; every test that talks to moveit_py runs against both generations. What this
proves: the calls, keyword names, request contents, their order and the scene edits match those
bindings. What it cannot: that MoveIt plans or executes them on a robot.
"""
import logging
import sys
import types

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import moveit_fakes as fakes
from vla_perception.core.grasp import GraspCandidate
from vla_perception.core.planning import PlannerUnavailable, choose_planner, make_planner, moveit_available
from vla_perception.core.planning.moveit import ApiGeneration, MoveItPlanner, MoveItSettings, goal_pose, scene_objects
from vla_perception.core.planning.moveit_config import MoveItConfig, params_files_on_command_line
from vla_perception.core.types import Object3D

TOP_DOWN = Rotation.from_euler("x", 180, degrees=True)
HAND_ABOVE_TCP = 0.105  # panda_hand sits this far behind the TCP along the hand's z (pointing down here)
PILZ_CONFIG = MoveItConfig(parameters={"robot_description": "<robot/>", "robot_description_semantic": "<robot/>",
                                       "planning_pipelines.pipeline_names": ["ompl", "pilz_industrial_motion_planner"],
                                       "pilz_industrial_motion_planner.planning_plugins": ["x"]})
NO_PILZ_CONFIG = MoveItConfig(parameters={"robot_description": "<robot/>", "robot_description_semantic": "<robot/>",
                                          "planning_pipelines.pipeline_names": ["ompl"]})


@pytest.fixture(params=fakes.GENERATIONS)
def generation(request):
    return request.param


def _moveit(generation, **options):
    return (fakes.MoveItPyHumble if generation == "humble" else fakes.MoveItPyIron)(**options)


def _planner(generation, moveit, config=PILZ_CONFIG, log=lambda line: None):
    return MoveItPlanner(moveit=moveit, api=fakes.api(generation), config=config, log=log)


def _candidate(z=0.02):
    return GraspCandidate("top_down", np.array([0.5, 0.1, z]), TOP_DOWN.as_quat(),
                          np.array([0.5, 0.1, z + 0.1]), np.array([0.5, 0.1, z + 0.15]), 0.05, 1.0)


def _box(label, position, size=(0.04, 0.04, 0.05)):
    return Object3D(label, 0.9, np.array(position, float), np.array([0, 0, 0, 1.0]), np.array(size, float))


def _hand_z(tcp_z):
    return pytest.approx(tcp_z + HAND_ABOVE_TCP)


# ---- the fakes themselves can catch mismatches -------------------------------------------------
def test_fakes_reject_what_the_real_bindings_reject(generation):
    moveit = _moveit(generation)
    parameters_class = fakes.api(generation).PlanRequestParameters
    with pytest.raises(TypeError):  # the other generation's constructor
        parameters_class(moveit) if generation != "humble" else parameters_class(moveit, "ns")
    parameters = parameters_class(moveit, "ns") if generation != "humble" else parameters_class(moveit)
    with pytest.raises(AttributeError):
        parameters.namespace = "ompl_rrtc"  # no such field on PlanRequestParameters
    with pytest.raises(AttributeError):
        fakes.CollisionObject().name = "cup"  # moveit_msgs/CollisionObject has id, not name
    component = moveit.get_planning_component("panda_arm")
    with pytest.raises(TypeError):  # the other generation's keyword
        component.plan(parameters=parameters) if generation != "humble" else component.plan(
            single_plan_parameters=parameters)
    trajectory = fakes.RobotTrajectory("panda_arm", [], [])
    with pytest.raises(TypeError):  # the other generation's execute
        moveit.execute(trajectory, controllers=[]) if generation == "humble" else moveit.execute(
            "panda_arm", trajectory, blocking=True)


def test_the_api_generation_is_detected_from_the_binding(generation):
    moveit = _moveit(generation)
    detected, parameters = ApiGeneration.detect(fakes.api(generation), moveit, "vla_free")
    assert detected.humble == (generation == "humble")
    expected = "plan_request_params" if generation == "humble" else "vla_free.plan_request_params"
    assert moveit.parameter_namespaces == [expected]
    assert isinstance(parameters, fakes.api(generation).PlanRequestParameters)


# ---- messages ----------------------------------------------------------------------------------
def test_goal_is_the_hand_pose_behind_the_tcp_in_the_base_frame():
    tcp = np.eye(4)
    tcp[:3, :3] = TOP_DOWN.as_matrix()
    tcp[:3, 3] = [0.5, 0.1, 0.02]
    goal = goal_pose(fakes.api("iron+"), tcp, MoveItSettings())
    assert goal.header.frame_id == "panda_link0"
    assert (goal.pose.position.x, goal.pose.position.y) == pytest.approx((0.5, 0.1))
    assert goal.pose.position.z == _hand_z(0.02)
    q = goal.pose.orientation
    assert abs(q.x) == pytest.approx(1.0) and q.y == pytest.approx(0) and q.w == pytest.approx(0, abs=1e-12)


def test_scene_objects_are_prefixed_boxes_table_obstacles_and_target():
    bottle = Object3D("bottle", 0.8, np.array([0.4, -0.2, 0.1]), Rotation.from_euler("z", 90, degrees=True).as_quat(),
                      np.array([0.06, 0.07, 0.2]))
    objects = scene_objects(fakes.api("iron+"), [bottle], MoveItSettings(), _box("red mug", (0.5, 0.1, 0.025)))
    assert [o.id for o in objects] == ["vla_table", "vla_obstacle_0_bottle", "vla_target_red_mug"]
    assert all(o.operation == fakes.CollisionObject.ADD and o.header.frame_id == "panda_link0" for o in objects)
    assert all(len(o.primitives) == 1 and o.primitives[0].type == fakes.SolidPrimitive.BOX for o in objects)
    assert objects[0].primitives[0].dimensions == [1.05, 1.6, 0.05]
    assert objects[0].primitive_poses[0].position.z == pytest.approx(-0.025)  # top face at z = 0
    assert objects[1].primitives[0].dimensions == pytest.approx([0.06, 0.07, 0.2])
    pose = objects[1].primitive_poses[0]
    assert (pose.position.x, pose.position.y, pose.position.z) == pytest.approx((0.4, -0.2, 0.1))
    assert (pose.orientation.z, pose.orientation.w) == pytest.approx((np.sqrt(0.5), np.sqrt(0.5)))


# ---- the pick ----------------------------------------------------------------------------------
def test_pick_is_open_transit_straight_approach_close_straight_lift(generation):
    moveit = _moveit(generation)
    result = _planner(generation, moveit).plan_for(_box("cup", (0.5, 0.1, 0.025)), [_box("box", (0.6, 0.3, 0.025))])
    assert result.success and result.planner == "moveit", result.message
    grasp = result.chosen
    steps = [(r.group, r.goal["configuration_name"], r.pipeline, r.planner_id) for r in moveit.requests]
    assert steps == [("hand", "open", "ompl", "RRTConnectkConfigDefault"),
                     ("panda_arm", None, "ompl", "RRTConnectkConfigDefault"),
                     ("panda_arm", None, "pilz_industrial_motion_planner", "LIN"),
                     ("hand", "close", "ompl", "RRTConnectkConfigDefault"),
                     ("panda_arm", None, "pilz_industrial_motion_planner", "LIN")]
    hand_z = [tcp[2] - HAND_ABOVE_TCP * grasp.approach[2] for tcp in (grasp.pregrasp, grasp.position, grasp.lift)]
    goals_z = [r.goal["pose_stamped_msg"].pose.position.z for r in moveit.requests if r.group == "panda_arm"]
    assert goals_z == pytest.approx(hand_z)
    # each segment starts exactly where the previous one ended
    for previous, following in zip(moveit.requests, moveit.requests[1:]):
        assert following.start.joint_positions == previous.trajectory[1].joint_positions
    # our Trajectory: transit then approach (arm joints), lift separately; each fake segment takes 1 s
    np.testing.assert_allclose(result.trajectory.times, [0.0, 1.0, 2.0])
    assert result.trajectory.joint_names == fakes.ARM
    np.testing.assert_allclose(result.trajectory.positions[-1], [hand_z[1]] * 7)  # fake IK: arm joints = hand z
    np.testing.assert_allclose(result.lift_trajectory.positions[-1], [hand_z[2]] * 7)


def test_the_start_is_the_planning_scenes_current_state_with_every_joint_set(generation):
    moveit = _moveit(generation)
    moveit.monitor.scene.current_state.set_joint_group_positions("panda_arm", [0.3] * 7)
    moveit.monitor.scene.current_state.set_joint_group_positions("hand", [0.01, 0.01])
    result = _planner(generation, moveit).plan([_candidate()], start_joints=[9.0] * 7)  # MoveIt's state wins
    first = moveit.requests[0].start
    assert result.success
    assert first.joint_positions == {**{j: 0.3 for j in fakes.ARM}, **{f: 0.01 for f in fakes.FINGERS}}
    assert first is not moveit.monitor.scene.current_state  # a copy: planning never edits the live state


def test_lin_request_shape(generation):
    moveit = _moveit(generation)
    settings = MoveItSettings(planning_time=1.5, velocity_scale=0.2, acceleration_scale=0.3)
    planner = MoveItPlanner(settings=settings, moveit=moveit, api=fakes.api(generation), config=PILZ_CONFIG)
    assert planner.plan([_candidate(0.03)]).success
    lines = [r for r in moveit.requests if r.planner_id == "LIN"]
    assert len(lines) == 2
    for request, tcp_z in zip(lines, (0.03, 0.03 + 0.15)):
        goal = request.goal["pose_stamped_msg"]
        assert request.pipeline == "pilz_industrial_motion_planner" and request.goal["pose_link"] == "panda_hand"
        assert goal.header.frame_id == "panda_link0" and request.goal["configuration_name"] is None
        assert (goal.pose.position.x, goal.pose.position.y, goal.pose.position.z) == pytest.approx(
            (0.5, 0.1, tcp_z + HAND_ABOVE_TCP))
        assert (request.planning_time, request.velocity, request.acceleration) == (1.5, 0.2, 0.3)
    # the approach and lift keep the grasp orientation (LIN interpolates the position only here)
    orientations = {tuple(round(v, 9) for v in (o.x, o.y, o.z, o.w))
                    for o in (r.goal["pose_stamped_msg"].pose.orientation for r in lines)}
    assert len(orientations) == 1
    expected = ["plan_request_params"] * 2 if generation == "humble" else [
        "vla_free.plan_request_params", "vla_line.plan_request_params"]
    assert moveit.parameter_namespaces == expected


def test_gripper_requests_are_the_hand_groups_named_states(generation):
    moveit = _moveit(generation)
    assert _planner(generation, moveit).plan([_candidate()]).success
    hand = [r for r in moveit.requests if r.group == "hand"]
    assert [r.goal["configuration_name"] for r in hand] == ["open", "close"]
    assert all(r.goal["pose_stamped_msg"] is None and r.goal["pose_link"] is None for r in hand)
    # the SRDF's values arrive in the next segment's start: open before the transit, closed before the lift
    arm = [r for r in moveit.requests if r.group == "panda_arm"]
    assert arm[0].start.get_joint_group_positions("hand") == pytest.approx(fakes.NAMED_STATES[("hand", "open")])
    assert arm[2].start.get_joint_group_positions("hand") == pytest.approx(fakes.NAMED_STATES[("hand", "close")])


def test_hand_target_contacts_are_allowed_from_the_approach_until_the_plan_ends(generation):
    moveit = _moveit(generation)
    assert _planner(generation, moveit).plan_for(_box("cup", (0.5, 0.1, 0.025))).success
    hand_target = {frozenset((link, "vla_target_cup")) for link in MoveItSettings().hand_links}
    allowed = [r.allowed_pairs for r in moveit.requests]
    assert allowed[:2] == [set(), set()]  # open, transit: the target is an obstacle
    assert allowed[2:] == [hand_target] * 3  # approach, close, lift
    assert moveit.monitor.scene.allowed_collision_matrix.allowed_pairs() == set()  # forbidden again afterwards


def test_scene_hygiene_over_two_consecutive_picks(generation):
    moveit = _moveit(generation)
    planner = _planner(generation, moveit)
    scene = moveit.monitor.scene
    first = planner.plan_for(_box("cup", (0.5, 0.1, 0.025)), [_box("box", (0.6, 0.3, 0.025)),
                                                                 _box("can", (0.4, -0.3, 0.025))])
    assert first.success
    assert set(scene.world) == {"shelf", "vla_table", "vla_obstacle_0_box", "vla_obstacle_1_can", "vla_target_cup"}
    planner.execute(first)
    assert set(scene.attached) == {"vla_target_cup"}  # grasped: attached to the hand
    assert scene.attached["vla_target_cup"].link_name == "panda_hand"
    assert set(scene.attached["vla_target_cup"].touch_links) == set(MoveItSettings().hand_links)
    scene.log.clear()
    second = planner.plan_for(_box("bottle", (0.45, -0.1, 0.025)), [_box("box", (0.7, 0.2, 0.025))])
    assert second.success
    assert set(scene.world) == {"shelf", "vla_table", "vla_obstacle_0_box", "vla_target_bottle"}
    assert scene.attached == {}
    # the earlier pick's objects (the held cup detached first) all went before any of this pick's arrived
    first_add = next(i for i, (_, operation, _) in enumerate(scene.log) if operation == fakes.CollisionObject.ADD
                     and scene.log[i][0] == "world")
    removed = [(kind, object_id) for kind, operation, object_id in scene.log[:first_add]]
    assert removed[0] == ("attached", "vla_target_cup")
    assert {object_id for kind, object_id in removed if kind == "world"} == {
        "vla_table", "vla_obstacle_0_box", "vla_obstacle_1_can", "vla_target_cup"}
    assert all(object_id != "shelf" for _, _, object_id in scene.log)  # never touch others' objects


def test_execute_runs_the_segments_in_order_and_attaches_the_target_before_the_lift(generation):
    moveit = _moveit(generation)
    planner = _planner(generation, moveit)
    result = planner.plan_for(_box("cup", (0.5, 0.1, 0.025)))
    message = planner.execute(result)
    assert message == "executed with MoveIt: open, transit, approach, close, lift"
    assert [e["group"] for e in moveit.executed] == ["hand", "panda_arm", "panda_arm", "hand", "panda_arm"]
    assert [e["trajectory"] for e in moveit.executed] == [r.trajectory for r in moveit.requests]
    assert [e["attached"] for e in moveit.executed] == [[], [], [], [], ["vla_target_cup"]]
    if generation == "humble":
        assert all(e["blocking"] is True for e in moveit.executed)
    else:
        assert all(e["controllers"] == [] for e in moveit.executed)


def test_a_failed_execution_names_the_segment(generation):
    moveit = _moveit(generation)
    planner = _planner(generation, moveit)
    result = planner.plan_for(_box("cup", (0.5, 0.1, 0.025)))
    moveit.execution_fails.add("hand")
    with pytest.raises(RuntimeError, match="open segment.*ABORTED"):
        planner.execute(result)


def test_a_failing_candidate_falls_back_to_the_next_and_resets_the_contacts(generation):
    failing_z = 0.02 + 0.1 + HAND_ABOVE_TCP  # the first candidate's pre-grasp: MoveIt "fails" there
    moveit = _moveit(generation, fail=lambda r: r.goal["pose_stamped_msg"] is not None
                     and abs(r.goal["pose_stamped_msg"].pose.position.z - failing_z) < 1e-9)
    cup = _box("cup", (0.5, 0.1, 0.02))
    result = _planner(generation, moveit).plan([_candidate(0.02), _candidate(0.04)], target=cup)
    assert result.success and result.chosen_index == 1
    assert "candidate 0" in result.failures[0] and "pre-grasp" in result.failures[0]
    second_transit = [r for r in moveit.requests if r.group == "panda_arm"][1]
    assert second_transit.allowed_pairs == set()


def test_without_pilz_the_straight_segments_fall_back_to_ompl_and_say_why(generation):
    moveit = _moveit(generation, pipelines=("ompl",))
    lines = []
    assert _planner(generation, moveit, NO_PILZ_CONFIG, lines.append).plan([_candidate()]).success
    assert {(r.pipeline, r.planner_id) for r in moveit.requests} == {("ompl", "RRTConnectkConfigDefault")}
    fallback = [line for line in lines if "fall back" in line]
    assert len(fallback) == 1 and "pilz_industrial_motion_planner" in fallback[0] and "['ompl']" in fallback[0]


def test_with_pilz_configured_but_lin_failing_the_candidate_fails_rather_than_curving(generation):
    moveit = _moveit(generation, fail=lambda r: r.planner_id == "LIN")
    result = _planner(generation, moveit).plan([_candidate()])
    assert not result.success and "straight line to the grasp" in result.message
    assert [r.pipeline for r in moveit.requests if r.group == "panda_arm"] == [
        "ompl", "pilz_industrial_motion_planner"]  # transit, then the LIN approach that failed: no curved retry


def test_robot_names_come_from_the_moveit_parameters(generation):
    config = MoveItConfig(parameters={**PILZ_CONFIG.parameters, "vla_grasp.hand_group": "gripper",
                                      "vla_grasp.open_state": "wide", "vla_grasp.hand_links": ["tool"]})
    settings = MoveItSettings.from_config(config)
    assert (settings.arm_group, settings.hand_group, settings.open_state, settings.hand_links) == (
        "panda_arm", "gripper", "wide", ("tool",))
    moveit = _moveit(generation)
    planner = _planner(generation, moveit, config)
    assert planner.hand is moveit.components["gripper"] and planner.settings == settings


# ---- choosing and starting the backend ---------------------------------------------------------
def test_auto_chooses_moveit_only_with_moveit_py_and_a_config():
    assert choose_planner("auto", False, None).name == "embedded"
    importable_no_config = choose_planner("auto", True, "no MoveIt configuration: robot_description missing")
    assert importable_no_config.name == "embedded" and "robot_description" in importable_no_config.reason
    assert choose_planner("auto", True, None).name == "moveit"
    assert choose_planner("moveit", False, "whatever").name == "moveit"  # explicit: make_planner decides


@pytest.fixture
def importable_moveit(monkeypatch):
    """A ``moveit.planning`` module whose MoveItPy records that it was built, then fails like MoveItCpp does."""
    built = []

    class MoveItPy:
        def __init__(self, **kwargs):
            built.append(kwargs)
            raise RuntimeError("Unable to construct robot model. Please make sure all needed information is on "
                               "the parameter server.")

    modules = {"moveit": {}, "moveit.planning": {"MoveItPy": MoveItPy,
                                                  "PlanRequestParameters": fakes.PlanRequestParametersIron},
               "moveit.core": {}, "moveit.core.robot_state": {"RobotState": fakes.RobotState}}
    for package, names in {"geometry_msgs": ("Pose", "PoseStamped"), "shape_msgs": ("SolidPrimitive",),
                           "moveit_msgs": ("CollisionObject", "AttachedCollisionObject")}.items():
        try:
            __import__(f"{package}.msg")
        except ImportError:  # not in this venv: the fakes' messages stand in
            modules.update({package: {}, f"{package}.msg": {name: getattr(fakes, name) for name in names}})
    for name, attributes in modules.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    return built


def test_auto_with_moveit_py_importable_but_no_config_uses_embedded_and_says_why(importable_moveit):
    lines = []
    planner = make_planner("auto", argv=["grasp_orchestrator", "--ros-args", "-p", "planner:=auto"], log=lines.append)
    assert planner.name == "embedded" and importable_moveit == []  # MoveItPy never built, so nothing threw
    assert len(lines) == 1 and "moveit_py imports but no MoveIt configuration" in lines[0]
    assert "robot_description" in lines[0] and "moveit_config_package" in lines[0]


def test_auto_falls_back_when_moveitpy_itself_fails(importable_moveit, tmp_path):
    config = tmp_path / "robot.yaml"
    config.write_text("/**:\n  ros__parameters:\n    robot_description: '<robot/>'\n"
                      "    robot_description_semantic: '<robot/>'\n")
    lines = []
    planner = make_planner("auto", argv=["x", "--ros-args", "--params-file", str(config)], log=lines.append)
    assert planner.name == "embedded" and len(importable_moveit) == 1
    assert len(lines) == 1 and "Unable to construct robot model" in lines[0]


def test_explicit_moveit_without_config_names_what_is_missing(importable_moveit):
    with pytest.raises(PlannerUnavailable, match="cannot start: no MoveIt configuration: robot_description, "
                                                 "robot_description_semantic missing"):
        make_planner("moveit", argv=["x"])
    assert importable_moveit == []


@pytest.mark.skipif(moveit_available(), reason="moveit_py is importable here, so the factory builds it")
def test_explicit_moveit_without_moveit_py_names_it_and_the_alternatives():
    with pytest.raises(PlannerUnavailable, match="moveit_py.*not importable.*embedded"):
        make_planner("moveit")


def test_moveit_config_is_read_the_way_moveitpy_reads_it(tmp_path):
    own = tmp_path / "orchestrator.yaml"
    own.write_text("grasp_orchestrator:\n  ros__parameters:\n    robot_description: '<in the wrong section>'\n")
    robot = tmp_path / "robot.yaml"
    robot.write_text("/**:\n  ros__parameters:\n    robot_description: '<robot/>'\n"
                     "    planning_pipelines: {pipeline_names: [ompl]}\n"
                     "/**/vla_moveit_py:\n  ros__parameters:\n    robot_description_semantic: '<robot/>'\n")
    argv = ["x", "--ros-args", "--params-file", str(own), "-p", "a:=1", "--params-file", str(robot)]
    assert params_files_on_command_line(argv) == [str(own), str(robot)]
    only_own = MoveItConfig.from_command_line(argv[:4])
    assert "robot_description, robot_description_semantic missing" in only_own.problem()
    both = MoveItConfig.from_command_line(argv, namespace="/robot1")
    assert both.problem() is None
    assert "does not list pilz_industrial_motion_planner" in both.pilz_problem()
    assert "cannot read" in MoveItConfig.from_files([str(tmp_path / "absent.yaml")]).problem()


def test_factory_rejects_unknown_names_and_builds_poses_only():
    with pytest.raises(ValueError, match="unknown planner 'rrt'.*poses_only"):
        make_planner("rrt")
    planner = make_planner("poses_only")
    result = planner.plan([_candidate()])
    assert result.success and result.chosen_index == 0 and result.trajectory.empty and result.planner == "poses_only"
    assert planner.plan_for(_box("cube", (0.5, 0.0, 0.025))).candidates[0].kind == "top_down"
    refused = planner.plan_for(_box("cube", (1.5, 0.0, 0.025)))
    assert not refused.success and "reach" in refused.message


def test_factory_logs_its_choice_once(caplog):
    with caplog.at_level(logging.INFO):
        make_planner("poses_only")
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("planner:")] == [
        "planner: poses_only (requested)"]
