"""Camera extrinsics from TF when tf2_ros is importable (a robot), else from a static parameter."""
from __future__ import annotations

import numpy as np

from vla_perception.core.geometry import pose_matrix


def tf_available() -> bool:
    try:
        import tf2_ros  # noqa: F401
    except ImportError:
        return False
    return True


class CameraExtrinsics:
    """camera -> base 4x4 transforms: looked up in TF when possible, the static fallback otherwise."""

    def __init__(self, node, base_frame: str, fallback: np.ndarray, use_tf: bool = True):
        self._node, self._base_frame, self._fallback = node, base_frame, fallback
        self._buffer = None
        if use_tf and tf_available():
            import tf2_ros

            self._buffer = tf2_ros.Buffer()
            self._listener = tf2_ros.TransformListener(self._buffer, node)

    @property
    def source(self) -> str:
        return "tf2" if self._buffer is not None else "camera_pose parameter"

    def camera_in_base(self, camera_frame: str, stamp=None, timeout: float = 1.0) -> np.ndarray:
        """The transform at ``stamp`` (builtin_interfaces/Time; None: the latest TF has)."""
        if self._buffer is None or not camera_frame or camera_frame == self._base_frame:
            return self._fallback
        from rclpy.duration import Duration
        from rclpy.time import Time

        try:
            at = Time.from_msg(stamp) if stamp is not None else Time()
            stamped = self._buffer.lookup_transform(self._base_frame, camera_frame, at,
                                                    timeout=Duration(seconds=timeout))
        except Exception as error:  # noqa: BLE001 - tf2 raises several exception types; all mean "not known"
            self._node.get_logger().warning(f"no TF {self._base_frame} <- {camera_frame} ({error}); "
                                            "using the camera_pose parameter", throttle_duration_sec=10.0)
            return self._fallback
        t, q = stamped.transform.translation, stamped.transform.rotation
        return pose_matrix([t.x, t.y, t.z], [q.x, q.y, q.z, q.w])


def broadcast_static_camera(node, base_frame: str, camera_frame: str, position, quaternion):
    """Publish base -> camera as a static transform when tf2_ros exists; returns the broadcaster or None."""
    if not tf_available():
        return None
    import tf2_ros
    from geometry_msgs.msg import TransformStamped

    stamped = TransformStamped()
    stamped.header.stamp = node.get_clock().now().to_msg()
    stamped.header.frame_id, stamped.child_frame_id = base_frame, camera_frame
    t, r = stamped.transform.translation, stamped.transform.rotation
    t.x, t.y, t.z = (float(v) for v in position)
    r.x, r.y, r.z, r.w = (float(v) for v in quaternion)
    broadcaster = tf2_ros.StaticTransformBroadcaster(node)
    broadcaster.sendTransform(stamped)
    return broadcaster
