"""``vla-perception pick "pick up the red mug"``: send grasp_orchestrator's ``~/pick`` action goal.

Prints each feedback stage as it arrives (with the seconds since the goal was accepted),
then the result: success, message, the chosen object, the planner, its planning time and
the trajectory's length. Exit code 0 when the pick succeeded, 1 when it failed or was
cancelled, 2 when the action server is not there. Ctrl-C cancels the goal and waits (a
few seconds at most) for the orchestrator to confirm.

:func:`send_pick` is the same conversation for other code (the demo uses it) on a node
the caller spins.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from vla_perception import names
from vla_perception.bringup.environment import ros_environment

DEFAULT_ACTION = names.PICK.absolute
CANCEL_WAIT = 10.0  # seconds to wait for the orchestrator to confirm a cancel (it stops between stages)
TIMEOUT_GRACE = 2.0  # seconds past --timeout before cancelling here (the orchestrator may report its own)
FEEDBACK_DRAIN = 0.2  # seconds to keep listening for feedback after the result arrived
STATUS_NAMES = {0: "unknown", 1: "accepted", 2: "executing", 3: "canceling", 4: "succeeded", 5: "canceled",
                6: "aborted"}


def add_arguments(parser, command):
    parser.add_argument("sentence", help="what to pick, e.g. 'pick up the red mug on the left'")
    parser.add_argument("--execute", action="store_true", help="execute the plan (simulator or robot)")
    parser.add_argument("--verify", action="store_true", help="after execution, ask vlm_node if it worked")
    parser.add_argument("--action", default=DEFAULT_ACTION, help="the Pick action (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="seconds for the whole pick, sent with the goal and enforced here by cancelling "
                             "(default 0: the orchestrator's per-stage timeouts, no limit here)")
    parser.add_argument("--server-timeout", type=float, default=15.0,
                        help="seconds to wait for the action server to appear (default: %(default)s)")


# ----- formatting (pure: the tests and the demo read these lines) -----------------------------------
def format_feedback(stage: str, detail: str, elapsed: float) -> str:
    return f"[{elapsed:6.2f} s] {stage:<11} {detail}"


def format_result(status: int, result) -> list[str]:
    """Lines describing a Pick result: outcome and message, then the plan when there is one."""
    outcome = STATUS_NAMES.get(status, str(status))
    if status == 4 and result.success:
        lines = [f"succeeded: {result.message}"]
    elif status == 5:
        lines = [f"cancelled: {result.message or 'the goal was cancelled'}"]
    else:
        stage = f" at {result.failed_stage}" if result.failed_stage else ""
        lines = [f"failed{stage} ({outcome}): {result.message}"]
    stamp = result.header.stamp
    if stamp.sec or stamp.nanosec:
        lines.append(f"  snapshot: {stamp.sec}.{stamp.nanosec:09d} (every stage used this frame)")
    lines += plan_lines(result.plan)
    if result.executed:
        verdict = "lifted" if result.lifted else "NOT lifted"
        lines.append(f"  executed: '{result.measured_object}' {verdict} ({result.lift_height * 1000:.0f} mm)")
    if result.verify_answer:
        lines.append(f"  verify answer: {result.verify_answer}")
    if result.stage_names:
        lines.append("  stage times: " + ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in
                                                   zip(result.stage_names, result.stage_seconds)))
    return lines


def plan_lines(plan) -> list[str]:
    if not plan.planner and not plan.candidates:
        return []
    obj = plan.object
    position = [round(v, 3) for v in (obj.pose.position.x, obj.pose.position.y, obj.pose.position.z)]
    size = [round(v * 1000) for v in (obj.size.x, obj.size.y, obj.size.z)]
    lines = [f"  object: '{obj.label}' at {position} m in {plan.header.frame_id}, size {size} mm"]
    chosen = (f", executing candidate {plan.chosen_candidate + 1} "
              f"({plan.candidates[plan.chosen_candidate].approach_type})"
              if 0 <= plan.chosen_candidate < len(plan.candidates) else "")
    lines.append(f"  planner: {plan.planner}, planning time {plan.planning_time:.2f} s, "
                 f"{len(plan.candidates)} grasp candidate(s){chosen}")
    lines.append(f"  trajectory: {len(plan.trajectory.points)} points to the grasp, "
                 f"{len(plan.lift_trajectory.points)} points to lift")
    return lines


# ----- the action conversation ------------------------------------------------------------------------
@dataclass
class PickOutcome:
    status: int  # action_msgs/GoalStatus; 0 when there was no goal
    result: object = None  # Pick.Result
    feedback: list = field(default_factory=list)  # (stage, detail, elapsed)
    error: str = ""  # why there is no result (no server, rejected, no answer)
    interrupted: bool = False  # Ctrl-C cancelled it
    timed_out: bool = False  # ``timeout`` passed and it was cancelled here
    server_found: bool = True


FeedbackCallback = Callable[[str, str, float], None]  # stage, detail, elapsed


def send_pick(node, spin_once: Callable[[float], None], action: str, sentence: str, execute: bool = False,
              verify: bool = False, timeout: float = 0.0, server_timeout: float = 15.0,
              on_feedback: FeedbackCallback = lambda stage, detail, elapsed: None) -> PickOutcome:
    """Send one Pick goal from ``node`` and wait for its result, calling ``spin_once(seconds)`` meanwhile.

    ``timeout`` > 0 goes with the goal and cancels it here when passed (plus a grace for the
    orchestrator to answer). KeyboardInterrupt while waiting cancels the goal, waits for the
    cancelled result and returns it with ``interrupted`` set.
    """
    from rclpy.action import ActionClient
    from vla_perception_interfaces.action import Pick

    client = ActionClient(node, Pick, action)
    try:
        if not wait_until(client.server_is_ready, server_timeout, spin_once):
            return PickOutcome(0, server_found=False, error=f"action server {action} is not available "
                                        "(is grasp_orchestrator running? 'vla-perception up' starts it)")
        outcome = PickOutcome(0)

        def feedback_received(message):
            fb = message.feedback
            outcome.feedback.append((fb.stage, fb.detail, fb.elapsed))
            on_feedback(fb.stage, fb.detail, fb.elapsed)

        goal = Pick.Goal(command=sentence, execute=execute, verify=verify, timeout=float(timeout))
        goal_future = client.send_goal_async(goal, feedback_callback=feedback_received)
        answered = wait_or_interrupt(goal_future.done, server_timeout, spin_once, outcome)
        if outcome.interrupted:  # the goal may be accepted already: wait for the answer, to cancel it
            answered = wait_until(goal_future.done, CANCEL_WAIT, spin_once)
        if not answered:
            outcome.error = f"{action} did not answer the goal request within {server_timeout:.0f} s"
            return outcome
        handle = goal_future.result()
        if not handle.accepted:
            outcome.error = f"{action} rejected the goal (busy with another pick?)"
            return outcome
        result_future = handle.get_result_async()
        limit = timeout + TIMEOUT_GRACE if timeout > 0 else None
        if outcome.interrupted or not wait_or_interrupt(result_future.done, limit, spin_once, outcome):
            outcome.timed_out = not outcome.interrupted
            handle.cancel_goal_async()
            if not wait_until(result_future.done, CANCEL_WAIT, spin_once):
                why = "interrupted" if outcome.interrupted else f"no result within {timeout:.0f} s"
                outcome.error = (f"{why}; cancel requested but {action} did not confirm "
                                 f"within {CANCEL_WAIT:.0f} s")
                return outcome
        response = result_future.result()
        outcome.status, outcome.result = response.status, response.result
        # Feedback is a topic and the result a service: the last stage's feedback can arrive just after.
        wait_until(lambda: False, FEEDBACK_DRAIN, spin_once)
        return outcome
    finally:
        client.destroy()


def wait_or_interrupt(condition: Callable[[], bool], timeout: Optional[float], spin_once,
                      outcome: PickOutcome) -> bool:
    """Like :func:`wait_until`, but Ctrl-C sets ``outcome.interrupted`` and returns False."""
    try:
        return wait_until(condition, timeout, spin_once)
    except KeyboardInterrupt:
        outcome.interrupted = True
        return False


def wait_until(condition: Callable[[], bool], timeout: Optional[float], spin_once) -> bool:
    """Spin until ``condition()``; False when ``timeout`` seconds pass first (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
    while not condition():
        if deadline is not None and time.monotonic() >= deadline:
            return False
        spin_once(0.05)
    return True


def run(args) -> int:
    ros_environment()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    # No rclpy signal handler: Ctrl-C must raise KeyboardInterrupt with the context alive, to send the cancel.
    context = rclpy.Context()
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(f"vla_perception_pick_{os.getpid()}", context=context,
                             start_parameter_services=False)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    flags = ", ".join(name for name, on in (("execute", args.execute), ("verify", args.verify)) if on)
    print(f"pick: '{args.sentence}' -> {args.action} ({flags or 'plan only'})", flush=True)
    try:
        outcome = send_pick(node, lambda seconds: executor.spin_once(timeout_sec=seconds), args.action,
                            args.sentence, args.execute, args.verify, args.timeout, args.server_timeout,
                            on_feedback=lambda *fb: print(format_feedback(*fb), flush=True))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    if outcome.interrupted:
        print("interrupted: goal cancel requested", flush=True)
    elif outcome.timed_out:
        print(f"timed out after {args.timeout:g} s: goal cancel requested", flush=True)
    if outcome.result is None:
        print(f"failed: {outcome.error}", file=sys.stderr)
        return 1 if outcome.server_found else 2
    print("\n".join(format_result(outcome.status, outcome.result)), flush=True)
    return 0 if outcome.status == 4 and outcome.result.success else 1
