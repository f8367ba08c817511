"""Object catalogue of the tabletop: pybullet_data meshes and plain boxes, scaled to be graspable."""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
import pybullet_data
from scipy.spatial.transform import Rotation

from vla_perception.sim.world import GRASPABLE_EXTENT


@dataclass(frozen=True)
class MeshKind:
    """A pybullet_data object: its URDF, visual mesh (for ground-truth extents) and upright rotation."""

    urdf: str
    visual_mesh: str
    mesh_scale: float  # the scale the URDF applies to the visual mesh
    upright_euler_xyz: tuple  # rotation from the upright object frame to the URDF link frame's pose
    default_scaling: float
    default_rgba: tuple
    static: bool = False


MESH_KINDS = {
    "mug": MeshKind("objects/mug.urdf", "objects/mug.obj", 1.0, (0.0, 0.0, 0.0), 0.75, (0.85, 0.1, 0.1, 1.0)),
    "duck": MeshKind("duck_vhacd.urdf", "duck.obj", 0.05, (np.pi / 2, 0.0, 0.0), 1.0, (1.0, 0.85, 0.2, 1.0)),
    "tray": MeshKind("tray/traybox.urdf", "tray/tray_textured.obj", 0.5, (0.0, 0.0, 0.0), 0.1,
                     (0.6, 0.6, 0.65, 1.0), static=True),
    "cube": MeshKind("cube_small.urdf", "cube.obj", 0.05, (0.0, 0.0, 0.0), 1.0, (0.1, 0.7, 0.2, 1.0)),
}


@dataclass
class ObjectSpec:
    """One object of a scene. kind: mug, duck, tray, cube or box (``size`` = full extents for box).

    position (x, y) and yaw (rad) are drawn at random (seeded) when None.
    """

    name: str
    kind: str
    rgba: Optional[tuple] = None
    label: str = ""
    size: Optional[tuple] = None
    scaling: Optional[float] = None
    position: Optional[tuple] = None
    yaw: Optional[float] = None
    mass: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in MESH_KINDS and self.kind != "box":
            raise ValueError(f"unknown object kind '{self.kind}', use one of {sorted(MESH_KINDS)} or box")
        if self.kind == "box" and (self.size is None or len(self.size) != 3):
            raise ValueError(f"box '{self.name}' needs size=(x, y, z)")
        if not self.label:
            self.label = self.kind

    @property
    def upright_rotation(self) -> Rotation:
        if self.kind == "box":
            return Rotation.identity()
        return Rotation.from_euler("xyz", MESH_KINDS[self.kind].upright_euler_xyz)

    @property
    def color(self) -> tuple:
        if self.rgba is not None:
            return tuple(self.rgba)
        return MESH_KINDS[self.kind].default_rgba if self.kind in MESH_KINDS else (0.2, 0.3, 0.9, 1.0)

    def global_scaling(self) -> float:
        if self.kind == "box":
            return 1.0
        return self.scaling if self.scaling is not None else MESH_KINDS[self.kind].default_scaling

    def upright_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) of the visual geometry in the upright object frame (link frame rotated upright)."""
        if self.kind == "box":
            half = np.asarray(self.size, float) / 2
            return -half, half
        kind = MESH_KINDS[self.kind]
        verts = mesh_vertices(kind.visual_mesh) * kind.mesh_scale * self.global_scaling()
        upright = self.upright_rotation.apply(verts)
        return upright.min(axis=0), upright.max(axis=0)

    def check_graspable(self) -> None:
        lo, hi = self.upright_bounds()
        if min(hi[0] - lo[0], hi[1] - lo[1]) > GRASPABLE_EXTENT + 1e-9:
            raise ValueError(f"object '{self.name}' is too wide for the Panda hand: horizontal extents "
                             f"{(hi - lo)[:2].round(3).tolist()}, one must be <= {GRASPABLE_EXTENT} m")


@lru_cache(maxsize=None)
def mesh_vertices(relative_path: str) -> np.ndarray:
    """Vertices of a pybullet_data Wavefront mesh (unscaled)."""
    path = os.path.join(pybullet_data.getDataPath(), relative_path)
    with open(path) as handle:
        verts = [line.split()[1:4] for line in handle if line.startswith("v ")]
    return np.asarray(verts, dtype=np.float64)


def default_objects() -> list[ObjectSpec]:
    """Return the default scene: a red mug and a few other objects."""
    return [
        ObjectSpec("red_mug", "mug", rgba=(0.85, 0.1, 0.1, 1.0), label="red mug"),
        ObjectSpec("green_cube", "cube", rgba=(0.1, 0.7, 0.2, 1.0), label="green cube"),
        ObjectSpec("yellow_duck", "duck", label="yellow duck"),
        ObjectSpec("blue_box", "box", rgba=(0.15, 0.25, 0.9, 1.0), size=(0.05, 0.12, 0.07), label="blue box"),
        ObjectSpec("grey_tray", "tray", label="tray"),
    ]


def random_objects(rng: np.random.Generator, count: int) -> list[ObjectSpec]:
    """``count`` random objects: meshes at random scale and boxes of random sizes and colours."""
    specs = []
    for i in range(count):
        kind = rng.choice(["mug", "duck", "cube", "box", "box", "tray"])
        rgba = (*rng.uniform(0.05, 0.95, size=3).round(2), 1.0)
        if kind == "box":
            size = (rng.uniform(0.03, GRASPABLE_EXTENT), rng.uniform(0.03, 0.16), rng.uniform(0.03, 0.14))
            specs.append(ObjectSpec(f"box_{i}", "box", rgba=rgba, size=tuple(np.round(size, 3))))
            continue
        base = MESH_KINDS[kind].default_scaling
        scaling = base * rng.uniform(0.8, 1.05 if kind != "duck" else 1.0)
        specs.append(ObjectSpec(f"{kind}_{i}", str(kind), rgba=rgba, scaling=float(scaling)))
    return specs
