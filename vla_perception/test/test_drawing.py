"""Debug-image drawing: boxes land on the right pixels, in a stable colour per label."""
import numpy as np

from vla_perception.core.drawing import draw_detections, label_colour
from vla_perception.core.types import Box2D, Detection


def test_box_outline_is_drawn_in_the_label_colour_and_the_input_is_untouched():
    image = np.zeros((120, 160, 3), np.uint8)
    drawn = draw_detections(image, [Detection("cup", 0.9, Box2D(40, 50, 100, 110))])
    assert image.max() == 0  # a copy was drawn on
    assert tuple(drawn[80, 40]) == label_colour("cup")  # left edge of the box
    assert tuple(drawn[80, 99]) == label_colour("cup")  # right edge (max corner exclusive)
    assert drawn[80, 70].max() == 0  # inside stays clear
    assert drawn[20:50, 40:100].any()  # the label sits above the box


def test_highlight_adds_a_white_frame_and_colours_are_stable():
    image = np.zeros((120, 160, 3), np.uint8)
    drawn = draw_detections(image, [Detection("duck", 0.5, Box2D(40, 40, 100, 100))], highlight=0)
    assert tuple(drawn[70, 37]) == (255, 255, 255)
    assert label_colour("duck") != label_colour("cup")


def test_a_labels_colour_is_the_same_in_another_process():
    """Stable across runs (not Python's salted hash): another interpreter with another hash seed agrees."""
    import os
    import subprocess
    import sys

    code = "from vla_perception.core.drawing import label_colour; print(tuple(label_colour('duck')))"
    colours = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert colours == {str(tuple(label_colour("duck")))}


def test_a_box_under_a_pixel_tall_or_wide_is_drawn_not_refused():
    """Regression (fuzz suite): detect on a 1-pixel-tall image failed drawing its debug image."""
    image = np.zeros((1, 5, 3), np.uint8)
    drawn = draw_detections(image, [Detection("cup", 0.9, Box2D(0.0, 0.0, 5.0, 0.6)),
                                    Detection("duck", 0.9, Box2D(2.0, 0.0, 2.4, 1.0))])
    assert drawn.shape == image.shape and drawn.any()
