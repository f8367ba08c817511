"""pose_node: 2D detections + aligned depth + CameraInfo -> 3D object poses and sizes.

Subscribes ``detections``, ``depth`` (16UC1 mm or 32FC1 m) and ``camera_info``, paired by
timestamp (approximate time; ``message_filters`` when importable, our synchronizer
otherwise); publishes ``~/objects`` (header = the depth frame's) and ``~/markers``;
service ``~/estimate`` with explicit inputs or the latest received depth and CameraInfo.
With ``mask_source: clipseg`` it also pairs the colour ``image`` and masks each box with
CLIPSeg before localising (the model loads at configure). With vision_msgs installed and
``publish_vision_msgs`` true it also publishes the objects as ``~/detections_3d``
(vision_msgs/Detection3DArray: oriented boxes in the objects' frame).
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Optional

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from vla_perception import names
from vla_perception.bridge import vision
from vla_perception.bridge.image import imgmsg_to_cv2
from vla_perception.bridge.markers import object_markers
from vla_perception.bridge.messages import detections_from_msg, objects_to_msg
from vla_perception.bridge.sync import check_stamps_close, make_synchronizer, stamp_seconds_of
from vla_perception.core.geometry import CameraIntrinsics, decode_depth
from vla_perception.core.latest_worker import LatestOnlyWorker
from vla_perception.core.limits import MAX_BOXES, MAX_IMAGE_PIXELS, check_count, check_image_size
from vla_perception.core.localise import estimate_objects
from vla_perception.core.parameters import ParamSpec, in_range, non_negative_int, one_of, positive_int
from vla_perception.core.types import VlaInputError
from vla_perception.nodes.lifecycle import VlaLifecycleNode, run_node
from vla_perception.nodes.model_node import MODEL_PARAMS
from vla_perception_interfaces.msg import Detection2DArray, Object3DArray
from vla_perception_interfaces.srv import EstimatePoses


DEPTH_HISTORY = 30  # depth frames kept so ~/estimate can use the one its detections were made on


class PoseNode(VlaLifecycleNode):
    PARAMS = [
        ParamSpec("depth_scale", 0.0, "metres per depth unit; 0: by encoding (16UC1 = mm, 32FC1 = m)",
                  in_range(0.0, 1000.0)),
        ParamSpec("max_range", 5.0, "depth beyond this (m) is ignored", in_range(0.01, 1000.0)),
        ParamSpec("sync_slop", 0.05, "max stamp difference (s) when pairing detections, depth, camera_info",
                  in_range(0.0, 10.0)),
        ParamSpec("sync_queue_size", 10, "messages kept per input while pairing", positive_int),
        ParamSpec("max_stamp_gap", 1.0, "~/estimate refuses detections and depth whose stamps are further apart "
                  "(s); it localises on the kept depth frame nearest the detections' stamp", in_range(0.0, 3600.0)),
        ParamSpec("mask_source", "box", "object pixels: box (with detection masks when present), or clipseg "
                  "(CLIPSeg masks each box from the colour image; loads a model)", one_of("box", "clipseg")),
        ParamSpec("clipseg_model", "", "CLIPSeg hub id or local path overriding the profile's (read-only after "
                  "start)", read_only=True),
        ParamSpec("mask_threshold", 0.4, "CLIPSeg probability above which a pixel is the object", in_range(0.0, 1.0)),
        ParamSpec("min_mask_pixels", 20, "a CLIPSeg mask with fewer pixels is ignored and the box kept",
                  non_negative_int),
        ParamSpec("publish_markers", True, "publish ~/markers for RViz"),
        ParamSpec("publish_vision_msgs", True, "also publish ~/detections_3d (vision_msgs/Detection3DArray) "
                  "when vision_msgs is installed"),
    ] + [spec for spec in MODEL_PARAMS if spec.name in ("profile", "device", "threads")]

    def __init__(self):
        super().__init__(names.POSE_NODE)
        self._group = ReentrantCallbackGroup()
        self._recent_depth = deque(maxlen=DEPTH_HISTORY)  # newest last
        self._latest_info = None
        self._synchronizers = {}  # (inputs, queue size, slop) -> synchronizer; see activate
        self._sync_key = None
        self._worker = None
        self.segmenter = None
        self._segmenter_lock = threading.Lock()
        self.create_service(EstimatePoses, names.ESTIMATE.private, self._estimate, callback_group=self._group)
        self._objects_pub = self.create_lifecycle_publisher(Object3DArray, names.OBJECTS.private, QoSProfile(depth=10))
        self._markers_pub = self.create_lifecycle_publisher(MarkerArray, names.POSE_MARKERS.private,
                                                            QoSProfile(depth=2))
        self._vision_pub = vision.lifecycle_publisher(self, "Detection3DArray", names.DETECTIONS_3D.private)

    def configure(self, params) -> None:
        if params.mask_source == "clipseg":
            from vla_perception.core.models import load_segmenter, resolve_model_source

            source = resolve_model_source(params.profile, "clipseg", params.clipseg_model or None)
            self.segmenter = self.log_stage(f"loading CLIPSeg {source.model_id}",
                                            lambda: load_segmenter(source, params.device, params.threads))

    def cleanup(self) -> None:
        if self.segmenter is not None:
            self.segmenter.close()
        self.segmenter = None

    def activate(self) -> None:
        inputs = [(Detection2DArray, "detections", QoSProfile(depth=10)),
                  (Image, "depth", qos_profile_sensor_data), (CameraInfo, "camera_info", qos_profile_sensor_data)]
        taps = {1: self._remember_depth, 2: self._remember_info}
        if self.segmenter is not None:
            inputs.append((Image, "image", qos_profile_sensor_data))
            taps[3] = self.remember_image
        # CLIPSeg can take longer than a frame: work on the newest matched set, never on a backlog.
        self._worker = LatestOnlyWorker(lambda synced: self._on_synced(*synced), name="pose_node-worker",
                                        on_error=self._warn_frame_skipped)
        # Subscriptions are made once per input set and gated by state, never destroyed in a transition:
        # destroying them while another executor thread's wait set holds them raises InvalidHandle.
        key = (len(inputs), self.params.sync_queue_size, self.params.sync_slop)
        if key not in self._synchronizers:
            self._synchronizers[key], _ = make_synchronizer(
                self, inputs, lambda *synced: self._submit(key, synced), self.params.sync_queue_size,
                self.params.sync_slop, taps=taps)
        self._sync_key = key

    def deactivate(self) -> None:
        self._sync_key = None
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    def _submit(self, key, synced) -> None:
        worker = self._worker
        if self.active and key == self._sync_key and worker is not None:
            worker.submit(synced)

    def _remember_depth(self, msg: Image) -> None:
        if len(msg.data) <= MAX_IMAGE_PIXELS * 4:  # the history must not hold oversized frames (32FC1: 4 B/px)
            self._recent_depth.append(msg)

    def _depth_nearest(self, stamp) -> Optional[Image]:
        """The kept depth frame nearest ``stamp``; the newest when the stamp is unset (0)."""
        frames = list(self._recent_depth)
        if not frames or not (stamp.sec or stamp.nanosec):
            return frames[-1] if frames else None
        wanted = stamp_seconds_of(stamp)
        return min(frames, key=lambda frame: abs(stamp_seconds_of(frame.header.stamp) - wanted))

    def _remember_info(self, msg: CameraInfo) -> None:
        self._latest_info = msg

    def _localise(self, detections_msg: Detection2DArray, depth_msg: Image, info_msg: CameraInfo, image=None):
        if detections_msg.header.frame_id and depth_msg.header.frame_id != detections_msg.header.frame_id:
            raise VlaInputError(
                f"detections are in frame '{detections_msg.header.frame_id}' but depth in "
                f"'{depth_msg.header.frame_id}': pose_node needs depth aligned to the colour image")
        if info_msg.width == 0 or info_msg.height == 0:
            raise VlaInputError("camera_info has zero width/height")
        check_stamps_close(detections_msg.header.stamp, depth_msg.header.stamp, self.params.max_stamp_gap)
        check_image_size(depth_msg.width, depth_msg.height, "depth image")
        if (info_msg.width, info_msg.height) != (depth_msg.width, depth_msg.height):
            raise VlaInputError(f"camera_info is {info_msg.width}x{info_msg.height} but the depth image is "
                                f"{depth_msg.width}x{depth_msg.height}: they must describe the same stream")
        check_count(len(detections_msg.detections), MAX_BOXES, "detections")
        cam = CameraIntrinsics.from_camera_info(info_msg)
        depth = decode_depth(imgmsg_to_cv2(depth_msg), depth_msg.encoding, self.params.depth_scale or None,
                             max_range=self.params.max_range)
        image_size = (detections_msg.image_width, detections_msg.image_height)
        detections, kept_boxes = detections_from_msg(detections_msg), []
        if self.segmenter is not None:
            detections, kept_boxes = self._with_masks(detections, image, image_size)
        objects, rejected = estimate_objects(depth, cam, detections, image_size if all(image_size) else None)
        return objects_to_msg(objects, depth_msg.header), rejected, kept_boxes

    def _with_masks(self, detections, image, image_size):
        from vla_perception.core.models.segmenter import refine_detections

        height, width = image.shape[:2]
        if all(image_size) and image_size != (width, height):
            raise VlaInputError(f"colour image is {width}x{height} but the detections were made on "
                                f"{image_size[0]}x{image_size[1]}: CLIPSeg needs the detections' own image")
        with self._segmenter_lock:  # the streaming worker and ~/estimate share one model
            return refine_detections(self.segmenter, image, detections, self.params.mask_threshold,
                                     self.params.min_mask_pixels)

    def _warn_frame_skipped(self, error: BaseException) -> None:
        self.get_logger().warning(f"frame skipped: {error}", throttle_duration_sec=5.0)

    def _on_synced(self, detections_msg, depth_msg, info_msg, image_msg=None) -> None:
        image = imgmsg_to_cv2(image_msg, "rgb8") if image_msg is not None else None
        objects_msg, _, _ = self._localise(detections_msg, depth_msg, info_msg, image)
        self._objects_pub.publish(objects_msg)
        if self._vision_pub is not None:
            self._vision_pub.publish(vision.detections_3d(objects_msg))
        if self.params.publish_markers:
            self._markers_pub.publish(object_markers(self._objects_for_markers(objects_msg), objects_msg.header))

    @staticmethod
    def _objects_for_markers(objects_msg):
        from vla_perception.bridge.messages import object_from_msg

        return [object_from_msg(o) for o in objects_msg.objects]

    def _estimate(self, request, response):
        def work():
            depth = request.depth if request.depth.height > 0 else self._depth_nearest(request.detections.header.stamp)
            info = request.camera_info if request.camera_info.width > 0 else self._latest_info
            if depth is None or info is None:
                missing = " and ".join(name for name, msg in (("depth", depth), ("camera_info", info)) if msg is None)
                raise VlaInputError(f"no {missing} received yet on {self.resolve_topic_name('depth')} / "
                                    f"{self.resolve_topic_name('camera_info')}: publish them or fill the request")
            image = self.image_or_latest(request.image)[0] if self.segmenter is not None else None
            response.objects, rejected, kept_boxes = self._localise(request.detections, depth, info, image)
            response.rejected = rejected
            summary = f"{len(response.objects.objects)} object(s), {len(rejected)} rejected"
            if self.segmenter is not None:
                count = len(request.detections.detections)
                summary += f"; CLIPSeg masked {count - len(kept_boxes)} of {count} box(es)"
            response.message = "; ".join([summary, *kept_boxes])

        return self.answer(response, work)


DECLARED_PARAMETERS = PoseNode.declared_parameters()


def main(args=None):
    run_node(PoseNode, args)


if __name__ == "__main__":
    main()
