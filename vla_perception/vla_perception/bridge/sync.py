"""Approximate-time pairing of topics: message_filters when importable, our synchronizer otherwise."""
from __future__ import annotations

from functools import partial
from typing import Callable, Optional

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

from vla_perception.core.sync import ApproximateTimeSynchronizer
from vla_perception.core.types import VlaInputError


def stamp_seconds(msg) -> float:
    return stamp_seconds_of(msg.header.stamp)


def stamp_seconds_of(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def check_stamps_close(detections_stamp, depth_stamp, max_gap: float) -> None:
    """Raise VlaInputError when both stamps are set (non-zero) and further apart than ``max_gap`` s."""
    first, second = stamp_seconds_of(detections_stamp), stamp_seconds_of(depth_stamp)
    if first and second and abs(first - second) > max_gap:
        raise VlaInputError(f"the detections are stamped {first:.3f} s and the depth {second:.3f} s: "
                            f"{abs(first - second):.3f} s apart, more than max_stamp_gap {max_gap} s "
                            "(stale detections, or a depth frame that is not theirs)")


def make_synchronizer(node, inputs: list[tuple], callback: Callable[..., None], queue_size: int, slop: float,
                      taps: Optional[dict[int, Callable]] = None, use_message_filters: Optional[bool] = None):
    """Subscribe to ``inputs`` [(msg_type, topic, qos)] and call ``callback(*msgs)`` for each matched set.

    ``taps[i]`` also sees every message of input i (e.g. to keep the latest depth frame).
    Returns (synchronizer, subscriptions); destroy the subscriptions to stop.
    """
    taps = taps or {}
    if use_message_filters is None:
        use_message_filters = _message_filters_available()
    if use_message_filters:
        return _with_message_filters(node, inputs, callback, queue_size, slop, taps)
    synchronizer = ApproximateTimeSynchronizer(len(inputs), queue_size, slop)
    synchronizer.register_callback(callback)
    group = MutuallyExclusiveCallbackGroup()  # the synchronizer's queues are not thread-safe

    def on_message(index: int, msg) -> None:
        if index in taps:
            taps[index](msg)
        synchronizer.add(index, stamp_seconds(msg), msg)

    subscriptions = [node.create_subscription(msg_type, topic, partial(on_message, index), qos, callback_group=group)
                     for index, (msg_type, topic, qos) in enumerate(inputs)]
    return synchronizer, subscriptions


def _message_filters_available() -> bool:
    try:
        import message_filters  # noqa: F401
    except ImportError:
        return False
    return True


def _with_message_filters(node, inputs, callback, queue_size, slop, taps):
    import message_filters

    subscribers = [message_filters.Subscriber(node, msg_type, topic, qos_profile=qos)
                   for msg_type, topic, qos in inputs]
    for index, tap in taps.items():
        subscribers[index].registerCallback(tap)
    synchronizer = message_filters.ApproximateTimeSynchronizer(subscribers, queue_size, slop)
    synchronizer.registerCallback(callback)
    return synchronizer, [subscriber.sub for subscriber in subscribers]
