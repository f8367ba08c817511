"""Command parsing table and selection on synthetic candidates (expected values written by hand)."""
import numpy as np
import pytest

from vla_perception.core.language import Candidate, ParsedCommand, Selector, parse_command, select_candidate
from vla_perception.core.types import Box2D, Detection, Object3D, VlaInputError

TABLE = [
    ("pick up the red cup", "red cup", "best", 1, ""),
    ("Grab the blue mug!", "blue mug", "best", 1, ""),
    ("get me the banana", "banana", "best", 1, ""),
    ("take the yellow duck", "yellow duck", "best", 1, ""),
    ("fetch the small green cube", "small green cube", "best", 1, ""),
    ("hand me the screwdriver", "screwdriver", "best", 1, ""),
    ("please pick up the red cup", "red cup", "best", 1, ""),
    ("the striped zorblax", "striped zorblax", "best", 1, ""),
    ("pick up the red cup on the left", "red cup", "left", 1, ""),
    ("grab the mug on the right", "mug", "right", 1, ""),
    ("take the leftmost apple", "apple", "left", 1, ""),
    ("fetch the rightmost bottle", "bottle", "right", 1, ""),
    ("get the cube at the top", "cube", "top", 1, ""),
    ("pick the block at the bottom", "block", "bottom", 1, ""),
    ("grab the middle cup", "cup", "middle", 1, ""),
    ("take the cup in the center", "cup", "middle", 1, ""),
    ("pick up the left red cup", "red cup", "left", 1, ""),
    ("pick up the second cup from the left", "cup", "left", 2, ""),
    ("the third one from the right", None, None, None, None),
    ("grab the third mug from the right", "mug", "right", 3, ""),
    ("take the second red block from the left", "red block", "left", 2, ""),
    ("get the first bottle from the right", "bottle", "right", 1, ""),
    ("pick the last cup from the left", "cup", "left", -1, ""),
    ("fetch the nearest cup", "cup", "nearest", 1, ""),
    ("grab the closest bottle to me", "bottle", "nearest", 1, ""),
    ("take the farthest box", "box", "farthest", 1, ""),
    ("pick up the furthest duck", "duck", "farthest", 1, ""),
    ("get me the largest ball", "ball", "largest", 1, ""),
    ("grab the biggest red cube", "red cube", "largest", 1, ""),
    ("take the smallest cup", "cup", "smallest", 1, ""),
    ("pick up the tallest bottle", "bottle", "tallest", 1, ""),
    ("pick up the cup next to the bowl", "cup", "next_to", 1, "bowl"),
    ("grab the spoon beside the red plate", "spoon", "next_to", 1, "red plate"),
    ("take the duck near the tray", "duck", "next_to", 1, "tray"),
    ("hand me the shiny metal fork", "shiny metal fork", "best", 1, ""),
    ("fetch the cup, the red one on the left", "cup red", "left", 1, ""),
    ("pick up the upper shelf box", "shelf box", "top", 1, ""),
    ("grab the lower drawer handle", "drawer handle", "bottom", 1, ""),
    ("get the second apple from the right side", "apple", "right", 2, ""),
    ("select the 2nd mug from the left", "mug", "left", 2, ""),
    ("bring me the toy car", "toy car", "best", 1, ""),
    ("PICK UP THE RED CUP", "red cup", "best", 1, ""),
    ("could you please pick up the cup that is on the left", "cup", "left", 1, ""),
    ("grab the cup which is closest to me", "cup", "nearest", 1, ""),
    ("pick up the mug to the left of the bowl", "mug", "left_of", 1, "bowl"),
    ("take the can on the right of the blue box", "can", "right_of", 1, "blue box"),
    ("pick up the cup on the right side of the table", "cup", "right", 1, ""),
    ("get the red and white can", "red and white can", "best", 1, ""),
]


@pytest.mark.parametrize("text,phrase,kind,ordinal,reference", TABLE)
def test_parse_table(text, phrase, kind, ordinal, reference):
    if phrase is None:
        with pytest.raises(VlaInputError, match="no object named"):
            parse_command(text)
        return
    parsed = parse_command(text)
    assert parsed.phrase == phrase
    assert parsed.selector == Selector(kind, ordinal, reference)


@pytest.mark.parametrize("text", ["", "   ", "pick up", "grab the", "pick up the one on the left"])
def test_unusable_commands_say_what_to_do(text):
    with pytest.raises(VlaInputError, match="e.g."):
        parse_command(text)


def _candidate(cx, cy, position=None, size=(0.05, 0.05, 0.1)):
    detection = Detection("cup", 0.5, Box2D.from_center_size(cx, cy, 40, 40))
    obj = None
    if position is not None:
        obj = Object3D("cup", 0.5, np.array(position, float), np.array([0, 0, 0, 1.0]), np.array(size, float))
    return Candidate(detection, obj)


# x centres 300, 100, 500, 200; y centres 50, 400, 250, 120; depths 0.9, 0.5, 0.7, 1.2; volumes vary
CANDIDATES = [
    _candidate(300, 50, (0, 0, 0.9), (0.05, 0.05, 0.10)),
    _candidate(100, 400, (0, 0, 0.5), (0.10, 0.10, 0.05)),
    _candidate(500, 250, (0, 0, 0.7), (0.03, 0.03, 0.20)),
    _candidate(200, 120, (0, 0, 1.2), (0.02, 0.02, 0.02)),
]


@pytest.mark.parametrize("text,expected", [
    ("pick up the cup", 0),
    ("pick up the cup on the left", 1),
    ("pick up the cup on the right", 2),
    ("the second cup from the left", 3),
    ("the third cup from the left", 0),
    ("the second cup from the right", 0),
    ("the last cup from the left", 2),
    ("the cup at the top", 0),
    ("the cup at the bottom", 1),
    ("the nearest cup", 1),
    ("the farthest cup", 3),
    ("the largest cup", 1),  # 0.0005 m^3
    ("the smallest cup", 3),
    ("the tallest cup", 2),
    ("the middle cup", 0),  # mean x = 275; |300 - 275| = 25 is the smallest offset
])
def test_selection_on_synthetic_candidates(text, expected):
    assert select_candidate(parse_command(text), CANDIDATES) == expected


def test_ordinal_beyond_candidates_is_a_user_error():
    with pytest.raises(VlaInputError, match="only 1"):
        select_candidate(parse_command("the second cup from the left"), CANDIDATES[:1])


def test_3d_selectors_skip_unlocalised_candidates_and_fail_clearly_without_any():
    mixed = [_candidate(100, 100), _candidate(200, 100, (0, 0, 2.0))]
    assert select_candidate(parse_command("the nearest cup"), mixed) == 1
    with pytest.raises(VlaInputError, match="depth"):
        select_candidate(parse_command("the nearest cup"), mixed[:1])


def test_next_to_picks_the_candidate_closest_to_the_reference():
    parsed = parse_command("the cup next to the bowl")
    bowl = _candidate(480, 260, (0.1, 0, 0.72))
    assert select_candidate(parsed, CANDIDATES, [bowl]) == 2
    bowl_2d_only = _candidate(110, 390)
    assert select_candidate(parsed, CANDIDATES, [bowl_2d_only]) == 1
    with pytest.raises(VlaInputError, match="reference 'bowl'"):
        select_candidate(parsed, CANDIDATES, [])


def test_no_candidates_is_a_user_error():
    with pytest.raises(VlaInputError):
        select_candidate(ParsedCommand("x", "cup"), [])


def test_left_of_and_right_of_use_the_reference_side_in_the_image():
    bowl = _candidate(250, 200)  # x centres of CANDIDATES: 300, 100, 500, 200
    assert select_candidate(parse_command("the cup to the left of the bowl"), CANDIDATES, [bowl]) == 3
    assert select_candidate(parse_command("the cup to the right of the bowl"), CANDIDATES, [bowl]) == 0
    far_right_bowl = _candidate(600, 200)
    with pytest.raises(VlaInputError, match="right of 'bowl'"):
        select_candidate(parse_command("the cup right of the bowl"), CANDIDATES, [far_right_bowl])
