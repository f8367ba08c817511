"""Streaming plumbing shared by clip_node, detector_node and vlm_node.

Frames arrive on ``image`` (best effort, keep last 1); every ``process_every_n``-th frame (and
at most ``max_rate`` per second) goes to one ``LatestOnlyWorker``, so a slow model never
builds a backlog. While the worker is busy the image subscription is left out of the executor's
wait set (``WhileIdle``): frames that arrive meanwhile are overwritten inside DDS, without a
Python callback or a deserialisation each, which would otherwise take the GIL from the model at
every frame and cut the result rate when input gets faster. When the worker is done it wakes the
executor, which takes the newest frame. Services and the worker share the model under one lock:
a service call waits for the frame in progress rather than running a second inference beside it.
"""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.qos import HistoryPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image

from vla_perception.core.latest_worker import LatestOnlyWorker
from vla_perception.core.models.checks import PRECISIONS, RUNTIMES
from vla_perception.core.parameters import ParamSpec, device_name, in_range, non_negative_int, one_of, positive_int
from vla_perception.core.types import VlaInputError
from vla_perception.nodes.lifecycle import VlaLifecycleNode


def known_profile(value: str):
    from vla_perception.core.models.sources import load_profiles  # no torch: only reads config/models.yaml

    profiles = sorted(load_profiles())
    return None if value in profiles else f"must be a profile of config/models.yaml: {', '.join(profiles)}"


# Sensor-data QoS, but only the newest frame is kept: an older one waiting in the reader would be stale.
LATEST_FRAME_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                              reliability=qos_profile_sensor_data.reliability,
                              durability=qos_profile_sensor_data.durability)


class WhileIdle(MutuallyExclusiveCallbackGroup):
    """A callback group the executor may run only while ``idle`` is set (rclpy's extension point)."""

    def __init__(self):
        super().__init__()
        self.idle = True

    def can_execute(self, entity) -> bool:
        return self.idle and super().can_execute(entity)


MODEL_PARAMS = [
    ParamSpec("profile", "default", "model profile from config/models.yaml: default (real checkpoints) or tiny",
              known_profile),
    ParamSpec("device", "auto", "torch device: auto, cpu, cuda or cuda:N", device_name),
    ParamSpec("threads", 0, "CPU threads for torch; 0 keeps torch's default", non_negative_int),
    ParamSpec("runtime", "torch", "inference runtime: torch; onnxruntime or openvino (CPU, CLIP only so far; "
              "exported once at configure into a cache); tensorrt (CUDA, not built in); auto (onnxruntime "
              "where supported and installed, else torch)",
              one_of(*RUNTIMES)),
    ParamSpec("precision", "auto", "auto (fp16 on CUDA, fp32 on the CPU), fp32, or int8 (CPU opt-in: "
              "dynamic quantisation of the linear layers)", one_of(*PRECISIONS)),
    ParamSpec("process_every_n", 1, "run the model on every n-th streamed frame", positive_int),
    ParamSpec("max_rate", 0.0, "at most this many streamed inferences per second; 0: no limit",
              in_range(0.0, 1000.0)),
    ParamSpec("stream", True, "run on streamed frames and publish results; false: services only"),
]


class ModelNode(VlaLifecycleNode):
    """A lifecycle node around one model: subclasses implement load_model and process_frame."""

    def __init__(self, name: str):
        super().__init__(name)
        self.model = None
        self.model_lock = threading.Lock()
        self.service_group = ReentrantCallbackGroup()
        self._image_group = WhileIdle()
        self._worker_done = self.create_guard_condition(lambda: None, callback_group=self.service_group)
        self._subscription = None
        self._worker = None
        self._frames_seen = 0
        self._last_submit = 0.0

    # subclass hooks
    def load_model(self, params: SimpleNamespace):
        raise NotImplementedError

    def process_frame(self, msg: Image) -> None:
        raise NotImplementedError

    # lifecycle
    def configure(self, params: SimpleNamespace) -> None:
        self.model = self.log_stage("loading model", lambda: self.load_model(params))

    def activate(self) -> None:
        self._frames_seen = 0
        self._image_group.idle = True
        if self.params.stream:
            self._worker = LatestOnlyWorker(self._process_guarded, name=f"{self.get_name()}-worker",
                                            on_error=self._warn_frame_failed)
        # Subscribed once and gated by state, never destroyed in a transition: destroying it while
        # another executor thread's wait set holds it raises InvalidHandle out of spin().
        if self._subscription is None:
            self._subscription = self.create_subscription(Image, "image", self._on_image, LATEST_FRAME_QOS,
                                                          callback_group=self._image_group)

    def deactivate(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()

    def cleanup(self) -> None:
        with self.model_lock:
            if self.model is not None and hasattr(self.model, "close"):
                self.model.close()
            self.model = None

    def loaded_model(self):
        """The model, for a request that is running; hold ``model_lock`` while using it.

        A request accepted while the node was active can start after a deactivate and cleanup
        have unloaded the model: the caller is told the node is not active (any more).
        """
        if self.model is None:
            raise VlaInputError(f"{self.get_name()} is not active (no model loaded): configure and activate it")
        return self.model

    # streaming
    def _on_image(self, msg: Image) -> None:
        worker, params = self._worker, self.params  # a transition may clear them meanwhile
        if not self.active:
            return
        self.remember_image(msg)
        self._frames_seen += 1
        if worker is None or params is None or (self._frames_seen - 1) % params.process_every_n:
            return
        now = time.monotonic()
        if params.max_rate > 0 and now - self._last_submit < 1.0 / params.max_rate:
            return
        self._last_submit = now
        self._image_group.idle = False
        worker.submit(msg)

    def _process_guarded(self, msg: Image) -> None:
        try:
            if self.active:
                self.process_frame(msg)
        finally:
            self._image_group.idle = True
            self._worker_done.trigger()

    def _warn_frame_failed(self, error: BaseException) -> None:
        self.get_logger().warning(f"frame skipped: {type(error).__name__}: {error}", throttle_duration_sec=5.0)

    @property
    def frames_dropped(self) -> int:
        return self._worker.dropped if self._worker is not None else 0
