"""ROS-free decisions of the grasp orchestrator: settings, detection acceptance, matching, alignment.

The node turns messages into core types and calls these; the pipeline itself is in
``pick_pipeline``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from vla_perception import names
from vla_perception.core import robot
from vla_perception.core.geometry import pose_matrix
from vla_perception.core.grounding import GROUNDING_MODES
from vla_perception.core.parameters import ParamSpec, in_range, one_of
from vla_perception.core.pick_pipeline import StageFailure
from vla_perception.core.types import Detection, Object3D


def _pose7(value) -> Optional[str]:
    if len(value) != 7 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value):
        return "must be 7 numbers: x y z qx qy qz qw"
    return None if abs(np.linalg.norm(value[3:]) - 1.0) < 1e-3 else "the quaternion qx qy qz qw must have norm 1"


def _joints7(value) -> Optional[str]:
    return None if len(value) == 7 else "must list the 7 arm joint positions (rad)"


PARAMS = [
    ParamSpec("detection_source", "detector", "detector: detector_node's ~/detect (any backend, the simulator's "
              "included); ground_truth: debugging only, the simulator's true boxes bypass detection and "
              "re-ranking", one_of("detector", "ground_truth")),
    ParamSpec("box_threshold", 0.35, "a candidate needs at least this detection score", in_range(0.0, 1.0)),
    ParamSpec("query_threshold", 0.05, "threshold the detector is queried with, so a failure can name the best "
              "candidate below box_threshold", in_range(0.0, 1.0)),
    ParamSpec("rerank", True, "re-rank candidates with clip_node's crops against the phrase"),
    ParamSpec("pin_snapshot", True, "take one synchronised colour + depth + camera_info set when a pick starts "
              "and send that same set to every stage; false (debugging only): the nodes use their latest frame "
              "(pose_node the depth nearest the detections' stamp), so re-rank, verify and a moving camera's "
              "pose may be of other moments"),
    ParamSpec("snapshot_timeout", 5.0, "seconds a pick waits for a synchronised colour + depth + camera_info set",
              in_range(0.1, 600.0)),
    ParamSpec("sync_slop", 0.05, "max stamp difference (s) between the colour, depth and camera_info of a "
              "snapshot", in_range(0.0, 10.0)),
    ParamSpec("planner", "auto", "auto (moveit when moveit_py imports and a MoveIt config was passed, else "
              "embedded), embedded (roboplan), "
              "moveit or poses_only", one_of("auto", "embedded", "moveit", "poses_only")),
    ParamSpec("base_frame", robot.BASE_FRAME, "robot base frame: plans and markers are in it"),
    ParamSpec("camera_pose", list(robot.SIM_CAMERA_POSE), "camera optical frame in base_frame: x y z qx qy qz qw "
              "(static extrinsic used when TF has none; the default is the simulator's camera)", _pose7),
    ParamSpec("use_tf", True, "look the camera pose up in TF (when tf2_ros is importable) before camera_pose"),
    ParamSpec("start_joints", list(robot.READY_JOINTS), "arm joints to plan from until joint_states arrive (the "
              "moveit planner starts from MoveIt's planning scene instead)", _joints7),
    ParamSpec("stage_timeout", 60.0, "seconds one stage's service call may take", in_range(0.1, 3600.0)),
    ParamSpec("support_plane_z", 0.0, "height (m, base_frame) of the surface objects stand on: a target whose "
              "centre lies below it is refused", in_range(-10.0, 10.0)),
    ParamSpec("max_reach", 0.855, "farthest target centre (m) from the base_frame origin the arm is asked to "
              "reach (Franka Panda: 0.855)", in_range(0.05, 10.0)),
    ParamSpec("verify_question", "is the {object} in the gripper?", "asked of vlm_node after execution"),
    ParamSpec("grounding", "rules", "who picks the object a command refers to: rules (the parser's selector), "
              "rules_then_vlm (the VLM when the rules cannot resolve the reference) or vlm (always the VLM, "
              "through vlm_node's ~/ask with the numbered candidates)", one_of(*GROUNDING_MODES)),
    ParamSpec("detector_service", names.DETECT.relative, "Detect service"),
    ParamSpec("classifier_service", names.CLASSIFY.relative, "Classify service (re-ranking)"),
    ParamSpec("pose_service", names.ESTIMATE.relative, "EstimatePoses service"),
    ParamSpec("vlm_service", names.ANSWER.relative, "AnswerQuestion service (verify)"),
    ParamSpec("ask_service", names.ASK.relative, "Ask service (grounding with the VLM)"),
    ParamSpec("ground_truth_service", names.GROUND_TRUTH.relative, "GetGroundTruth service (ground_truth source)"),
    ParamSpec("execute_service", names.EXECUTE.relative, "ExecuteGrasp service (execution)"),
]


@dataclass
class Settings:
    detection_source: str
    box_threshold: float
    query_threshold: float
    rerank: bool
    pin_snapshot: bool
    snapshot_timeout: float
    sync_slop: float
    planner: str
    base_frame: str
    camera_pose: list
    use_tf: bool
    start_joints: list
    stage_timeout: float
    support_plane_z: float
    max_reach: float
    verify_question: str
    grounding: str
    detector_service: str
    classifier_service: str
    pose_service: str
    vlm_service: str
    ask_service: str
    ground_truth_service: str
    execute_service: str

    def camera_in_base(self) -> np.ndarray:
        return pose_matrix(self.camera_pose[:3], self.camera_pose[3:])


SUPPORT_PLANE_TOLERANCE = 0.02  # m: depth noise and a thin object's centre close to the surface


def require_in_workspace(target: Object3D, support_plane_z: float, max_reach: float, base_frame: str) -> None:
    """Refuse a target no grasp can be right for: non-finite, under the support plane, or out of reach."""
    position = np.asarray(target.position, float)
    where = f"'{target.label}' at {np.round(position, 3).tolist()} m in {base_frame}"
    if not np.all(np.isfinite(position)):
        raise StageFailure("planning", f"{where} is not a finite position")
    if position[2] < support_plane_z - SUPPORT_PLANE_TOLERANCE:
        raise StageFailure("planning", f"{where} lies {support_plane_z - position[2]:.3f} m below the support "
                                       f"plane (z = {support_plane_z:.3f} m): a bad detection or depth, not graspable")
    if np.linalg.norm(position) > max_reach:
        raise StageFailure("planning", f"{where} is {np.linalg.norm(position):.3f} m from the base, beyond the "
                                       f"arm's reach of {max_reach:.3f} m")


def accept_detections(phrase: str, detections: list[Detection], threshold: float) -> list[Detection]:
    """Detections at or above ``threshold``, best first; else a failure naming the best one below it."""
    ranked = sorted(detections, key=lambda d: d.score, reverse=True)
    accepted = [d for d in ranked if d.score >= threshold]
    if accepted:
        return accepted
    if ranked:
        best = ranked[0]
        raise StageFailure("detecting", f"no '{phrase}' above threshold {threshold:.2f}; "
                                        f"best was '{best.label}' at {best.score:.2f}")
    raise StageFailure("detecting", f"nothing matching '{phrase}' was detected")


def match_ground_truth(phrase: str, detections: list[Detection]) -> list[Detection]:
    """Debugging stand-in for a detector: ground-truth objects whose label shares words with the phrase.

    Score = fraction of the phrase's words found in the label, so "red mug" matches the red
    mug (1.0) above a blue mug (0.5); labels sharing no word are not candidates.
    """
    from vla_perception.core.language import phrase_match

    matched = []
    for detection in detections:
        overlap = phrase_match(phrase, detection.label)
        if overlap > 0:
            matched.append(Detection(detection.label, overlap, detection.box, detection.phrase, detection.mask))
    return accept_detections(phrase, matched, 0.0)


def rerank_labels(phrase: str, detections: list[Detection]) -> list[str]:
    """CLIP labels for re-ranking: the phrase first, then what else the detector saw, then background."""
    others = sorted({d.label for d in detections} - {phrase})
    return [phrase, *others, "an empty table"]


def align_objects(count: int, objects: list[tuple[str, Object3D]]) -> list[Optional[Object3D]]:
    """(id, object) pairs from pose_node (id = index of the detection) -> one slot per detection."""
    slots: list[Optional[Object3D]] = [None] * count
    for object_id, obj in objects:
        if object_id.isdigit() and int(object_id) < count:
            slots[int(object_id)] = obj
    return slots


def arm_joints_from_state(names, positions) -> Optional[list[float]]:
    """The 7 Panda arm joints from a JointState's names/positions, or None when some are missing or not finite."""
    lookup = dict(zip(names, positions))
    if not all(name in lookup for name in robot.ARM_JOINT_NAMES):
        return None
    joints = [float(lookup[name]) for name in robot.ARM_JOINT_NAMES]
    return joints if all(math.isfinite(q) for q in joints) else None


@dataclass
class PickContext:
    """What one pick learns along the way: its snapshot, the frame it detected in, the simulator's object names."""

    snapshot: Any = None  # the colour/depth/camera_info set every stage uses (None: not pinned)
    executed_at: Optional[float] = None  # clock seconds when execution ended (the verify frame must be later)
    verify_stamp: Any = None  # stamp of the frame the verify question was about
    header: Any = None
    image_size: tuple = (0, 0)
    prompt: str = ""
    names: list[str] = field(default_factory=list)
    phrase: str = ""  # the parsed object phrase
    detections: list[Detection] = field(default_factory=list)  # the candidates selection chose from

    def remember_frame(self, header, image_size, prompt: str = "") -> None:
        self.header, self.image_size, self.prompt = header, tuple(image_size), prompt

    @property
    def stamp(self):
        """The snapshot's stamp (builtin_interfaces/Time), None without a snapshot."""
        return self.snapshot.header.stamp if self.snapshot is not None else None

    @property
    def frame_id(self) -> str:
        return getattr(self.header, "frame_id", "") or ""

    def object_name(self, detection: Detection) -> str:
        """The simulator's name of a ground-truth detection (carried in its phrase); '' otherwise."""
        return detection.phrase if detection.phrase in self.names else ""


def parse(command: str):
    from vla_perception.core.language import parse_command

    return parse_command(command)


def select(parsed, detections: list[Detection], objects: list[Optional[Object3D]],
           references: list[Detection]) -> int:
    from vla_perception.core.language import Candidate, select_from

    return select_from(parsed, detections, objects, [Candidate(reference) for reference in references])


def require_plan(plan):
    """A planner's result, or the stage failure that says why there is none."""
    if not plan.success:
        raise StageFailure("planning", plan.message)
    return plan
