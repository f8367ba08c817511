"""Command parsing: "pick up the second red cup from the left" -> object phrase + a selector.

The phrase (colours, attributes, unknown words kept) goes to the detector; the selector is
resolved after detection on the candidates' 2D boxes (left/right/top/bottom/middle),
depths (nearest/farthest), 3D sizes (largest/smallest/tallest) or distance to a reference
object ("next to the bowl").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from vla_perception.core.types import Detection, Object3D, VlaInputError

VERBS = ("pick up", "pick", "grab", "get me", "get", "take", "fetch", "hand me", "give me", "bring me",
         "bring", "grasp", "lift", "find", "select", "point at", "go to", "please", "could you",
         "can you", "i want",
         "show me")
ARTICLES = {"the", "a", "an", "that", "this", "one", "object", "thing"}
ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
            "fifth": 5, "5th": 5, "last": -1}
DIRECTIONS = {"left": "left", "leftmost": "left", "right": "right", "rightmost": "right", "top": "top",
              "topmost": "top", "upper": "top", "bottom": "bottom", "lower": "bottom", "middle": "middle",
              "center": "middle", "centre": "middle", "central": "middle"}
SUPERLATIVES = {"nearest": "nearest", "closest": "nearest", "farthest": "farthest", "furthest": "farthest",
                "largest": "largest", "biggest": "largest", "smallest": "smallest", "tiniest": "smallest",
                "tallest": "tallest", "highest": "tallest"}
_DIRECTION_WORDS = "|".join(sorted(DIRECTIONS, key=len, reverse=True))
_ORDINAL_WORDS = "|".join(ORDINALS)


@dataclass(frozen=True)
class Selector:
    """How to choose among candidates: kind in {'best', direction, superlative, 'next_to'}."""

    kind: str = "best"  # or left/right/top/bottom/middle, nearest/..., next_to/left_of/right_of
    ordinal: int = 1  # 1-based; -1 = last
    reference: str = ""  # phrase of the reference object for 'next_to'


@dataclass(frozen=True)
class ParsedCommand:
    text: str
    phrase: str
    selector: Selector = Selector()


@dataclass
class Candidate:
    """A detection and, when localised, its 3D object (any frame where z of an optical frame is depth)."""

    detection: Detection
    object3d: Optional[Object3D] = None


def _normalise(text: str) -> str:
    text = text.lower().strip()
    text = re.sub(r"[^\w\s'-]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _strip_verbs(text: str) -> str:
    changed = True
    while changed:
        changed = False
        for verb in sorted(VERBS, key=len, reverse=True):
            if text == verb or text.startswith(verb + " "):
                text = text[len(verb):].strip()
                changed = True
    return text


def _clean_phrase(words: str) -> str:
    fillers = ARTICLES | {"on", "at", "in", "from", "to", "of", "up", "which", "is", "are", "that's"}
    tokens = [t for t in words.split() if t not in fillers]
    return " ".join(tokens)


_SCENE_WORDS = r"(?:table|workspace|image|picture|screen|frame|view|scene)"


def _extract_selector(text: str) -> tuple[str, Selector]:
    """Remove the spatial/ordinal part from ``text``; return what remains and the selector."""
    # "on the right side of the table" is a plain direction, not a relation to a table object
    text = re.sub(rf"\b({_DIRECTION_WORDS})(?: side| part| half)? of (?:the )?{_SCENE_WORDS}\b", r"\1", text)
    match = re.search(r"\b(?:to the |on the )?(left|right) of\s+(.+)$", text)
    if match:
        reference = _clean_phrase(match.group(2))
        if not reference:
            raise VlaInputError(f"'{match.group(1)} of' needs an object after it, "
                                "e.g. 'the cup to the left of the bowl'")
        return text[:match.start()].strip(), Selector(f"{match.group(1)}_of", reference=reference)
    match = re.search(r"\b(next to|beside|near|by)\s+(.+)$", text)
    if match:
        reference = _clean_phrase(match.group(2))
        if not reference:
            raise VlaInputError(f"'{match.group(1)}' needs an object after it, "
                                "e.g. 'the cup next to the bowl'")
        return text[:match.start()].strip(), Selector("next_to", reference=reference)
    # "second from the left", "third one from the right"
    match = re.search(rf"\b({_ORDINAL_WORDS})\b(.*?)\bfrom (?:the )?({_DIRECTION_WORDS})\b(?: side)?", text)
    if match:
        rest = (text[:match.start()] + " " + match.group(2) + " " + text[match.end():]).strip()
        return rest, Selector(DIRECTIONS[match.group(3)], ordinal=ORDINALS[match.group(1)])
    for word, kind in SUPERLATIVES.items():
        match = re.search(rf"\b{word}\b", text)
        if match:
            rest = text[:match.start()] + " " + text[match.end():]
            rest = re.sub(r"\b(to|from) (?:the )?(me|camera|robot|you)\b", " ", rest)
            return rest.strip(), Selector(kind)
    # "on the left", "to the right", "at the top", "left cup", "leftmost cup"
    match = re.search(rf"\b(?:(?:on|to|at|in) (?:the )?(?:far )?)?({_DIRECTION_WORDS})\b(?: side)?", text)
    if match:
        rest = text[:match.start()] + " " + text[match.end():]
        ordinal_match = re.search(rf"\b({_ORDINAL_WORDS})\b", rest)
        ordinal = 1
        if ordinal_match:
            ordinal = ORDINALS[ordinal_match.group(1)]
            rest = rest[:ordinal_match.start()] + " " + rest[ordinal_match.end():]
        return rest.strip(), Selector(DIRECTIONS[match.group(1)], ordinal=ordinal)
    return text, Selector()


def parse_command(text: str) -> ParsedCommand:
    """Split a command into the detector phrase and a selector; raise VlaInputError on unusable input."""
    if not text or not text.strip():
        raise VlaInputError("the command is empty: say what to pick, e.g. 'pick up the red cup'")
    normalised = _strip_verbs(_normalise(text))
    rest, selector = _extract_selector(normalised)
    phrase = _clean_phrase(rest)
    if not phrase:
        raise VlaInputError(f"no object named in '{text}': add what to pick, e.g. 'pick up the red cup'")
    return ParsedCommand(text=text, phrase=phrase, selector=selector)


def _depth(candidate: Candidate) -> float:
    return float(np.linalg.norm(candidate.object3d.position))


def _sort_keys(kind: str):
    keys = {
        "left": lambda c: c.detection.box.center[0],
        "right": lambda c: -c.detection.box.center[0],
        "top": lambda c: c.detection.box.center[1],
        "bottom": lambda c: -c.detection.box.center[1],
        "nearest": _depth,
        "farthest": lambda c: -_depth(c),
        "largest": lambda c: -float(np.prod(c.object3d.size)),
        "smallest": lambda c: float(np.prod(c.object3d.size)),
        "tallest": lambda c: -float(np.max(c.object3d.size)),
    }
    return keys[kind]


def _needs_3d(kind: str) -> bool:
    return kind in ("nearest", "farthest", "largest", "smallest", "tallest")


def select_candidate(parsed: ParsedCommand, candidates: Sequence[Candidate],
                     references: Sequence[Candidate] = ()) -> int:
    """Index (into ``candidates``) chosen by the selector; candidates are in detector order (best first).

    ``references`` are the detections of ``parsed.selector.reference`` for 'next_to' selection.
    """
    if not candidates:
        raise VlaInputError(f"no '{parsed.phrase}' was found: check the phrase or the camera view")
    selector = parsed.selector
    indices = list(range(len(candidates)))
    if selector.kind == "best":
        return 0
    if selector.kind in ("next_to", "left_of", "right_of"):
        return _closest_to_reference(parsed, candidates, references)
    if _needs_3d(selector.kind):
        indices = [i for i in indices if candidates[i].object3d is not None]
        if not indices:
            raise VlaInputError(f"'{selector.kind}' needs 3D positions and sizes, but no '{parsed.phrase}' "
                                "was localised: check the depth image")
    if selector.kind == "middle":
        centre = np.mean([candidates[i].detection.box.center[0] for i in indices])
        return min(indices, key=lambda i: abs(candidates[i].detection.box.center[0] - centre))
    ordered = sorted(indices, key=lambda i: _sort_keys(selector.kind)(candidates[i]))
    position = selector.ordinal - 1 if selector.ordinal > 0 else len(ordered) + selector.ordinal
    if not 0 <= position < len(ordered):
        raise VlaInputError(f"asked for number {selector.ordinal} from the {selector.kind} but only "
                            f"{len(ordered)} '{parsed.phrase}' found: "
                            "ask for a lower position or show more objects")
    return ordered[position]


def _closest_to_reference(parsed: ParsedCommand, candidates: Sequence[Candidate],
                          references: Sequence[Candidate]) -> int:
    if not references:
        raise VlaInputError(f"the reference '{parsed.selector.reference}' was not found: "
                            "check that it is in view")
    reference = references[0]

    def distance(candidate: Candidate) -> float:
        if candidate.object3d is not None and reference.object3d is not None:
            return float(np.linalg.norm(candidate.object3d.position - reference.object3d.position))
        return float(np.hypot(*np.subtract(candidate.detection.box.center, reference.detection.box.center)))

    usable = [i for i, c in enumerate(candidates) if c.detection.box.iou(reference.detection.box) < 0.9]
    side = {"left_of": -1.0, "right_of": 1.0}.get(parsed.selector.kind)
    if side is not None:  # image x: left of the reference means a smaller column
        reference_x = reference.detection.box.center[0]
        usable = [i for i in usable if side * (candidates[i].detection.box.center[0] - reference_x) > 0]
    if not usable:
        raise VlaInputError(f"no '{parsed.phrase}' other than the reference is "
                            f"{parsed.selector.kind.replace('_', ' ')} '{parsed.selector.reference}': "
                            "check the command or the camera view")
    return min(usable, key=lambda i: distance(candidates[i]))


def phrase_match(phrase: str, label: str) -> float:
    """Fraction of the phrase's words found in the label: 'red mug' is 1.0 for 'red mug', 0.5 for 'blue mug'."""
    wanted = set(re.findall(r"[a-z0-9]+", phrase.lower()))
    return len(wanted & set(re.findall(r"[a-z0-9]+", label.lower()))) / max(len(wanted), 1)


def select_from(parsed: ParsedCommand, detections: Sequence[Detection],
                objects: Sequence[Optional[Object3D]], references: Sequence[Candidate] = ()) -> int:
    """``select_candidate`` on aligned detections/objects lists (the pick pipeline's signature)."""
    return select_candidate(parsed, [Candidate(d, o) for d, o in zip(detections, objects)], references)
