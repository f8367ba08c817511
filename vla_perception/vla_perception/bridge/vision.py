"""Our detection messages -> vision_msgs, what downstream ROS tools subscribe to (trackers, Foxglove, RViz).

Used when vision_msgs is importable (``available()``). Field mapping:
Detection2D: ``id`` (the track id when tracker_node set one: vision_msgs' id is the one that stays with an
object from message to message), ``bbox`` (``theta`` 0), ``results[0].hypothesis.class_id`` = our ``label`` (a string,
the prompt phrase), ``.score`` = our ``score``, header = the source image's.
Detection3D: ``id`` (likewise), ``results[0].hypothesis`` as above, ``results[0].pose.pose`` and ``bbox.center`` = our
``pose`` (the oriented box's centre), ``bbox.size`` = our ``size``, header = the array's (its frame).
LabelInfo: ``class_map`` = the prompt's phrases numbered 0..n-1 (vision_msgs' ids are uint16 there; the
detections carry the phrase itself as class_id), ``threshold`` = the box threshold.
"""
from __future__ import annotations

import importlib.util


def available() -> bool:
    return importlib.util.find_spec("vision_msgs") is not None


def lifecycle_publisher(node, msg_name: str, topic: str):
    """A lifecycle publisher of vision_msgs/``msg_name`` on ``topic`` (depth 10), or None.

    None when vision_msgs is absent or the node's ``publish_vision_msgs`` parameter is false.
    """
    if not (available() and node.get_parameter("publish_vision_msgs").value):
        return None
    import vision_msgs.msg
    from rclpy.qos import QoSProfile

    return node.create_lifecycle_publisher(getattr(vision_msgs.msg, msg_name), topic, QoSProfile(depth=10))


def _vision_id(ours) -> str:
    return str(ours.track_id) if ours.track_id else ours.id


def _hypothesis(label: str, score: float, pose=None):
    from vision_msgs.msg import ObjectHypothesisWithPose

    result = ObjectHypothesisWithPose()
    result.hypothesis.class_id, result.hypothesis.score = label, float(score)
    if pose is not None:
        result.pose.pose = pose
    return result


def detections_2d(msg):
    """vla_perception_interfaces/Detection2DArray -> vision_msgs/Detection2DArray."""
    from vision_msgs.msg import Detection2D, Detection2DArray

    out = Detection2DArray(header=msg.header)
    for detection in msg.detections:
        converted = Detection2D(header=msg.header, id=_vision_id(detection),
                                results=[_hypothesis(detection.label, detection.score)])
        box = converted.bbox
        box.center.position.x, box.center.position.y = detection.bbox.center_x, detection.bbox.center_y
        box.size_x, box.size_y = detection.bbox.size_x, detection.bbox.size_y
        out.detections.append(converted)
    return out


def detections_3d(msg):
    """vla_perception_interfaces/Object3DArray -> vision_msgs/Detection3DArray."""
    from vision_msgs.msg import Detection3D, Detection3DArray

    out = Detection3DArray(header=msg.header)
    for obj in msg.objects:
        converted = Detection3D(header=msg.header, id=_vision_id(obj),
                                results=[_hypothesis(obj.label, obj.score, obj.pose)])
        converted.bbox.center, converted.bbox.size = obj.pose, obj.size
        out.detections.append(converted)
    return out


def label_info(phrases: list[str], threshold: float, header):
    """vision_msgs/LabelInfo for the prompt's phrases."""
    from vision_msgs.msg import LabelInfo, VisionClass

    return LabelInfo(header=header, threshold=float(threshold),
                     class_map=[VisionClass(class_id=index, class_name=phrase) for index, phrase in enumerate(phrases)])
