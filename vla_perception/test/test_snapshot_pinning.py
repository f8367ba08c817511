"""One snapshot per pick, proven on a scene that moves between the frames the nodes see.

sim_camera slides every object 6 cm along y from one frame to the next (2 frames/s, cycling through six
places), and detector_node's simulation backend takes 1 s per detection, as a model would; so by the time
pose_node is asked for 3D poses, its latest depth frame shows the objects elsewhere than the frame the
detector saw. The grasp is planned (poses_only: candidates, no arm motion) by two orchestrators that differ only in
``pin_snapshot``. Pass: the chosen object's 3D centre, and the grasp, land on the object's true pose in the
frame the pick says it used, within the pose benchmark's tolerance.

Pinned, the orchestrator sends the snapshot's depth with the detections. Unpinned, pose_node itself
localises on its kept depth frame nearest the detections' stamp (``max_stamp_gap``), so detect -> estimate
also stays on one moment there; what only pinning adds (the re-rank and verify images, the camera pose
looked up at the snapshot's stamp for a moving camera) this still camera cannot show.
"""
import numpy as np
import pytest
from ros_harness import NodeProcess, ros_env, running_graph, wait_for, write_params
from test_sim_scene import CENTRE_TOL

from vla_perception import names

# The pose benchmark's tolerance (docs/pose_accuracy.md, test_sim_scene.CENTRE_TOL) for the target's kind.
TARGET, TARGET_KIND, COMMAND = "green_cube", "cube", "pick up the green cube"
TOLERANCE = max(CENTRE_TOL[TARGET_KIND], 0.010)  # + the simulated detector's box noise (bench_pose: noisy p95)
STEP, PLACES = 0.06, 6  # metres per frame, places in the cycle


@pytest.fixture(scope="module")
def moving_graph(tmp_path_factory, tiny_models_dir):
    directory = str(tmp_path_factory.mktemp("params"))

    def node(module, name, params, env=None):
        path = write_params(name, params, directory)
        return NodeProcess(f"vla_perception.nodes.{module}", ["-r", f"__node:={name}", "--params-file", path],
                           name=name, env=env)

    processes = [
        node("sim_camera", names.SIM_CAMERA, {"rate": 2.0, "object_motion": STEP, "motion_positions": PLACES}),
        node("detector_node", names.DETECTOR_NODE, {"autostart": True, "stream": False, "backend": "sim",
                                                    "sim_latency": 1.0},
             env=ros_env(VLA_PERCEPTION_MODELS=str(tiny_models_dir))),
        node("pose_node", names.POSE_NODE, {"autostart": True}),
    ] + [node("grasp_orchestrator", f"orch_{pinned}", {"planner": "poses_only", "rerank": False,
                                                       "pin_snapshot": pinned == "pinned"})
         for pinned in ("pinned", "unpinned")]
    with running_graph(processes, "snapshot_test") as client:
        wait_until_detector_and_pose_node_answer(client)
        yield client


def wait_until_detector_and_pose_node_answer(client):
    """Until detector_node answers from a camera frame and pose_node localises what it found."""
    from vla_perception_interfaces.srv import Detect, EstimatePoses, GetGroundTruth

    client.wait_for_service(GetGroundTruth, names.GROUND_TRUTH.absolute, 180.0)  # pybullet start on a busy machine

    def ready():
        try:
            detected = client.call(Detect, names.DETECT.absolute, Detect.Request(prompt="green cube"))
            return detected.success and client.call(EstimatePoses, names.ESTIMATE.absolute,
                                                    EstimatePoses.Request(detections=detected.detections)).success
        except TimeoutError:  # a node still starting on a loaded machine
            return False

    wait_for(ready, 240.0, "detector_node and pose_node answering on sim_camera frames")


def plan_pick(client, orchestrator: str):
    from vla_perception_interfaces.action import Pick

    action = client.action_client(Pick, f"/{orchestrator}/{names.PICK.name}")
    assert action.wait_for_server(timeout_sec=30.0)
    goal = action.send_goal_async(Pick.Goal(command=COMMAND))
    wait_for(goal.done, 20.0, "goal acceptance")
    result = goal.result().get_result_async()
    wait_for(result.done, 60.0, f"result of '{COMMAND}'")
    return result.result().result


def true_pose_at(client, stamp):
    """World position and size of the target in the frame rendered at ``stamp``."""
    from vla_perception_interfaces.srv import GetGroundTruth

    truth = client.call(GetGroundTruth, names.GROUND_TRUTH.absolute, GetGroundTruth.Request(stamp=stamp))
    assert truth.success, truth.message
    index = list(truth.names).index(TARGET)
    position = truth.world_poses[index].position
    size = truth.objects.objects[index].size
    return np.array([position.x, position.y, position.z]), np.array([size.x, size.y, size.z])


def test_the_scene_really_moves_between_frames(moving_graph):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    frames = moving_graph.collect(Image, "image", qos_profile_sensor_data)
    wait_for(lambda: len(frames) >= 3, 20.0, "three frames")
    positions = [true_pose_at(moving_graph, frame.header.stamp)[0] for frame in frames[-3:]]
    steps = np.abs(np.diff([p[1] for p in positions]))
    assert np.all(steps > STEP - 0.01), steps


@pytest.mark.parametrize("orchestrator", ["orch_pinned", "orch_unpinned"])
def test_the_grasp_lands_on_the_object_seen_in_the_snapshot(moving_graph, orchestrator):
    result = plan_pick(moving_graph, orchestrator)
    assert result.success, result.message
    assert result.object_found and result.object.label == "green cube"
    # the frame it says it used: its snapshot, or unpinned, the frame its detections came from
    true_centre, true_size = true_pose_at(moving_graph, result.header.stamp)
    pose = result.object.pose.position
    error = np.linalg.norm(np.array([pose.x, pose.y, pose.z]) - true_centre)
    assert error < TOLERANCE, f"3D centre {error * 1000:.0f} mm from the object"
    grasp = result.plan.candidates[result.plan.chosen_candidate].grasp.position
    offset = np.hypot(grasp.x - true_centre[0], grasp.y - true_centre[1])
    assert offset < min(true_size[:2]) / 2, f"grasp {offset * 1000:.0f} mm off the object's centre"
