"""Grasp candidates and plans (core.planning) <-> GraspCandidate / GraspPlan messages and markers."""
from __future__ import annotations

import numpy as np
from visualization_msgs.msg import MarkerArray

from vla_perception.bridge.markers import arrow_marker, object_markers, path_marker
from vla_perception.bridge.messages import object_to_msg, pose_to_msg, trajectory_to_msg
from vla_perception.core.grasp import GraspCandidate
from vla_perception_interfaces import msg as interface_msgs



def candidate_to_msg(candidate: GraspCandidate) -> interface_msgs.GraspCandidate:
    msg = interface_msgs.GraspCandidate(
        approach_type=candidate.approach_type, pre_grasp=pose_to_msg(candidate.pregrasp, candidate.orientation),
        grasp=pose_to_msg(candidate.position, candidate.orientation),
        lift=pose_to_msg(candidate.lift, candidate.orientation), gripper_width=float(candidate.width),
        score=float(candidate.score))
    msg.approach.x, msg.approach.y, msg.approach.z = (float(v) for v in candidate.approach)
    return msg


def grasp_plan_msg(plan, target, header) -> interface_msgs.GraspPlan:
    """A GraspPlan message from a planning PlanResult and the chosen object (both in header.frame_id)."""
    msg = interface_msgs.GraspPlan(header=header, candidates=[candidate_to_msg(c) for c in plan.candidates],
                                   chosen_candidate=int(plan.chosen_index), planner=plan.planner,
                                   planning_time=float(plan.planning_time))
    if target is not None:
        msg.object = object_to_msg(target, 0)
    for name in ("trajectory", "lift_trajectory"):
        trajectory = getattr(plan, name)
        if not trajectory.empty:
            setattr(msg, name, trajectory_to_msg(trajectory.joint_names, trajectory.positions, trajectory.times))
            getattr(msg, name).header = header
    return msg


def plan_markers(target, plan, header, tcp_path=None) -> MarkerArray:
    """The chosen object, an arrow per grasp candidate (pre-grasp -> grasp) and the planned TCP path."""
    markers = object_markers([target], header, namespace="chosen_object")
    if plan is not None:
        for index, candidate in enumerate(plan.candidates):
            colour = (0.1, 0.9, 0.1) if index == plan.chosen_index else (1.0, 0.6, 0.0)
            markers.markers.append(arrow_marker(candidate.pregrasp, candidate.position, header, "grasp_candidates",
                                                index, colour))
        if tcp_path is not None and len(tcp_path) >= 2:
            markers.markers.append(path_marker(np.asarray(tcp_path), header, "planned_path", 0, (0.2, 0.4, 1.0)))
    return markers

