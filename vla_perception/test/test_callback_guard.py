"""CallbackGuard: errors in callbacks are contained and counted, but not once the node's context is shut down."""
import rclpy
from rclpy.context import Context

from vla_perception.nodes.lifecycle import CallbackGuard


def _failing(message):
    def callback():
        raise RuntimeError(message)

    return callback


def test_an_error_is_counted_while_running_and_a_failure_after_shutdown_is_not():
    """A timer still running while the process shuts down fails on the closed context: that is no bug to report."""
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("guard_test", context=context)
    guard = CallbackGuard(node)
    assert guard.callback("timer", _failing("while running"), lambda error: "contained")() == "contained"
    assert guard.errors == 1 and "while running" in guard.last_error
    node.destroy_node()
    context.try_shutdown()
    assert guard.callback("timer", _failing("after shutdown"), lambda error: "contained")() == "contained"
    assert guard.errors == 1 and "after shutdown" not in guard.last_error
