"""The graph's ROS names, each written once: nodes, their services, actions and private topics.

A node offers an endpoint under its private name (``~/detect``); a client in the same namespace reaches it
by the relative name (``detector_node/detect``), so a graph started in a namespace keeps working, and a tool
outside any namespace uses the absolute one (``/detector_node/detect``). Nodes, the orchestrator's
parameter defaults, the CLI, the demo, the benchmarks and the tests all take the names from here;
test_names_single_source.py checks that no other file spells them.
"""
from __future__ import annotations

from dataclasses import dataclass

CLIP_NODE = "clip_node"
DETECTOR_NODE = "detector_node"
VLM_NODE = "vlm_node"
POSE_NODE = "pose_node"
GRASP_ORCHESTRATOR = "grasp_orchestrator"
SIM_CAMERA = "sim_camera"
TRACKER_NODE = "tracker_node"


@dataclass(frozen=True)
class Endpoint:
    """A service, action or topic that belongs to one node."""

    node: str
    name: str

    @property
    def private(self) -> str:
        """What the node itself passes to create_service / create_publisher."""
        return f"~/{self.name}"

    @property
    def relative(self) -> str:
        """How another node of the same graph (same namespace) names it."""
        return f"{self.node}/{self.name}"

    @property
    def absolute(self) -> str:
        """How a tool outside any namespace names it."""
        return f"/{self.relative}"


# services
DETECT = Endpoint(DETECTOR_NODE, "detect")
DETECTOR_SET_PROMPT = Endpoint(DETECTOR_NODE, "set_prompt")
CLASSIFY = Endpoint(CLIP_NODE, "classify")
CLIP_SET_PROMPT = Endpoint(CLIP_NODE, "set_prompt")
CAPTION = Endpoint(VLM_NODE, "caption")
ANSWER = Endpoint(VLM_NODE, "answer")
ASK = Endpoint(VLM_NODE, "ask")
ESTIMATE = Endpoint(POSE_NODE, "estimate")
PLAN_GRASP = Endpoint(GRASP_ORCHESTRATOR, "plan_grasp")
GROUND_TRUTH = Endpoint(SIM_CAMERA, "ground_truth")
EXECUTE = Endpoint(SIM_CAMERA, "execute")
RESET = Endpoint(SIM_CAMERA, "reset")
# actions
PICK = Endpoint(GRASP_ORCHESTRATOR, "pick")
# private topics
DETECTIONS = Endpoint(DETECTOR_NODE, "detections")
DETECTOR_PROMPT = Endpoint(DETECTOR_NODE, "prompt")
DETECTOR_DEBUG_IMAGE = Endpoint(DETECTOR_NODE, "debug_image")
DETECTIONS_2D = Endpoint(DETECTOR_NODE, "detections_2d")  # vision_msgs
LABEL_INFO = Endpoint(DETECTOR_NODE, "label_info")  # vision_msgs
CLIP_LABELS = Endpoint(CLIP_NODE, "labels")
CLASSIFICATION = Endpoint(CLIP_NODE, "classification")
CAPTION_TOPIC = Endpoint(VLM_NODE, "caption")
OBJECTS = Endpoint(POSE_NODE, "objects")
POSE_MARKERS = Endpoint(POSE_NODE, "markers")
DETECTIONS_3D = Endpoint(POSE_NODE, "detections_3d")  # vision_msgs
TRACKS = Endpoint(TRACKER_NODE, "tracks")
TRACKS_2D = Endpoint(TRACKER_NODE, "tracks_2d")  # vision_msgs
TRACKER_MARKERS = Endpoint(TRACKER_NODE, "markers")
TRACKER_DEBUG_IMAGE = Endpoint(TRACKER_NODE, "debug_image")
GRASP_MARKERS = Endpoint(GRASP_ORCHESTRATOR, "markers")

SERVICES = (DETECT, DETECTOR_SET_PROMPT, CLASSIFY, CLIP_SET_PROMPT, CAPTION, ANSWER, ASK, ESTIMATE, PLAN_GRASP,
            GROUND_TRUTH, EXECUTE, RESET)
ACTIONS = (PICK,)
