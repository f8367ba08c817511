"""Embedded planner benchmark: seeded tabletop scenes (objects in x 0.35..0.70, |y| <= 0.30), time per plan.

Prints success rate, planning time (median / p90 / max), trajectory duration, the candidate kinds
chosen and the reasons for failures. Run: PYTHONPATH=vla_perception .venv/bin/python bench/bench_planning.py
"""
from __future__ import annotations

import argparse
import collections
import time

import numpy as np
from scipy.spatial.transform import Rotation

from vla_perception.core.planning import make_planner
from vla_perception.core.types import Object3D


def random_object(rng: np.random.Generator, label: str) -> Object3D:
    size = np.array([rng.uniform(0.03, 0.07), rng.uniform(0.03, 0.09), rng.uniform(0.04, 0.20)])
    position = np.array([rng.uniform(0.35, 0.70), rng.uniform(-0.30, 0.30), size[2] / 2])
    yaw = Rotation.from_euler("z", rng.uniform(-np.pi, np.pi))
    return Object3D(label, 0.9, position, yaw.as_quat(), size)


def scene(rng: np.random.Generator, others: int) -> list[Object3D]:
    objects: list[Object3D] = []
    while len(objects) < others + 1:
        candidate = random_object(rng, f"object{len(objects)}")
        if all(np.linalg.norm(candidate.position[:2] - o.position[:2]) > 0.12 for o in objects):
            objects.append(candidate)
    return objects


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenes", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.monotonic()
    planner = make_planner("embedded")
    print(f"planner construction: {time.monotonic() - started:.3f} s")
    rng = np.random.default_rng(args.seed)
    times, durations, kinds, failures = [], [], collections.Counter(), collections.Counter()
    for index in range(args.scenes):
        objects = scene(rng, others=index % 4)
        started = time.monotonic()
        result = planner.plan_for(objects[0], objects[1:])
        times.append(time.monotonic() - started)
        if result.success:
            kinds[result.chosen.kind] += 1
            durations.append(result.trajectory.times[-1])
        else:
            failures[result.message.split(":")[-1].strip()[:90]] += 1
    times_ms = np.array(times) * 1000
    print(f"scenes: {args.scenes} (0-3 other objects as obstacles), planned: {sum(kinds.values())}")
    print(f"planning time ms: median {np.median(times_ms):.1f}  p90 {np.percentile(times_ms, 90):.1f}  "
          f"max {times_ms.max():.1f}")
    if durations:
        print(f"trajectory duration s (start -> grasp, 0.5 velocity/acceleration scale): median "
              f"{np.median(durations):.2f}  max {np.max(durations):.2f}")
    print("chosen candidates:", dict(kinds))
    for reason, count in failures.most_common():
        print(f"  failed x{count}: {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
