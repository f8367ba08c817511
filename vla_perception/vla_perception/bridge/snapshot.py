"""One synchronised colour + depth + camera_info set, taken when a pick starts and passed to every stage."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from vla_perception.bridge.sync import make_synchronizer, stamp_seconds
from vla_perception.core.types import VlaInputError


@dataclass(frozen=True)
class Snapshot:
    image: Image
    depth: Image
    camera_info: CameraInfo

    @property
    def header(self):
        return self.image.header

    @property
    def seconds(self) -> float:
        return stamp_seconds(self.image)


class SnapshotSource:
    """Subscribes ``image``, ``depth`` and ``camera_info`` (sensor-data QoS), pairs them by stamp, keeps the newest."""

    def __init__(self, node, slop: float, queue_size: int = 10):
        self._latest: Optional[Snapshot] = None
        self._arrived = threading.Condition()
        inputs = [(Image, "image", qos_profile_sensor_data), (Image, "depth", qos_profile_sensor_data),
                  (CameraInfo, "camera_info", qos_profile_sensor_data)]
        self._synchronizer, self._subscriptions = make_synchronizer(node, inputs, self._on_set, queue_size, slop)
        self._topics = ", ".join(node.resolve_topic_name(topic) for _, topic, _ in inputs)

    def _on_set(self, image, depth, camera_info) -> None:
        with self._arrived:
            self._latest = Snapshot(image, depth, camera_info)
            self._arrived.notify_all()

    def take(self, timeout: float, after: float = float("-inf")) -> Snapshot:
        """The newest set stamped later than ``after`` (seconds), waiting up to ``timeout`` seconds for one."""
        with self._arrived:
            fresh = self._arrived.wait_for(lambda: self._latest is not None and self._latest.seconds > after,
                                           timeout)
            if not fresh:
                raise VlaInputError(f"no synchronised colour + depth + camera_info within {timeout:.1f} s on "
                                    f"{self._topics}: is the camera publishing, with equal stamps?")
            return self._latest
