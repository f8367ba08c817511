"""Multi-step language tasks -> a validated list of steps (pick, place, verify).

"put the duck and the cube in the tray" -> pick duck, place in tray, verify duck in tray, pick cube, ...
"clear the red things off the table"  -> one pick/place/verify triple per red object in the scene,
                                          placed in the scene's container (tray, bowl, box, ...)

``plan_by_rules`` handles the patterns parsed here; anything else goes to a VLM through
``plan_with_vlm`` (its answer is constrained by ``STEPS_SCHEMA`` and then checked by
``check_steps``). Either way the executor receives only steps that passed ``check_steps``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from vla_perception.core.models.json_answers import ModelOutputError, checked_json_answer
from vla_perception.core.types import VlaInputError

ACTIONS = ("pick", "place", "verify")
CONTAINER_WORDS = ("tray", "bowl", "basket", "bin", "container")  # "box" is ambiguous: name it
TABLE_WORDS = ("table", "free spot", "table surface")
MAX_STEPS = 30
STEPS_SCHEMA = {
    "type": "object", "required": ["steps"], "additionalProperties": False,
    "properties": {"steps": {"type": "array", "minItems": 1, "maxItems": MAX_STEPS, "items": {
        "type": "object", "required": ["action", "object"], "additionalProperties": False,
        "properties": {"action": {"enum": list(ACTIONS)},
                       "object": {"type": "string", "minLength": 1},
                       "target": {"type": "string"}}}}},
}


class TaskPlanningError(VlaInputError):
    """The instruction could not be turned into steps that can be executed."""


@dataclass(frozen=True)
class Step:
    action: str  # pick | place | verify
    object: str  # what is picked / placed / checked
    target: str = ""  # place and verify: the container, or "table" for a free spot on the table

    def describe(self) -> str:
        if self.action == "pick":
            return f"pick the {self.object}"
        where = "a free spot on the table" if is_table(self.target) else f"the {self.target}"
        return f"place the {self.object} in {where}" if self.action == "place" else \
            f"verify the {self.object} is in {where}"


def is_table(target: str) -> bool:
    return target.strip().lower() in TABLE_WORDS


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _object_phrases(text: str) -> list[str]:
    """'the duck, the cube and the red mug' -> ['duck', 'cube', 'red mug']."""
    parts = re.split(r",|\band\b", text)
    phrases = [" ".join(w for w in _words(part) if w not in ("the", "a", "an", "both", "all")) for part in parts]
    return [phrase for phrase in phrases if phrase]


def pick_place_verify(objects: Sequence[str], target: str) -> list[Step]:
    steps = []
    for name in objects:
        steps += [Step("pick", name), Step("place", name, target), Step("verify", name, target)]
    return steps


_PUT = re.compile(r"^(?:please\s+)?(?:put|place|move|drop|store|pack)\s+(?P<objects>.+?)\s+"
                  r"(?:in|into|inside|on|onto|in to|on to)\s+(?:the\s+)?(?P<target>[a-z0-9 ]+?)\s*$")
_CLEAR = re.compile(r"^(?:please\s+)?clear\s+(?:away\s+)?(?P<what>.+?)\s+(?:off|from)\s+(?:of\s+)?the\s+table"
                    r"(?:\s+(?:in|into)\s+(?:the\s+)?(?P<target>[a-z0-9 ]+?))?\s*$")


def plan_by_rules(instruction: str, scene_labels: Sequence[str]) -> Optional[list[Step]]:
    """Steps for the patterns this parser knows, or None (then the VLM planner may be asked)."""
    text = " ".join(_words(instruction.replace("&", " and ")))
    match = _PUT.match(text)
    if match:
        return pick_place_verify(_object_phrases(match.group("objects")), match.group("target").strip())
    match = _CLEAR.match(text)
    if match:
        target = (match.group("target") or "").strip() or _container_in(scene_labels)
        objects = matching_labels(match.group("what"), scene_labels, exclude=target)
        if not objects:
            raise TaskPlanningError(f"nothing in the scene matches '{match.group('what')}' "
                                    f"(seen: {', '.join(scene_labels) or 'nothing'})")
        return pick_place_verify(objects, target)
    return None


def _container_in(scene_labels: Sequence[str]) -> str:
    for label in scene_labels:
        if any(word in CONTAINER_WORDS for word in _words(label)):
            return label
    raise TaskPlanningError("clearing the table needs a container to put things in (a tray, bowl, basket...), "
                            "and none is in view: say where, e.g. 'clear the red things off the table into the bowl'")


def matching_labels(description: str, scene_labels: Sequence[str], exclude: str = "") -> list[str]:
    """Scene labels described by 'the red things' / 'everything' / 'the cubes' (the target excluded)."""
    generic = {"things", "thing", "objects", "object", "items", "item", "stuff", "everything", "all", "the"}
    wanted = {w.rstrip("s") for w in _words(description) if w not in generic}
    excluded = set(_words(exclude))
    labels = [label for label in dict.fromkeys(scene_labels) if not set(_words(label)) & excluded]
    return [label for label in labels if wanted <= {w.rstrip("s") for w in _words(label)}]


def check_steps(steps: Sequence[Step]) -> list[Step]:
    """Refuse step lists that cannot be executed in order; return them as a list."""
    if not steps:
        raise TaskPlanningError("the plan has no steps")
    if len(steps) > MAX_STEPS:
        raise TaskPlanningError(f"the plan has {len(steps)} steps, more than {MAX_STEPS}")
    holding = None
    placed = set()
    for index, step in enumerate(steps, 1):
        where = f"step {index} ({step.action} '{step.object}')"
        if step.action not in ACTIONS or not step.object.strip():
            raise TaskPlanningError(f"{where}: action must be one of {ACTIONS} with an object")
        if step.action == "pick":
            if holding is not None:
                raise TaskPlanningError(f"{where}: the gripper still holds '{holding}'; place it first")
            holding = step.object
        elif step.action == "place":
            if holding != step.object:
                raise TaskPlanningError(f"{where}: '{step.object}' is not in the gripper (holding: {holding})")
            if not step.target.strip():
                raise TaskPlanningError(f"{where}: say where to place it (a container, or 'table')")
            if _words(step.target) and set(_words(step.target)) == set(_words(step.object)):
                raise TaskPlanningError(f"{where}: cannot place an object in itself")
            holding = None
            placed.add((step.object, step.target))
        elif (step.object, step.target) not in placed:
            raise TaskPlanningError(f"{where}: only something placed earlier can be verified")
    if holding is not None:
        raise TaskPlanningError(f"the plan ends holding '{holding}': add where to place it")
    return list(steps)


def steps_from_json(text: str) -> list[Step]:
    """Steps from a planner's JSON answer (validated against STEPS_SCHEMA, then check_steps)."""
    try:
        data = json.loads(checked_json_answer(text, STEPS_SCHEMA))
    except ModelOutputError as error:
        raise TaskPlanningError(f"the VLM planner's answer is unusable: {error}") from None
    return check_steps([Step(s["action"], s["object"].strip(), s.get("target", "").strip()) for s in data["steps"]])


def planner_prompt(instruction: str, scene_labels: Sequence[str]) -> str:
    return (f"A robot arm with a gripper was told: \"{instruction}\".\n"
            f"Objects in view: {', '.join(scene_labels) or 'none'}.\n"
            "Plan it as steps: 'pick' an object, 'place' the held object with target a container in view or "
            "'table' for a free spot, 'verify' a placed object with the same target. Use the objects' names as "
            "listed. Answer with JSON {\"steps\": [{\"action\": ..., \"object\": ..., \"target\": ...}, ...]}.")


def plan_task(instruction: str, scene_labels: Sequence[str], planner: str,
              ask_vlm: Optional[Callable[[str, dict], str]] = None) -> tuple[list[Step], str]:
    """(checked steps, which planner made them). planner: rules | rules_then_vlm | vlm."""
    if not instruction or not instruction.strip():
        raise TaskPlanningError("the task is empty: say what to do, e.g. 'put the duck in the tray'")
    if planner != "vlm":
        steps = plan_by_rules(instruction, scene_labels)
        if steps is not None:
            return check_steps(steps), "rules"
        if planner == "rules":
            raise TaskPlanningError(f"'{instruction}' is not a pattern the rule planner knows ('put X and Y in Z', "
                                    "'clear the X off the table'); set task_planner:=rules_then_vlm to ask the VLM")
    if ask_vlm is None:
        raise TaskPlanningError("the VLM planner is not available")
    return steps_from_json(ask_vlm(planner_prompt(instruction, scene_labels), STEPS_SCHEMA)), "vlm"
