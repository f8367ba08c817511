"""What every heavy node shares: declared parameters, lifecycle hooks, guarded services.

A node subclasses ``VlaLifecycleNode``, lists its ``PARAMS`` and fills in the hooks
``configure(params)`` (load the model), ``activate()`` (subscribe), ``deactivate()`` and
``cleanup()`` (free). Services wrap their work in ``self.answer(response, work)`` so a
user's mistake comes back as ``success=false`` with a message, and the node keeps running.
"""
from __future__ import annotations

import threading
import time
import traceback
from types import SimpleNamespace
from typing import Callable, Optional

import rclpy
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image

from vla_perception.bridge.image import BRIDGE_ERRORS, imgmsg_to_cv2
from vla_perception.core.parameters import ParamSpec, validate
from vla_perception.core.types import VlaInputError

AUTOSTART = ParamSpec("autostart", False, "configure and activate at start, for use without a lifecycle manager")


def user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean 'the request was wrong or the node is not ready', not 'a bug'."""
    errors: tuple[type[Exception], ...] = (VlaInputError, *BRIDGE_ERRORS)
    try:
        from vla_perception.core.models import ModelNotAvailableError
    except ImportError:  # model layer absent (e.g. pose_node on a machine without torch)
        return errors
    return (*errors, ModelNotAvailableError)


class VlaLifecycleNode(LifecycleNode):
    PARAMS: list[ParamSpec] = []

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self._specs = [AUTOSTART, *self.PARAMS]
        for spec in self._specs:
            self.declare_parameter(spec.name, spec.default, ParameterDescriptor(
                description=spec.description, read_only=spec.read_only, dynamic_typing=spec.dynamic_typing))
        self.params: Optional[SimpleNamespace] = None
        self.active = False
        self._latest_image: Optional[Image] = None
        self._latest_lock = threading.Lock()
        self._user_errors = user_errors()

    # ----- lifecycle -------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        started = time.monotonic()
        try:
            self.params = SimpleNamespace(**self.read_parameters())
            self.configure(self.params)
        except Exception as error:  # noqa: BLE001 - any failure must leave the node unconfigured, not dead
            self.get_logger().error(f"configure failed: {error}")
            self.params = None
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured in {time.monotonic() - started:.2f} s")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.activate()
        self.active = True
        self.get_logger().info("active")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self.deactivate()
        self.get_logger().info("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cleanup()
        self.params = None
        self.get_logger().info("cleaned up")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.active:
            self.active = False
            self.deactivate()
        self.cleanup()
        return TransitionCallbackReturn.SUCCESS

    # hooks for subclasses
    def configure(self, params: SimpleNamespace) -> None: ...

    def activate(self) -> None: ...

    def deactivate(self) -> None: ...

    def cleanup(self) -> None: ...

    def autostart_if_asked(self) -> None:
        if self.get_parameter("autostart").value:
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()

    # ----- parameters --------------------------------------------------------------------
    def read_parameters(self) -> dict:
        values = {spec.name: self.get_parameter(spec.name).value for spec in self._specs}
        return validate(self._specs, values)

    def apply_on_change(self, name: str, apply: Callable[[object], object]) -> None:
        """Call ``apply(value)`` when parameter ``name`` is set at run time; a VlaInputError refuses the value."""
        def on_set(parameters) -> SetParametersResult:
            for parameter in parameters:
                if parameter.name == name:
                    try:
                        apply(parameter.value)
                    except VlaInputError as error:
                        return SetParametersResult(successful=False, reason=str(error))
            return SetParametersResult(successful=True)

        self.add_on_set_parameters_callback(on_set)

    def log_stage(self, stage: str, work: Callable[[], object]):
        """Run one configure stage and log how long it took."""
        started = time.monotonic()
        self.get_logger().info(f"{stage} ...")
        result = work()
        self.get_logger().info(f"{stage}: done in {time.monotonic() - started:.2f} s")
        return result

    # ----- images --------------------------------------------------------------------------
    def remember_image(self, msg: Image) -> None:
        with self._latest_lock:
            self._latest_image = msg

    def image_or_latest(self, msg: Image, encoding: str = "rgb8"):
        """(array, header) of ``msg``, or of the latest received frame when ``msg`` is empty."""
        if msg.height == 0 and msg.width == 0 and len(msg.data) == 0:
            with self._latest_lock:
                msg = self._latest_image
            if msg is None:
                topic = self.resolve_topic_name("image")
                raise VlaInputError(f"no image received yet on {topic}: publish a frame there "
                                    "or put one in the request")
        return imgmsg_to_cv2(msg, encoding), msg.header

    # ----- services --------------------------------------------------------------------------
    def answer(self, response, work: Callable[[], None], needs_active: bool = True):
        """Fill ``response`` by running ``work()``; every failure becomes success=false + message."""
        if needs_active and not self.active:
            response.success = False
            response.message = (f"{self.get_name()} is not active: configure and activate it "
                                "(lifecycle), or start it with autostart:=true")
            return response
        try:
            work()
            response.success = True
        except self._user_errors as error:
            response.success, response.message = False, str(error)
        except Exception as error:  # noqa: BLE001 - a model error mid-call must not kill the node
            self.get_logger().error(f"request failed: {error}\n{traceback.format_exc()}",
                                    throttle_duration_sec=5.0)
            response.success, response.message = False, f"internal error: {type(error).__name__}: {error}"
        return response


def run_node(node_class, args=None) -> None:
    """Entry point shared by the nodes: multi-threaded spin, clean exit on Ctrl-C."""
    rclpy.init(args=args)
    node = node_class()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        if isinstance(node, VlaLifecycleNode):
            node.autostart_if_asked()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if isinstance(node, VlaLifecycleNode) and node.active:
            node.active = False
            node.deactivate()
        if isinstance(node, VlaLifecycleNode):
            node.cleanup()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
