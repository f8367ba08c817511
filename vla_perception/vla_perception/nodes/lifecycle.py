"""What every node shares: guarded callbacks, declared parameters, lifecycle hooks, guarded services.

Every callback a node registers (subscription, timer, service, parameter, lifecycle, action)
runs behind one ``CallbackGuard``: an exception is logged (throttled), counted in the node's
``/diagnostics`` status, and never leaves the executor, so no input can kill the process.
``GuardedNode`` (plain nodes) and ``VlaLifecycleNode`` (heavy nodes) install it.

A heavy node subclasses ``VlaLifecycleNode``, lists its ``PARAMS`` and fills in the hooks
``configure(params)`` (load the model), ``activate()`` (subscribe), ``deactivate()`` and
``cleanup()`` (free). Services wrap their work in ``self.answer(response, work)`` so a
user's mistake comes back as ``success=false`` with a message, and the node keeps running.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import signal
import sys
import threading
import time
import traceback
from types import SimpleNamespace
from typing import Callable, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from vla_perception.bridge.image import BRIDGE_ERRORS, imgmsg_to_cv2
from vla_perception.core.limits import check_image_size
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


class CallbackGuard:
    """Runs a node's callbacks so that an exception is logged, counted and contained.

    ``errors`` counts every exception a callback raised; the node's diagnostics report it.
    A service callback that raised answers ``success=false`` with the error when its
    response has those fields; a parameter callback refuses the change with the error.
    """

    def __init__(self, node: Node):
        self._node = node
        self._lock = threading.Lock()
        self._user_errors = user_errors()
        self.errors = 0
        self.last_error = ""

    def record(self, where: str, error: BaseException) -> None:
        with self._lock:
            self.errors += 1
            self.last_error = f"{where}: {type(error).__name__}: {error}"
        # a user's mistake needs no traceback; anything else is a bug worth one
        detail = "" if isinstance(error, self._user_errors) else "\n" + traceback.format_exc()
        self._node.get_logger().error(f"{self.last_error} (node kept running){detail}", throttle_duration_sec=5.0)

    def callback(self, where: str, callback: Callable, on_error: Callable = lambda error, *args: None) -> Callable:
        """``callback`` wrapped: on an exception, record it and return ``on_error(error, *args)``."""
        @functools.wraps(callback)
        def guarded(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - the point of the guard: nothing leaves the executor
                if self._node.context.ok():  # after shutdown, a callback still running fails on the closed context
                    self.record(where, error)
                return on_error(error, *args)

        return guarded

    def service(self, name: str, callback: Callable) -> Callable:
        def refuse(error, request, response, *rest):
            if hasattr(response, "success"):
                response.success = False
            if hasattr(response, "message"):
                response.message = f"internal error: {type(error).__name__}: {error}"
            return response

        return self.callback(f"service {name}", callback, refuse)

    def action(self, name: str, execute: Callable, result_type) -> Callable:
        """An action execute callback: an exception aborts the goal with the error as its message."""
        def abort(error, goal_handle):
            result = result_type()
            if hasattr(result, "message"):
                result.message = f"internal error: {type(error).__name__}: {error}"
            if goal_handle.is_active:
                goal_handle.abort()
            return result

        return self.callback(f"action {name}", execute, abort)

    def status(self) -> DiagnosticStatus:
        with self._lock:
            errors, last = self.errors, self.last_error
        return DiagnosticStatus(
            level=DiagnosticStatus.WARN if errors else DiagnosticStatus.OK,
            name=self._node.get_fully_qualified_name(), hardware_id=self._node.get_name(),
            message=f"{errors} callback error(s) contained" if errors else "ok",
            values=[KeyValue(key="callback_errors", value=str(errors)), KeyValue(key="last_error", value=last)])


DIAGNOSTICS_PERIOD = 1.0  # s, diagnostic_updater's usual rate


class GuardedCallbacks:
    """Mixin for rclpy nodes: every callback registered through the node runs behind one CallbackGuard.

    It must come before the rclpy node class in the bases, so rclpy's own services
    (parameters, lifecycle) are guarded too.
    """

    def _install_guard(self) -> None:
        if "_guard" not in self.__dict__:
            self._guard = CallbackGuard(self)

    @property
    def guard(self) -> CallbackGuard:
        self._install_guard()
        return self._guard

    def create_subscription(self, msg_type, topic, callback, qos_profile, **kwargs):
        return super().create_subscription(msg_type, topic, self.guard.callback(f"subscription {topic}", callback),
                                           qos_profile, **kwargs)

    def create_service(self, srv_type, srv_name, callback, **kwargs):
        return super().create_service(srv_type, srv_name, self.guard.service(srv_name, callback), **kwargs)

    def create_timer(self, timer_period_sec, callback, *args, **kwargs):
        return super().create_timer(timer_period_sec, self.guard.callback("timer", callback), *args, **kwargs)

    def add_on_set_parameters_callback(self, callback):
        def refuse(error, parameters):
            return SetParametersResult(successful=False, reason=f"internal error: {type(error).__name__}: {error}")

        return super().add_on_set_parameters_callback(self.guard.callback("parameters", callback, refuse))

    def declare_specs(self, specs: list[ParamSpec], read_only: tuple[str, ...] = ()) -> None:
        """Declare ``specs`` (``read_only`` names too) and refuse any later set their checks reject.

        A refused ``ros2 param set`` changes nothing and its reason names the rule, the same
        rule ``read_specs`` (and so configure) applies.
        """
        for spec in specs:
            self.declare_parameter(spec.name, spec.default, ParameterDescriptor(
                description=spec.description, read_only=spec.read_only or spec.name in read_only,
                dynamic_typing=spec.dynamic_typing))
        checks = {spec.name: spec for spec in specs}

        def refuse_invalid(parameters) -> SetParametersResult:
            changed = {parameter.name: parameter.value for parameter in parameters if parameter.name in checks}
            try:
                validate([checks[name] for name in changed], changed)
            except VlaInputError as error:
                return SetParametersResult(successful=False, reason=str(error))
            return SetParametersResult(successful=True)

        self.add_on_set_parameters_callback(refuse_invalid)

    def read_specs(self, specs: list[ParamSpec]) -> dict:
        """The parameters' current values, validated (VlaInputError naming every problem)."""
        return validate(specs, {spec.name: self.get_parameter(spec.name).value for spec in specs})

    def start_diagnostics(self) -> None:
        """Publish the guard's status on /diagnostics once a second."""
        publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(DIAGNOSTICS_PERIOD, lambda: publisher.publish(DiagnosticArray(
            header=Header(stamp=self.get_clock().now().to_msg()), status=[self.guard.status()])))


class GuardedNode(GuardedCallbacks, Node):
    """A plain (non-lifecycle) node whose callbacks are guarded and whose errors are in /diagnostics."""

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self.start_diagnostics()


class VlaLifecycleNode(GuardedCallbacks, LifecycleNode):
    PARAMS: list[ParamSpec] = []

    def __init__(self, name: str, **kwargs):
        super().__init__(name, **kwargs)
        self.start_diagnostics()
        self._specs = self.declared_parameters()
        self.declare_specs(self._specs)
        self.params: Optional[SimpleNamespace] = None
        self.active = False
        self._latest_image: Optional[Image] = None
        self._latest_lock = threading.Lock()
        self._user_errors = user_errors()
        # declare_specs refused invalid values; valid ones apply at once (configure reads them otherwise)
        self.add_post_set_parameters_callback(self._apply_parameters)

    def _apply_parameters(self, parameters) -> None:
        if self.params is not None:
            names = {spec.name for spec in self._specs}
            vars(self.params).update({p.name: p.value for p in parameters if p.name in names})

    @classmethod
    def declared_parameters(cls) -> list[ParamSpec]:
        return [AUTOSTART, *cls.PARAMS]

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
        if not self._transition("activate", self.activate):
            return TransitionCallbackReturn.FAILURE
        self.active = True
        self.get_logger().info("active")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self._transition("deactivate", self.deactivate)
        self.get_logger().info("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._transition("cleanup", self.cleanup)
        self.params = None
        self.get_logger().info("cleaned up")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.active:
            self.active = False
            self._transition("deactivate", self.deactivate)
        self._transition("cleanup", self.cleanup)
        return TransitionCallbackReturn.SUCCESS

    def _transition(self, name: str, hook: Callable[[], None]) -> bool:
        """Run a lifecycle hook behind the guard; False when it raised (recorded, node alive)."""
        try:
            hook()
            return True
        except Exception as error:  # noqa: BLE001 - see CallbackGuard
            self.guard.record(f"lifecycle {name}", error)
            return False

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
        return self.read_specs(self._specs)

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
        check_image_size(msg.width, msg.height)
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
    """Entry point shared by the nodes: multi-threaded spin; on Ctrl-C or shutdown, ``exit_fast``."""
    rclpy.init(args=args)
    node = node_class()
    forward_python_logging(node)
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    exit_code = 0
    try:
        if isinstance(node, VlaLifecycleNode):
            node.autostart_if_asked()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:  # noqa: BLE001 - a crash still exits fast, but non-zero (respawn:=true relies on it)
        traceback.print_exc()
        exit_code = 1
    finally:
        exit_fast(node, executor, exit_code)


EXIT_DEADLINE = 1.5  # s; ros2 launch escalates to SIGTERM after 5 s, the nodes promise 2 s


def exit_fast(node, executor, exit_code: int = 0) -> None:
    """Do what a robot needs on the way out, then leave without tearing the interpreter down.

    Needed: stop taking work, leave the ROS graph (peers see the node go at once) and flush the
    logs. Not needed: freeing the model, joining a worker that is mid-inference, and the interpreter's
    teardown (garbage-collecting torch/transformers' objects and torch's atexit hooks take 2-4 s): the
    operating system releases memory, files and the GPU when the process ends. A second SIGINT (a
    terminal's Ctrl-C reaches the whole process group, then ros2 launch forwards another) is ignored
    so it cannot cut this short, and a watchdog leaves anyway after EXIT_DEADLINE.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watchdog = threading.Timer(EXIT_DEADLINE, _leave, args=(exit_code, f"{node.get_name()}: cleanup took over "
                                                                       f"{EXIT_DEADLINE} s, leaving anyway"))
    watchdog.daemon = True
    watchdog.start()
    if isinstance(node, VlaLifecycleNode):
        node.active = False  # the streaming worker and services stop producing results
    context = node.context
    with contextlib.suppress(Exception):
        executor.shutdown(timeout_sec=0.0, wait_for_threads=False)  # a callback mid-inference is not awaited
        node.destroy_node()
    rclpy.try_shutdown()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # rclpy's shutdown restores Python's handler
    with contextlib.suppress(Exception), context._lock:
        # Flush and close ROS's log file. rclpy does it in its own shutdown, but not when a signal
        # already shut the context down (then only static destructors at exit would, and os._exit skips those).
        context._logging_fini()
    _leave(exit_code)


def _leave(exit_code: int, message: str = "") -> None:
    if message:
        print(message, file=sys.stderr)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(Exception):  # C stdio buffers (rcutils' console output): os._exit skips them
        ctypes.CDLL(None).fflush(None)
    os._exit(exit_code)


class _RosLogHandler(logging.Handler):
    """Python ``logging`` of vla_perception's ROS-free core -> the node's ROS logger (console, /rosout)."""

    def __init__(self, ros_logger):
        super().__init__(logging.INFO)
        self.ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else "warning" if record.levelno >= logging.WARNING \
            else "info"
        getattr(self.ros_logger, level)(record.getMessage())


def forward_python_logging(node) -> None:
    core_logger = logging.getLogger("vla_perception")
    core_logger.setLevel(logging.INFO)
    core_logger.propagate = False  # else warnings also reach stderr through logging's last-resort handler
    core_logger.addHandler(_RosLogHandler(node.get_logger()))
