"""tracker_node: open-vocabulary detections kept alive at camera rate, with persistent object ids.

Subscribes ``image`` (sensor-data QoS), ``detections`` (detector_node's Detection2DArray) and,
for markers only, ``camera_info``. Every frame moves the tracks by optical flow and publishes
``~/tracks`` (Detection2DArray, header = the frame's; each detection carries ``track_id`` and
``detection_age``), ``~/markers`` (the boxes on the plane ``marker_depth`` metres in front of
the camera, labelled ``#id label``), ``~/debug_image`` and, with vision_msgs installed,
``~/tracks_2d`` (vision_msgs/Detection2DArray, ``id`` = the track id).
The algorithm is :mod:`vla_perception.core.tracking`.
"""
from __future__ import annotations

import threading
from dataclasses import fields

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from vla_perception import names
from vla_perception.bridge import vision
from vla_perception.bridge.image import cv2_to_imgmsg, imgmsg_to_cv2
from vla_perception.bridge.markers import track_markers
from vla_perception.bridge.messages import detections_from_msg, tracks_to_msg
from vla_perception.bridge.sync import stamp_seconds
from vla_perception.core.drawing import draw_detections
from vla_perception.core.geometry import CameraIntrinsics
from vla_perception.core.parameters import ParamSpec, in_range, non_negative_int, positive_int
from vla_perception.core.tracking import FlowParams, HybridTracker, TrackerParams
from vla_perception.core.types import Detection
from vla_perception.nodes.lifecycle import VlaLifecycleNode, run_node
from vla_perception_interfaces.msg import Detection2DArray

unit = in_range(0.0, 1.0)
# Sensor-data QoS keeping one frame: when the tracker falls behind it skips to the newest frame
# (the flow copes with a larger step) instead of working through a backlog.
NEWEST_FRAME_ONLY = QoSProfile(reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST,
                               depth=1)
DEFAULT, FLOW = TrackerParams(), FlowParams()
TRACKER_PARAMS = [
    ParamSpec("high_threshold", DEFAULT.high_threshold, "detections at or above this score take part in the "
              "first association pass", unit),
    ParamSpec("low_threshold", DEFAULT.low_threshold, "detections in [low_threshold, high_threshold) only keep "
              "existing tracks (second pass, IoU only); below: ignored", unit),
    ParamSpec("new_track_threshold", DEFAULT.new_track_threshold, "an unmatched detection at or above this score "
              "starts a track", unit),
    ParamSpec("min_iou", DEFAULT.min_iou, "first pass: a track and a detection overlapping less are never matched",
              unit),
    ParamSpec("appearance_weight", DEFAULT.appearance_weight, "first pass similarity = (1 - w) * IoU + w * colour "
              "similarity", unit),
    ParamSpec("min_similarity", DEFAULT.min_similarity, "first pass: weaker pairs are not matched", unit),
    ParamSpec("low_score_min_iou", DEFAULT.low_score_min_iou, "second pass: IoU a low-score detection needs to keep "
              "a track", unit),
    ParamSpec("reid_min_appearance", DEFAULT.reid_min_appearance, "colour similarity a detection needs to "
              "re-identify a lost track (or one whose box drifted off its object)", unit),
    ParamSpec("label_must_match", DEFAULT.label_must_match, "a detection never continues a track of another label"),
    ParamSpec("confirm_hits", DEFAULT.confirm_hits, "detections that must match a new track before it is "
              "published (1: at once; with a detector at 0.5 Hz every extra hit delays a new object by 2 s)",
              positive_int),
    ParamSpec("max_misses", DEFAULT.max_misses, "detector updates in a row a followed track may be missed before "
              "it is lost", non_negative_int),
    ParamSpec("max_lost_time", DEFAULT.max_lost_time, "seconds a lost track is kept for re-identification",
              in_range(0.0, 3600.0)),
    ParamSpec("min_visible_fraction", DEFAULT.min_visible_fraction, "a box with less of its area inside the image "
              "is lost (left the view)", unit),
    ParamSpec("history_time", DEFAULT.history_time, "seconds of frames kept to place late detections on their own "
              "frame (at least the detector's latency)", in_range(0.1, 60.0)),
    ParamSpec("max_stamp_gap", DEFAULT.max_stamp_gap, "stamp tolerance (s): a detection is placed on the kept "
              "frame nearest its stamp; older than the oldest by more: ignored; newer than the newest: waits",
              in_range(0.0, 10.0)),
    ParamSpec("max_catch_up_steps", DEFAULT.max_catch_up_steps, "flow steps that carry a new track from its "
              "detection's frame to the newest", positive_int),
    ParamSpec("max_flow_disagreement", DEFAULT.max_flow_disagreement, "pixels per frame: a track overlapping "
              "another whose flow differs more from its own motion coasts (it is behind the other)",
              in_range(0.0, 1000.0)),
    ParamSpec("flow_max_width", DEFAULT.flow_max_width, "wider frames are shrunk to this width for the optical "
              "flow (0: full size)", non_negative_int),
    ParamSpec("flow_max_points", FLOW.max_points, "corners followed per box", positive_int),
    ParamSpec("flow_window", FLOW.window, "Lucas-Kanade window (pixels)", positive_int),
    ParamSpec("flow_pyramid_levels", FLOW.pyramid_levels, "Lucas-Kanade pyramid levels", non_negative_int),
    ParamSpec("flow_max_round_trip_error", FLOW.max_round_trip_error, "forward-backward error (pixels) above "
              "which a point is dropped", in_range(0.0, 100.0)),
]


def tracker_params(params) -> TrackerParams:
    """TrackerParams from the node's validated parameters: same names, flow_<x> to FlowParams.x when it has x."""
    flow_fields = {f.name for f in fields(FlowParams)}
    names = [spec.name for spec in TRACKER_PARAMS]
    flow = {name[5:]: getattr(params, name) for name in names if name[5:] in flow_fields}
    rest = {name: getattr(params, name) for name in names if name[5:] not in flow_fields}
    return TrackerParams(**rest, flow=FlowParams(**flow))


class TrackerNode(VlaLifecycleNode):
    PARAMS = TRACKER_PARAMS + [
        ParamSpec("publish_markers", True, "publish ~/markers (needs camera_info)"),
        ParamSpec("marker_depth", 1.0, "metres in front of the camera where ~/markers draws the boxes",
                  in_range(0.01, 100.0)),
        ParamSpec("debug_image", False, "publish ~/debug_image with the tracks' ids, labels and scores drawn"),
        ParamSpec("publish_vision_msgs", True, "also publish ~/tracks_2d (vision_msgs/Detection2DArray, id = the "
                  "track id) when vision_msgs is installed"),
    ]

    def __init__(self):
        super().__init__(names.TRACKER_NODE)
        self.tracker = None
        self._lock = threading.Lock()  # frames and detections arrive on different threads
        self._group = MutuallyExclusiveCallbackGroup()
        self._subscriptions = []
        self._camera = None
        self._model_id = ""
        self._tracks_pub = self.create_lifecycle_publisher(Detection2DArray, names.TRACKS.private,
                                                           QoSProfile(depth=10))
        self._markers_pub = self.create_lifecycle_publisher(MarkerArray, names.TRACKER_MARKERS.private,
                                                            QoSProfile(depth=2))
        self._debug_pub = self.create_lifecycle_publisher(Image, names.TRACKER_DEBUG_IMAGE.private,
                                                          QoSProfile(depth=2))
        self._vision_pub = vision.lifecycle_publisher(self, "Detection2DArray", names.TRACKS_2D.private)

    def configure(self, params) -> None:
        self.tracker = HybridTracker(tracker_params(params))

    def cleanup(self) -> None:
        self.tracker = None

    def activate(self) -> None:
        self._subscriptions = [
            self.create_subscription(Image, "image", self._on_image, NEWEST_FRAME_ONLY, callback_group=self._group),
            self.create_subscription(Detection2DArray, "detections", self._on_detections, QoSProfile(depth=10),
                                     callback_group=self._group),
            self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos_profile_sensor_data)]

    def deactivate(self) -> None:
        for subscription in self._subscriptions:
            self.destroy_subscription(subscription)
        self._subscriptions = []

    def _on_camera_info(self, msg: CameraInfo) -> None:
        if msg.width and msg.height:
            self._camera = CameraIntrinsics.from_camera_info(msg)

    def _on_detections(self, msg: Detection2DArray) -> None:
        if not self.active:
            return
        with self._lock:
            outcome = self.tracker.add_detections(detections_from_msg(msg), stamp_seconds(msg),
                                                  (msg.image_width, msg.image_height), msg.prompt)
        self._model_id = msg.model_id or self._model_id
        if outcome == "stale":
            self.get_logger().warning(
                "detections older than the kept frames ignored: raise history_time above the detector's latency",
                throttle_duration_sec=5.0)

    def _on_image(self, msg: Image) -> None:
        if not self.active:
            return
        try:
            image = imgmsg_to_cv2(msg, "rgb8")
        except Exception as error:  # noqa: BLE001 - one bad frame must not stop the tracker
            self.get_logger().warning(f"frame skipped: {error}", throttle_duration_sec=5.0)
            return
        with self._lock:
            jumps = self.tracker.counts["clock_jumps"]
            if not self.tracker.add_frame(image, stamp_seconds(msg)):
                self.get_logger().warning("frame older than the last one ignored", throttle_duration_sec=5.0)
                return
            if self.tracker.counts["clock_jumps"] != jumps:
                self.get_logger().warning("frame stamp jumped back by more than history_time: tracking started over")
            tracks = self.tracker.tracked_objects()
            prompt = self.tracker.prompt
        self._publish(tracks, msg.header, image, prompt)

    def _publish(self, tracks, header, image, prompt) -> None:
        size = (image.shape[1], image.shape[0])
        tracks_msg = tracks_to_msg(tracks, header, size, prompt, self._model_id)
        self._tracks_pub.publish(tracks_msg)
        if self._vision_pub is not None:
            self._vision_pub.publish(vision.detections_2d(tracks_msg))
        if self.params.publish_markers and self._camera is not None:
            camera = self._camera.scaled_to(*size)
            self._markers_pub.publish(track_markers(tracks, camera, header, self.params.marker_depth))
        if self.params.debug_image:
            drawn = [Detection(f"#{t.track_id} {t.label}", t.score, t.box) for t in tracks]
            self._debug_pub.publish(cv2_to_imgmsg(draw_detections(image, drawn), "rgb8", header))


DECLARED_PARAMETERS = TrackerNode.declared_parameters()


def main(args=None):
    run_node(TrackerNode, args)


if __name__ == "__main__":
    main()
