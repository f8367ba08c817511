"""pose_node: 2D detections + aligned depth + CameraInfo -> 3D object poses and sizes.

Subscribes ``detections``, ``depth`` (16UC1 mm or 32FC1 m) and ``camera_info``, paired by
timestamp (approximate time; ``message_filters`` when importable, our synchronizer
otherwise); publishes ``~/objects`` (header = the depth frame's) and ``~/markers``;
service ``~/estimate`` with explicit inputs or the latest received depth and CameraInfo.
"""
from __future__ import annotations

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from vla_perception.bridge.image import imgmsg_to_cv2
from vla_perception.bridge.markers import object_markers
from vla_perception.bridge.messages import detections_from_msg, objects_to_msg
from vla_perception.bridge.sync import make_synchronizer
from vla_perception.core.geometry import CameraIntrinsics, decode_depth
from vla_perception.core.parameters import ParamSpec, in_range, one_of, positive_int
from vla_perception.core.localise import estimate_objects
from vla_perception.core.types import VlaInputError
from vla_perception.nodes.lifecycle import VlaLifecycleNode, run_node
from vla_perception_interfaces.msg import Detection2DArray, Object3DArray
from vla_perception_interfaces.srv import EstimatePoses


class PoseNode(VlaLifecycleNode):
    PARAMS = [
        ParamSpec("depth_scale", 0.0, "metres per depth unit; 0: by encoding (16UC1 = mm, 32FC1 = m)",
                  in_range(0.0, 1000.0)),
        ParamSpec("max_range", 5.0, "depth beyond this (m) is ignored", in_range(0.01, 1000.0)),
        ParamSpec("sync_slop", 0.05, "max stamp difference (s) when pairing detections, depth, camera_info",
                  in_range(0.0, 10.0)),
        ParamSpec("sync_queue_size", 10, "messages kept per input while pairing", positive_int),
        ParamSpec("mask_source", "box", "object pixels: box (with detection masks when present)", one_of("box")),
        ParamSpec("publish_markers", True, "publish ~/markers for RViz"),
    ]

    def __init__(self):
        super().__init__("pose_node")
        self._group = ReentrantCallbackGroup()
        self._latest_depth = None
        self._latest_info = None
        self._subscriptions = []
        self._synchronizer = None
        self.create_service(EstimatePoses, "~/estimate", self._estimate, callback_group=self._group)
        self._objects_pub = self.create_lifecycle_publisher(Object3DArray, "~/objects", QoSProfile(depth=10))
        self._markers_pub = self.create_lifecycle_publisher(MarkerArray, "~/markers", QoSProfile(depth=2))

    def activate(self) -> None:
        self._synchronizer, self._subscriptions = make_synchronizer(
            self, [(Detection2DArray, "detections", QoSProfile(depth=10)),
                   (Image, "depth", qos_profile_sensor_data), (CameraInfo, "camera_info", qos_profile_sensor_data)],
            self._on_synced, self.params.sync_queue_size, self.params.sync_slop,
            taps={1: self._remember_depth, 2: self._remember_info})

    def deactivate(self) -> None:
        for subscription in self._subscriptions:
            self.destroy_subscription(subscription)
        self._subscriptions, self._synchronizer = [], None

    def _remember_depth(self, msg: Image) -> None:
        self._latest_depth = msg

    def _remember_info(self, msg: CameraInfo) -> None:
        self._latest_info = msg

    def _localise(self, detections_msg: Detection2DArray, depth_msg: Image, info_msg: CameraInfo):
        if detections_msg.header.frame_id and depth_msg.header.frame_id != detections_msg.header.frame_id:
            raise VlaInputError(
                f"detections are in frame '{detections_msg.header.frame_id}' but depth in "
                f"'{depth_msg.header.frame_id}': pose_node needs depth aligned to the colour image")
        if info_msg.width == 0 or info_msg.height == 0:
            raise VlaInputError("camera_info has zero width/height")
        cam = CameraIntrinsics.from_camera_info(info_msg)
        depth = decode_depth(imgmsg_to_cv2(depth_msg), depth_msg.encoding, self.params.depth_scale or None,
                             max_range=self.params.max_range)
        image_size = (detections_msg.image_width, detections_msg.image_height)
        objects, rejected = estimate_objects(depth, cam, detections_from_msg(detections_msg),
                                             image_size if all(image_size) else None)
        return objects_to_msg(objects, depth_msg.header), objects, rejected

    def _on_synced(self, detections_msg, depth_msg, info_msg) -> None:
        try:
            objects_msg, _, rejected = self._localise(detections_msg, depth_msg, info_msg)
        except (VlaInputError, *self._user_errors) as error:
            self.get_logger().warning(f"frame skipped: {error}", throttle_duration_sec=5.0)
            return
        self._objects_pub.publish(objects_msg)
        if self.params.publish_markers:
            self._markers_pub.publish(object_markers(self._objects_for_markers(objects_msg), objects_msg.header))

    @staticmethod
    def _objects_for_markers(objects_msg):
        from vla_perception.bridge.messages import object_from_msg

        return [object_from_msg(o) for o in objects_msg.objects]

    def _estimate(self, request, response):
        def work():
            depth = request.depth if request.depth.height > 0 else self._latest_depth
            info = request.camera_info if request.camera_info.width > 0 else self._latest_info
            if depth is None or info is None:
                missing = " and ".join(name for name, msg in (("depth", depth), ("camera_info", info)) if msg is None)
                raise VlaInputError(f"no {missing} received yet on {self.resolve_topic_name('depth')} / "
                                    f"{self.resolve_topic_name('camera_info')}: publish them or fill the request")
            response.objects, objects, rejected = self._localise(request.detections, depth, info)
            response.rejected = rejected
            response.message = f"{len(response.objects.objects)} object(s), {len(rejected)} rejected"

        return self.answer(response, work)


def main(args=None):
    run_node(PoseNode, args)


if __name__ == "__main__":
    main()
