"""The moving simulator scenes for tracking (vla_perception.sim.moving), rendered small and sparse.

Each scene must show what it is for in its own ground truth: objects that move, one hidden
behind another for a while, one that leaves the view and comes back.
"""
import numpy as np
import pytest

from vla_perception.sim.moving import render_sequence
from vla_perception.sim.scene import CameraConfig

SMALL = CameraConfig(width=320, height=240)


@pytest.fixture(scope="module")
def scenes():
    return {name: render_sequence(name, seed=0, duration=6.0, fps=2.0, camera=SMALL)
            for name in ("push", "occlusion", "leave_return")}


def centres(sequence, object_id):
    return [np.array(t.boxes[t.ids.index(object_id)].center) for t in sequence.truth if object_id in t.ids]


def test_pushed_objects_move_across_the_image_and_the_still_one_does_not(scenes):
    push = scenes["push"]
    assert all(len(t.ids) == 3 for t in push.truth[:2])
    moved = [np.linalg.norm(centres(push, i)[-1] - centres(push, i)[0]) for i in range(3)]
    assert moved[0] > 20 and moved[1] > 20 and moved[2] < 3, moved


def test_one_object_passes_behind_another(scenes):
    duck = [0 in t.ids for t in scenes["occlusion"].truth]
    hidden = [k for k, present in enumerate(duck) if not present]
    assert hidden and duck[0] and duck[-1], duck  # seen, hidden for a while, seen again
    assert all(1 in t.ids for t in scenes["occlusion"].truth)  # the box in front is always seen


def test_an_object_leaves_the_view_and_comes_back_with_its_id(scenes):
    cube = [0 in t.ids for t in scenes["leave_return"].truth]
    assert cube[0] and cube[-1] and not all(cube), cube
    first, last = centres(scenes["leave_return"], 0)[0], centres(scenes["leave_return"], 0)[-1]
    assert np.linalg.norm(first - last) < 3  # it returns where it started


def test_frames_and_truth_line_up(scenes):
    sequence = scenes["push"]
    assert len(sequence.frames) == len(sequence.truth) == 12
    assert sequence.frames[0].shape == (240, 320, 3)
    assert [t.stamp for t in sequence.truth[:3]] == pytest.approx([0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="unknown moving scene"):
        render_sequence("spin")
