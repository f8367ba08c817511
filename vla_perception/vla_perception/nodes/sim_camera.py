"""sim_camera: a pybullet tabletop with a Panda, published as an RGB-D camera, with ground truth.

Publishes ``image`` (rgb8), ``depth`` (32FC1 metres) and ``camera_info`` with one stamp per
frame, and ``joint_states``; services ``~/ground_truth`` (names, true 3D boxes and 2D boxes
of the visible objects in the latest frame, or in a recent frame named by its stamp),
``~/execute`` (run a GraspPlan: approach, close, lift, report whether the object rose) and
``~/reset`` (rebuild the scene). With ``object_motion`` > 0 the objects slide between frames
(a scene that moves while a pick looks at it).
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from vla_perception import names
from vla_perception.bridge.image import cv2_to_imgmsg
from vla_perception.bridge.messages import detections_to_msg, objects_to_msg, pose_to_msg, trajectory_from_msg
from vla_perception.bridge.transforms import broadcast_static_camera
from vla_perception.core import robot
from vla_perception.core.parameters import ParamSpec, in_range, non_negative_int, one_of, positive_int
from vla_perception.core.types import Detection, Object3D, VlaInputError
from vla_perception.nodes.lifecycle import GuardedNode, run_node, user_errors
from vla_perception.sim import world
from vla_perception.sim.grasp_execution import execute_grasp
from vla_perception.sim.objects import default_objects, random_objects
from vla_perception.sim.scene import CameraConfig, TabletopScene
from vla_perception_interfaces.srv import ExecuteGrasp, GetGroundTruth

MIN_VISIBLE_PIXELS = 50  # an object must show this many pixels to count as visible
FRAMES_KEPT = 40  # recent frames whose ground truth ~/ground_truth can still give by stamp

PARAMS = [
    ParamSpec("rate", 2.0, "frames per second (one render takes about 0.25 s on a CPU)", in_range(0.01, 30.0)),
    ParamSpec("scene", "default", "default (red mug, cube, duck, box, tray) or random", one_of("default", "random")),
    ParamSpec("seed", 0, "seed of object placement (and of the random object set)", non_negative_int),
    ParamSpec("num_objects", 4, "objects in a random scene", positive_int),
    ParamSpec("camera_eye", list(world.DEFAULT_CAMERA_EYE), "camera position in the world frame (m)"),
    ParamSpec("camera_target", list(world.DEFAULT_CAMERA_TARGET), "point the camera looks at (world, m)"),
    ParamSpec("fov_deg", world.CAMERA_FOV_DEG, "vertical field of view (degrees)", in_range(10.0, 120.0)),
    ParamSpec("width", world.IMAGE_WIDTH, "image width (px)", positive_int),
    ParamSpec("height", world.IMAGE_HEIGHT, "image height (px)", positive_int),
    ParamSpec("frame_id", world.CAMERA_OPTICAL_FRAME, "frame_id of the images (the optical frame)"),
    ParamSpec("world_frame", world.WORLD_FRAME, "frame of the robot base and of world poses"),
    ParamSpec("object_motion", 0.0, "objects slide this far (m) along the world y axis from one frame to the next, "
              "cycling through motion_positions places centred on where they settled (0: still)", in_range(0.0, 0.2)),
    ParamSpec("motion_positions", 5, "places the sliding objects cycle through", positive_int),
]

DECLARED_PARAMETERS = PARAMS
# what the node is built from once (timer, camera and its static transform); the scene's own
# parameters may be set at run time and take effect at the next ~/reset
FIXED_AT_START = ("rate", "camera_eye", "camera_target", "fov_deg", "width", "height", "frame_id", "world_frame")


@dataclass
class Rendered:
    """One published frame and the simulator's truth about it."""

    header: Header
    frame: object  # sim.scene.Frame
    truths: list


class SimCamera(GuardedNode):
    def __init__(self):
        super().__init__(names.SIM_CAMERA)
        self.declare_specs(PARAMS, read_only=FIXED_AT_START)
        self.params = self.read_specs(PARAMS)
        self._lock = threading.Lock()  # pybullet is not thread-safe: renders and executions take turns
        self._recent: collections.deque[Rendered] = collections.deque(maxlen=FRAMES_KEPT)
        self._frames_rendered = 0
        self.scene = self._build_scene()
        self._image_pub = self.create_publisher(Image, "image", qos_profile_sensor_data)
        self._depth_pub = self.create_publisher(Image, "depth", qos_profile_sensor_data)
        self._info_pub = self.create_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)
        self._joints_pub = self.create_publisher(JointState, "joint_states", 10)
        services = MutuallyExclusiveCallbackGroup()
        self.create_service(GetGroundTruth, names.GROUND_TRUTH.private, self._ground_truth, callback_group=services)
        self.create_service(ExecuteGrasp, names.EXECUTE.private, self._execute, callback_group=services)
        self.create_service(Trigger, names.RESET.private, self._reset, callback_group=services)
        self.create_timer(1.0 / self.params["rate"], self._publish_frame,
                          callback_group=MutuallyExclusiveCallbackGroup())
        self._user_errors = user_errors()
        self._static_tf = broadcast_static_camera(self, self.params["world_frame"], self.params["frame_id"],
                                                  *self.scene.camera_pose())

    def _build_scene(self) -> TabletopScene:
        p = self.params
        camera = CameraConfig(eye=tuple(p["camera_eye"]), target=tuple(p["camera_target"]), width=p["width"],
                              height=p["height"], fov_deg=p["fov_deg"])
        rng = np.random.default_rng(p["seed"])
        objects = default_objects() if p["scene"] == "default" else random_objects(rng, p["num_objects"])
        scene = TabletopScene(objects, camera, seed=p["seed"])
        position, orientation = scene.camera_pose()
        self.get_logger().info(f"scene '{p['scene']}' seed {p['seed']}: {', '.join(scene.bodies)}; camera at "
                               f"{np.round(position, 3).tolist()} quat {np.round(orientation, 4).tolist()} "
                               f"in {p['world_frame']}")
        return scene

    # ----- publishing --------------------------------------------------------------------------
    def _publish_frame(self) -> None:
        with self._lock:
            self._move_objects()
            frame = self.scene.render()
            truths = self.scene.ground_truth(frame)
            joints = self.scene.joint_positions()
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.params["frame_id"])
        self._recent.append(Rendered(header, frame, truths))
        self._image_pub.publish(cv2_to_imgmsg(frame.rgb, "rgb8", header))
        self._depth_pub.publish(cv2_to_imgmsg(frame.depth, "32FC1", header))
        self._info_pub.publish(self._camera_info(frame, header))
        self._joints_pub.publish(JointState(header=Header(stamp=header.stamp, frame_id=self.params["world_frame"]),
                                            name=list(robot.ARM_JOINT_NAMES), position=joints.tolist()))

    def _move_objects(self) -> None:
        step = self.params["object_motion"]
        if step > 0:
            places = self.params["motion_positions"]
            place = self._frames_rendered % places - (places - 1) / 2  # centred on where they settled
            self.scene.shift_objects([0.0, step * place, 0.0])
        self._frames_rendered += 1

    @staticmethod
    def _camera_info(frame, header) -> CameraInfo:
        cam = frame.intrinsics
        k = cam.K
        projection = np.hstack([k, np.zeros((3, 1))])
        return CameraInfo(header=header, width=cam.width, height=cam.height, distortion_model="plumb_bob",
                          d=[0.0] * 5, k=k.ravel().tolist(), r=np.eye(3).ravel().tolist(),
                          p=projection.ravel().tolist())

    # ----- services ------------------------------------------------------------------------------
    def _answer(self, response, work):
        try:
            work()
            response.success = True
        except self._user_errors as error:
            response.success, response.message = False, str(error)
        except Exception as error:  # noqa: BLE001 - the simulator keeps running for the next request
            self.get_logger().error(f"request failed: {type(error).__name__}: {error}")
            response.success, response.message = False, f"internal error: {type(error).__name__}: {error}"
        return response

    def _ground_truth(self, request, response):
        def work():
            rendered = self._rendered_at(request.stamp)
            frame, header = rendered.frame, rendered.header
            visible = [t for t in rendered.truths if t.box is not None and t.visible_pixels >= MIN_VISIBLE_PIXELS]
            response.header = header
            response.names = [t.name for t in visible]
            objects = [Object3D(t.label, 1.0, t.position_camera, t.orientation_camera, t.size, t.visible_pixels,
                                1.0, t.box) for t in visible]
            response.objects = objects_to_msg(objects, header)
            detections = [Detection(t.label, 1.0, t.box, phrase=t.name) for t in visible]
            response.detections = detections_to_msg(detections, header, (frame.rgb.shape[1], frame.rgb.shape[0]),
                                                    model_id="ground_truth")
            response.world_poses = [pose_to_msg(t.position_world, t.orientation_world) for t in visible]
            response.camera_pose = pose_to_msg(frame.camera_position, frame.camera_orientation)
            response.world_frame = self.params["world_frame"]
            response.message = f"{len(visible)} visible object(s)"

        return self._answer(response, work)

    def _rendered_at(self, stamp) -> Rendered:
        recent = list(self._recent)
        if not recent:
            raise VlaInputError("no frame rendered yet: wait for the first image")
        if stamp.sec == 0 and stamp.nanosec == 0:
            return recent[-1]
        for rendered in recent:
            if rendered.header.stamp == stamp:
                return rendered
        raise VlaInputError(f"no frame stamped {stamp.sec}.{stamp.nanosec:09d} among the last {len(recent)} "
                            "rendered: ask sooner, or with a zero stamp for the latest")

    def _execute(self, request, response):
        def work():
            plan = request.plan
            if not plan.trajectory.points:
                raise VlaInputError("the plan has no trajectory (planned in poses_only mode?)")
            if not 0 <= plan.chosen_candidate < len(plan.candidates):
                raise VlaInputError(f"chosen_candidate {plan.chosen_candidate} is not one of the "
                                    f"{len(plan.candidates)} candidates")
            if request.object_name and request.object_name not in self.scene.bodies:
                raise VlaInputError(f"no object '{request.object_name}' (have {sorted(self.scene.bodies)})")
            approach = trajectory_from_msg(plan.trajectory, robot.ARM_JOINT_NAMES)
            lift = trajectory_from_msg(plan.lift_trajectory, robot.ARM_JOINT_NAMES) if plan.lift_trajectory.points \
                else None
            width = plan.candidates[plan.chosen_candidate].gripper_width
            if not 0.0 <= width <= world.GRIPPER_MAX_OPENING:  # also refuses NaN
                raise VlaInputError(f"gripper_width {width} is not within [0, {world.GRIPPER_MAX_OPENING}] m")
            with self._lock:
                report = execute_grasp(self.scene, approach, lift, width, request.object_name)
            response.lifted, response.lift_height = report.lifted, float(report.lift_height)
            response.measured_object = report.object_name
            response.message = str(report)

        return self._answer(response, work)

    def _reset(self, request, response):
        def work():
            with self._lock:
                self.params = self.read_specs(PARAMS)  # `ros2 param set` then reset: e.g. another seed
                self.scene.close()
                self.scene = self._build_scene()
                self._recent.clear()
                self._frames_rendered = 0
            response.message = f"scene rebuilt: {', '.join(self.scene.bodies)}"

        return self._answer(response, work)

    def destroy_node(self):
        with self._lock:
            self.scene.close()
        return super().destroy_node()


def main(args=None):
    run_node(SimCamera, args)


if __name__ == "__main__":
    main()
