"""RViz markers for objects, grasp candidates and planned paths."""
from __future__ import annotations

from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from vla_perception.bridge.messages import pose_to_msg
from vla_perception.core.drawing import label_colour
from vla_perception.core.geometry import CameraIntrinsics, backproject_pixels
from vla_perception.core.types import Object3D


def _colour(label: str, alpha: float) -> ColorRGBA:
    r, g, b = label_colour(label)
    return ColorRGBA(r=r / 255.0, g=g / 255.0, b=b / 255.0, a=alpha)


def clear_all(header) -> Marker:
    """First marker of every array: removes what an earlier array drew, so vanished objects vanish."""
    return Marker(header=header, action=Marker.DELETEALL)


def object_markers(objects: list[Object3D], header, namespace: str = "objects") -> MarkerArray:
    """A translucent box and a text label per object, after a DELETEALL."""
    markers = [clear_all(header)]
    for index, obj in enumerate(objects):
        box = Marker(header=header, ns=namespace, id=2 * index, type=Marker.CUBE, action=Marker.ADD,
                     pose=pose_to_msg(obj.position, obj.orientation), color=_colour(obj.label, 0.5))
        box.scale.x, box.scale.y, box.scale.z = (max(float(v), 1e-3) for v in obj.size)
        text = Marker(header=header, ns=namespace, id=2 * index + 1, type=Marker.TEXT_VIEW_FACING,
                      action=Marker.ADD, pose=pose_to_msg(obj.position, (0.0, 0.0, 0.0, 1.0)),
                      color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0), text=f"{obj.label} {obj.score:.2f}")
        text.pose.position.z -= float(max(obj.size)) * 0.75  # above the box in the optical frame (y down)
        text.scale.z = 0.03
        markers += [box, text]
    return MarkerArray(markers=markers)


def path_marker(points, header, namespace: str, marker_id: int, colour=(0.1, 0.9, 0.1)) -> Marker:
    """A line strip through 3D points (e.g. the planned end-effector path)."""
    marker = Marker(header=header, ns=namespace, id=marker_id, type=Marker.LINE_STRIP, action=Marker.ADD,
                    color=ColorRGBA(r=colour[0], g=colour[1], b=colour[2], a=1.0))
    marker.pose.orientation.w = 1.0
    marker.scale.x = 0.005
    marker.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in points]
    return marker


def arrow_marker(start, end, header, namespace: str, marker_id: int, colour=(1.0, 0.6, 0.0)) -> Marker:
    marker = Marker(header=header, ns=namespace, id=marker_id, type=Marker.ARROW, action=Marker.ADD,
                    color=ColorRGBA(r=colour[0], g=colour[1], b=colour[2], a=1.0))
    marker.pose.orientation.w = 1.0
    marker.scale.x, marker.scale.y, marker.scale.z = 0.008, 0.016, 0.02
    marker.points = [Point(x=float(start[0]), y=float(start[1]), z=float(start[2])),
                     Point(x=float(end[0]), y=float(end[1]), z=float(end[2]))]
    return marker


def track_markers(tracks, camera: CameraIntrinsics, header, depth: float = 1.0,
                  namespace: str = "tracks") -> MarkerArray:
    """Each 2D track as its box outline on the plane ``depth`` m in front of the camera, labelled '#id label'.

    Drawn in the image's optical frame, so RViz's camera view shows the outlines on the tracked objects.
    """
    markers = [clear_all(header)]
    for track in tracks:
        box = track.box
        us = [box.x_min, box.x_max, box.x_max, box.x_min, box.x_min]
        vs = [box.y_min, box.y_min, box.y_max, box.y_max, box.y_min]
        corners = backproject_pixels(camera, us, vs, [depth] * 5)
        outline = path_marker(corners, header, namespace, 2 * track.track_id)
        outline.color, outline.scale.x = _colour(track.label, 1.0), 0.002 * depth
        text = Marker(header=header, ns=namespace, id=2 * track.track_id + 1, type=Marker.TEXT_VIEW_FACING,
                      action=Marker.ADD, color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0),
                      text=f"#{track.track_id} {track.label}")
        text.pose.position = Point(x=float(corners[0][0]), y=float(corners[0][1]) - 0.02 * depth, z=float(depth))
        text.pose.orientation.w = 1.0
        text.scale.z = 0.03 * depth
        markers += [outline, text]
    return MarkerArray(markers=markers)
