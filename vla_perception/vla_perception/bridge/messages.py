"""Core types <-> vla_perception_interfaces messages. The only place these fields are mapped."""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Pose

from vla_perception.bridge.image import cv2_to_imgmsg, imgmsg_to_cv2
from vla_perception.core.types import Box2D, Detection, Object3D, VlaInputError
from vla_perception_interfaces import msg as interface_msgs


def box_to_msg(box: Box2D) -> interface_msgs.BoundingBox2D:
    cx, cy = box.center
    return interface_msgs.BoundingBox2D(center_x=float(cx), center_y=float(cy),
                                        size_x=float(box.width), size_y=float(box.height))


def box_from_msg(msg: interface_msgs.BoundingBox2D) -> Box2D:
    """Raises VlaInputError for a box with a non-finite or negative field (it can name no pixels)."""
    values = (msg.center_x, msg.center_y, msg.size_x, msg.size_y)
    if not all(np.isfinite(values)) or msg.size_x < 0 or msg.size_y < 0:
        raise VlaInputError(f"box (center {msg.center_x}, {msg.center_y}, size {msg.size_x} x {msg.size_y}) "
                            "needs finite values and sizes >= 0")
    return Box2D.from_center_size(*values)


def detection_to_msg(detection: Detection, index: int) -> interface_msgs.Detection2D:
    msg = interface_msgs.Detection2D(id=str(index), label=detection.label, phrase=detection.phrase or detection.label,
                                     score=float(detection.score), bbox=box_to_msg(detection.box),
                                     track_id=int(detection.track_id))
    if detection.mask is not None:
        msg.mask = cv2_to_imgmsg(np.asarray(detection.mask, dtype=bool).astype(np.uint8) * 255, "mono8")
    return msg


def detection_from_msg(msg: interface_msgs.Detection2D) -> Detection:
    mask = imgmsg_to_cv2(msg.mask, "mono8") > 127 if msg.mask.height > 0 else None
    return Detection(label=msg.label, score=float(msg.score), box=box_from_msg(msg.bbox), phrase=msg.phrase, mask=mask,
                     track_id=int(msg.track_id))


def detections_to_msg(detections: list[Detection], header, image_size: tuple[int, int], prompt: str = "",
                      model_id: str = "", inference_time: float = 0.0) -> interface_msgs.Detection2DArray:
    """image_size: (width, height) of the image the boxes are in."""
    return interface_msgs.Detection2DArray(
        header=header, prompt=prompt, model_id=model_id, inference_time=float(inference_time),
        image_width=int(image_size[0]), image_height=int(image_size[1]),
        detections=[detection_to_msg(detection, index) for index, detection in enumerate(detections)])


def detections_from_msg(msg: interface_msgs.Detection2DArray) -> list[Detection]:
    return [detection_from_msg(detection) for detection in msg.detections]


def tracks_to_msg(tracks, header, image_size: tuple[int, int], prompt: str = "",
                  model_id: str = "") -> interface_msgs.Detection2DArray:
    """core.tracking TrackedObjects -> Detection2DArray with track_id and detection_age set."""
    msg = detections_to_msg([Detection(t.label, t.score, t.box, t.phrase, track_id=t.track_id) for t in tracks],
                            header, image_size, prompt, model_id)
    for detection, track in zip(msg.detections, tracks):
        detection.detection_age = float(track.age)
    return msg


def pose_to_msg(position, orientation) -> Pose:
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in position)
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in orientation)
    return pose


def pose_from_msg(pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    position = np.array([pose.position.x, pose.position.y, pose.position.z])
    orientation = np.array([pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w])
    return position, orientation


def object_to_msg(obj: Object3D, index: int) -> interface_msgs.Object3D:
    msg = interface_msgs.Object3D(id=str(index), track_id=int(obj.track_id), label=obj.label, score=float(obj.score),
                                  pose=pose_to_msg(obj.position, obj.orientation),
                                  num_points=int(obj.num_points), confidence=float(obj.confidence))
    msg.size.x, msg.size.y, msg.size.z = (float(v) for v in obj.size)
    if obj.box is not None:
        msg.bbox = box_to_msg(obj.box)
    return msg


def object_from_msg(msg: interface_msgs.Object3D) -> Object3D:
    position, orientation = pose_from_msg(msg.pose)
    box = box_from_msg(msg.bbox) if msg.bbox.size_x > 0 and msg.bbox.size_y > 0 else None
    return Object3D(label=msg.label, score=float(msg.score), position=position, orientation=orientation,
                    size=np.array([msg.size.x, msg.size.y, msg.size.z]), num_points=int(msg.num_points),
                    confidence=float(msg.confidence), box=box, track_id=int(msg.track_id))


def objects_to_msg(objects: list, header) -> interface_msgs.Object3DArray:
    """Objects in order; a None entry (not localised) is skipped but keeps its index as the others' ids."""
    return interface_msgs.Object3DArray(header=header, objects=[
        object_to_msg(obj, index) for index, obj in enumerate(objects) if obj is not None])


def trajectory_to_msg(joint_names, positions, times):
    """(K x N positions, K times in seconds) -> trajectory_msgs/JointTrajectory."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory(joint_names=list(joint_names))
    for row, t in zip(np.asarray(positions, float), np.asarray(times, float)):
        seconds = int(np.floor(t))
        msg.points.append(JointTrajectoryPoint(positions=row.tolist(), time_from_start=Duration(
            sec=seconds, nanosec=int(round((t - seconds) * 1e9)))))
    return msg


def trajectory_from_msg(msg, joint_order) -> tuple[np.ndarray, np.ndarray]:
    """JointTrajectory -> (K x N positions in ``joint_order``, K times).

    Raises VlaInputError on missing joints, short points, or waypoints that are not finite,
    bounded and strictly timed (core.planning.base.check_trajectory).
    """
    from vla_perception.core.planning.base import MAX_TRAJECTORY_POINTS, check_trajectory

    missing = [name for name in joint_order if name not in msg.joint_names]
    if missing:
        raise VlaInputError(f"trajectory lacks joints {missing} (has {list(msg.joint_names)})")
    if len(msg.points) > MAX_TRAJECTORY_POINTS:
        raise VlaInputError(f"trajectory has {len(msg.points)} points; at most {MAX_TRAJECTORY_POINTS} are accepted")
    if any(len(point.positions) != len(msg.joint_names) for point in msg.points):
        raise VlaInputError(f"every trajectory point needs {len(msg.joint_names)} positions, one per joint")
    columns = [list(msg.joint_names).index(name) for name in joint_order]
    positions = np.array([[point.positions[c] for c in columns] for point in msg.points], float)
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points], float)
    positions = positions.reshape(len(msg.points), len(joint_order))
    check_trajectory(positions, times)
    return positions, times
