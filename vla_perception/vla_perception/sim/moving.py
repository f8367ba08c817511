"""Seeded moving tabletop scenes with per-frame ground-truth boxes and ids, for tracking.

Objects follow scripted straight-line paths across the table (kinematically: each frame
places them, no physics), and the camera renders every frame. Three scenes cover what a
tracker meets on a table:

- ``push``: objects pushed across the table in different directions;
- ``occlusion``: one object passes behind a tall box while another crosses in front of it;
- ``leave_return``: an object slides out of the view and comes back.

Each frame's ground truth is every object's visible box (from the segmentation) and its id
(its index in the scene); objects showing less than ``MIN_VISIBLE_SHARE`` of the image's pixels
(150 pixels of a 640x480 frame) are absent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from vla_perception.core.types import Box2D
from vla_perception.sim.objects import ObjectSpec
from vla_perception.sim.scene import CameraConfig, TabletopScene

MIN_VISIBLE_SHARE = 150 / (640 * 480)


@dataclass(frozen=True)
class Path:
    """Waypoints (t seconds, x, y metres in the world); the object moves linearly between them."""

    waypoints: tuple

    def at(self, t: float) -> np.ndarray:
        times, xs, ys = (np.array(column, float) for column in zip(*self.waypoints))
        return np.array([np.interp(t, times, xs), np.interp(t, times, ys)])


@dataclass
class MovingObject:
    spec: ObjectSpec
    path: Path


@dataclass
class GroundTruthFrame:
    stamp: float
    ids: list[int]
    labels: list[str]
    boxes: list[Box2D]
    visible_pixels: list[int]


@dataclass
class MovingSequence:
    """Rendered frames (RGB uint8) and their ground truth."""

    name: str
    fps: float
    frames: list[np.ndarray] = field(default_factory=list)
    truth: list[GroundTruthFrame] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # by object id


def _still(x: float, y: float) -> Path:
    return Path(((0.0, x, y),))


def _object(name, kind, label, rgba, path, size=None) -> MovingObject:
    start = path.at(0.0)
    return MovingObject(ObjectSpec(name, kind, rgba=rgba, label=label, size=size, position=(start[0], start[1]),
                                   yaw=0.3), path)


def _push(duration: float, rng: np.random.Generator) -> list[MovingObject]:
    jitter = rng.uniform(-0.03, 0.03, size=4)
    return [
        _object("red_mug", "mug", "red mug", (0.85, 0.1, 0.1, 1), Path(((0.0, 0.42, -0.25 + jitter[0]),
                                                                        (duration, 0.62, 0.22 + jitter[1])))),
        _object("blue_box", "box", "blue box", (0.15, 0.25, 0.9, 1), Path(((0.0, 0.72, 0.22 + jitter[2]),
                                                                           (duration, 0.50, -0.25 + jitter[3]))),
                size=(0.05, 0.08, 0.07)),
        _object("green_cube", "cube", "green cube", (0.1, 0.7, 0.2, 1), _still(0.56, -0.02)),
    ]


def _occlusion(duration: float, rng: np.random.Generator) -> list[MovingObject]:
    shift = rng.uniform(-0.02, 0.02)
    return [
        _object("yellow_duck", "duck", "yellow duck", (1.0, 0.85, 0.2, 1),
                Path(((0.0, 0.40, 0.22 + shift), (duration, 0.40, -0.42 + shift)))),
        _object("tall_box", "box", "blue box", (0.15, 0.25, 0.9, 1), _still(0.60, 0.0), size=(0.06, 0.12, 0.16)),
        _object("red_mug", "mug", "red mug", (0.85, 0.1, 0.1, 1),
                Path(((0.0, 0.78, -0.25 - shift), (duration, 0.78, 0.25 - shift)))),
    ]


def _leave_return(duration: float, rng: np.random.Generator, camera: CameraConfig) -> list[MovingObject]:
    x = 0.5 + rng.uniform(-0.03, 0.03)
    outside = _first_y_out_of_view(camera, x, -1.0) - 0.08  # a cube's width beyond the image edge
    path = Path(((0.0, x, -0.05), (0.3 * duration, x, outside), (0.55 * duration, x, outside),
                 (0.85 * duration, x, -0.05)))
    return [
        _object("green_cube", "cube", "green cube", (0.1, 0.7, 0.2, 1), path),
        _object("red_mug", "mug", "red mug", (0.85, 0.1, 0.1, 1), _still(0.62, 0.12)),
    ]


def _first_y_out_of_view(camera: CameraConfig, x: float, direction: float) -> float:
    """Walk from y = 0 along ``direction`` until the table point (x, y, 0) leaves the image."""
    cam, rotation, eye = camera.intrinsics(), camera.optical_rotation(), np.asarray(camera.eye, float)
    for y in np.arange(0.0, 3.0, 0.01) * direction:
        p = rotation.inv().apply(np.array([x, y, 0.0]) - eye)
        u, v = cam.fx * p[0] / p[2] + cam.cx, cam.fy * p[1] / p[2] + cam.cy
        if not (0 <= u < camera.width and 0 <= v < camera.height):
            return float(y)
    raise ValueError("the table line never leaves the view")


SCENES: dict[str, Callable] = {"push": _push, "occlusion": _occlusion, "leave_return": _leave_return}


def render_sequence(name: str, seed: int = 0, duration: float = 8.0, fps: float = 30.0,
                    camera: Optional[CameraConfig] = None, progress: Callable[[int, int], None] = lambda i, n: None,
                    ) -> MovingSequence:
    """Render scene ``name`` (see SCENES) for ``duration`` s at ``fps`` with ground truth per frame."""
    if name not in SCENES:
        raise ValueError(f"unknown moving scene '{name}': choose one of {', '.join(SCENES)}")
    camera = camera or CameraConfig()
    rng = np.random.default_rng(seed)
    builder = SCENES[name]
    objects = builder(duration, rng, camera) if name == "leave_return" else builder(duration, rng)
    sequence = MovingSequence(name, fps, labels=[o.spec.label for o in objects])
    count = int(round(duration * fps))
    min_pixels = MIN_VISIBLE_SHARE * camera.width * camera.height
    with TabletopScene([o.spec for o in objects], camera=camera, seed=seed, settle_time=0.0) as scene:
        client = scene.client
        starts = {o.spec.name: client.getBasePositionAndOrientation(scene.bodies[o.spec.name]) for o in objects}
        for k in range(count):
            t = k / fps
            for obj in objects:
                position, orientation = starts[obj.spec.name]
                offset = obj.path.at(t) - obj.path.at(0.0)
                client.resetBasePositionAndOrientation(scene.bodies[obj.spec.name],
                                                       [position[0] + offset[0], position[1] + offset[1],
                                                        position[2]], orientation)
            frame = scene.render()
            truths = {truth.name: truth for truth in scene.ground_truth(frame)}
            visible = [(i, truths[o.spec.name]) for i, o in enumerate(objects)
                       if truths[o.spec.name].visible_pixels >= min_pixels]
            sequence.frames.append(frame.rgb)
            sequence.truth.append(GroundTruthFrame(t, [i for i, _ in visible], [tr.label for _, tr in visible],
                                                   [tr.box for _, tr in visible],
                                                   [tr.visible_pixels for _, tr in visible]))
            progress(k + 1, count)
    return sequence
