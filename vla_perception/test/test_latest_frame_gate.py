"""The image subscription of model nodes: no frame is taken while the worker is busy, then the newest.

Uses a real rclpy executor and real DDS (publisher in a second context of this process), because the
behaviour under test is how rclpy's executor treats the ``WhileIdle`` callback group.
"""
import time

import pytest

rclpy = pytest.importorskip("rclpy")

from ros_harness import RosClient, wait_for  # noqa: E402


def test_frames_are_left_in_dds_while_busy_and_only_the_newest_is_taken_after():
    from rclpy.executors import MultiThreadedExecutor
    from std_msgs.msg import String

    from vla_perception.nodes.model_node import LATEST_FRAME_QOS, WhileIdle

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("gate_under_test", context=context)
    gate, taken = WhileIdle(), []
    gate.idle = False  # the worker is busy
    node.create_subscription(String, "/gate_test", lambda msg: taken.append(msg.data), LATEST_FRAME_QOS,
                             callback_group=gate)
    wake = node.create_guard_condition(lambda: None)
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(node)
    publisher = RosClient("gate_publisher")
    try:
        import threading

        threading.Thread(target=executor.spin, daemon=True).start()
        pub = publisher.node.create_publisher(String, "/gate_test", LATEST_FRAME_QOS)
        wait_for(lambda: pub.get_subscription_count() > 0, 15.0, "the subscription to be discovered")
        for index in range(20):
            pub.publish(String(data=str(index)))
            time.sleep(0.01)
        time.sleep(0.5)
        assert taken == [], "a frame was taken while the worker was busy"
        gate.idle = True
        wake.trigger()  # what the worker does when it finishes
        wait_for(lambda: taken, 10.0, "a frame once the worker is idle")
        time.sleep(0.3)
        assert taken == ["19"], "only the newest frame may be taken, older ones were overwritten in DDS"
    finally:
        publisher.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
