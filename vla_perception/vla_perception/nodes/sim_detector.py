"""detector_node's ``backend: sim``: the simulator's scene as detections. A simulation backend, not a model.

For each image it asks sim_camera's ``~/ground_truth`` for the frame with the image's stamp and turns
the true boxes into a detector's output with noise, confusions and distractor boxes
(:mod:`vla_perception.sim.detection`), so the pick pipeline runs detect -> re-rank -> localise ->
plan through detector_node's own Detect service and messages in the simulator.
"""
from __future__ import annotations

import time

import numpy as np
from rclpy.callback_groups import ReentrantCallbackGroup
from vla_perception_interfaces.srv import GetGroundTruth

from vla_perception import names
from vla_perception.bridge.messages import detections_from_msg
from vla_perception.bridge.services import call_service
from vla_perception.core.models.checks import prompt_phrases
from vla_perception.core.models.results import DetectionResult
from vla_perception.sim.detection import simulated_detections

MODEL_ID = "simulation backend (sim_camera ground truth + noise; not a model)"


class SimulatedDetector:
    backend = "sim"
    model_id = MODEL_ID

    def __init__(self, node, latency: float = 0.0, timeout: float = 10.0):
        self._node, self._latency, self._timeout = node, latency, timeout
        self._client = node.create_client(GetGroundTruth, names.GROUND_TRUTH.relative,
                                          callback_group=ReentrantCallbackGroup())

    def check_prompt(self, prompt) -> list[str]:
        """The prompt's phrases (no token limit: the simulator reads labels, not text)."""
        return prompt_phrases(prompt)

    def detect(self, image: np.ndarray, prompt, box_threshold: float = 0.35, text_threshold: float = 0.25,
               stamp=None) -> DetectionResult:
        """Detections of ``prompt`` in the simulator's frame stamped ``stamp`` (the image's)."""
        started = time.monotonic()
        phrases = prompt_phrases(prompt)
        truth = call_service(self._client, GetGroundTruth.Request(stamp=stamp), self._timeout)
        objects = [(d.label, d.box) for d in detections_from_msg(truth.detections)]
        rng = np.random.default_rng([truth.header.stamp.sec, truth.header.stamp.nanosec])
        found = simulated_detections(objects, phrases, (image.shape[1], image.shape[0]), rng)
        time.sleep(max(0.0, self._latency - (time.monotonic() - started)))
        return DetectionResult([d for d in found if d.score >= box_threshold], " . ".join(phrases) + " .",
                               self.model_id, time.monotonic() - started)

    def close(self) -> None:
        self._node.destroy_client(self._client)
