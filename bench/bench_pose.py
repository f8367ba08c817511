"""Benchmark: 3D centre/size/yaw accuracy of the pose estimator vs the naive median-depth baseline.

Seeded random pybullet tabletop scenes, random camera poses 0.5-1.5 m from the objects,
ground-truth 2D boxes from the segmentation mask as detections. Prints a markdown table;
``--write docs/pose_accuracy.md`` also writes the report.

Ground truth (see sim/scene.py): each object's box is the axis-aligned bounding box of its
visual mesh in the upright object frame (link frame, not centre of mass), transformed to the
camera frame; its centre is the reference for the centre error, its extents for the size error.

    PYTHONPATH=vla_perception .venv/bin/python bench/bench_pose.py --scenes 60
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vla_perception"))

from bench_common import machine  # noqa: E402
from vla_perception.core.geometry import decode_depth  # noqa: E402
from vla_perception.core.pose_estimation import estimate_naive, estimate_object_pose  # noqa: E402
from vla_perception.sim.objects import random_objects  # noqa: E402
from vla_perception.sim.scene import CameraConfig, TabletopScene  # noqa: E402

MIN_VISIBLE_PIXELS = 150
YAW_MIN_ASPECT = 1.25  # yaw is only defined for objects whose horizontal extents differ enough
NOISE_SIGMA_AT_1M = 0.002  # metres of depth noise at 1 m, growing with z^2
DROPOUT = 0.02


def random_camera(rng: np.random.Generator) -> CameraConfig:
    target = np.array([rng.uniform(0.45, 0.60), rng.uniform(-0.10, 0.10), 0.0])
    dist, az, el = rng.uniform(0.6, 1.4), np.radians(rng.uniform(-60, 60)), np.radians(rng.uniform(30, 65))
    eye = target + dist * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return CameraConfig(eye=tuple(eye), target=tuple(target))


def sorted_size_error(est: np.ndarray, gt: np.ndarray) -> float:
    """Mean absolute difference of the sorted extents (orientation-free), metres."""
    return float(np.mean(np.abs(np.sort(est) - np.sort(gt))))


def yaw_error_deg(est_quat, gt_quat_cam, gt_size) -> float:
    """Angle between estimated and true long horizontal axes, modulo 180 degrees."""
    gt_long = Rotation.from_quat(gt_quat_cam).apply([1.0, 0, 0] if gt_size[0] >= gt_size[1] else [0, 1.0, 0])
    est_long = Rotation.from_quat(est_quat).apply([1.0, 0, 0])
    return float(np.degrees(np.arccos(np.clip(abs(est_long @ gt_long), 0.0, 1.0))))


def add_sensor_noise(depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Structured-light-like noise: sigma = NOISE_SIGMA_AT_1M * z^2, plus random dropouts."""
    noisy = depth + rng.normal(0.0, 1.0, depth.shape).astype(np.float32) * NOISE_SIGMA_AT_1M * depth ** 2
    noisy[rng.random(depth.shape) < DROPOUT] = np.nan
    return noisy


def evaluate_scene(seed: int, rows: list, failures: list, noise: bool) -> None:
    rng = np.random.default_rng(seed)
    specs = random_objects(rng, int(rng.integers(4, 7)))
    with TabletopScene(objects=specs, camera=random_camera(rng), seed=seed) as scene:
        frame = scene.render()
        if noise:
            frame.depth = add_sensor_noise(frame.depth, np.random.default_rng(seed + 10_000))
        for truth in scene.ground_truth(frame):
            if truth.visible_pixels < MIN_VISIBLE_PIXELS:
                continue
            distance = float(np.linalg.norm(truth.position_camera))
            if not 0.5 <= distance <= 1.5:
                continue
            est = estimate_object_pose(frame.depth, frame.intrinsics, truth.box)
            naive = estimate_naive(frame.depth, frame.intrinsics, truth.box)
            kind = scene.specs[truth.name].kind
            if not est.ok:
                failures.append((seed, truth.name, est.reason))
                continue
            o, n = est.object, naive.object
            aspect = max(truth.size[:2]) / min(truth.size[:2])
            rows.append({
                "kind": kind, "distance": distance,
                "centre": np.linalg.norm(o.position - truth.position_camera),
                "naive_centre": np.linalg.norm(n.position - truth.position_camera),
                "size": sorted_size_error(o.size, truth.size),
                "naive_size": sorted_size_error(n.size, truth.size),
                "yaw": yaw_error_deg(o.orientation, truth.orientation_camera, truth.size)
                if aspect >= YAW_MIN_ASPECT else np.nan,
                "method": o.extra.get("method"),
            })


def time_per_frame(repeats: int = 5) -> tuple[float, float, int]:
    """Mean ms per 640x480 frame to estimate 10 objects (float depth; and from 16UC1 incl. decoding)."""
    rng = np.random.default_rng(1234)
    specs = random_objects(rng, 10)
    with TabletopScene(objects=specs, seed=1234, min_gap=0.005) as scene:
        frame = scene.render()
        boxes = [t.box for t in scene.ground_truth(frame) if t.box is not None]
    raw_mm = np.nan_to_num(np.round(frame.depth * 1000), nan=0).astype(np.uint16)
    start = time.perf_counter()
    for _ in range(repeats):
        for box in boxes:
            estimate_object_pose(frame.depth, frame.intrinsics, box)
    float_ms = (time.perf_counter() - start) / repeats * 1000
    start = time.perf_counter()
    for _ in range(repeats):
        depth = decode_depth(raw_mm, "16UC1")
        for box in boxes:
            estimate_object_pose(depth, frame.intrinsics, box)
    mm_ms = (time.perf_counter() - start) / repeats * 1000
    return float_ms, mm_ms, len(boxes)


def stats(values) -> tuple[float, float]:
    values = np.asarray([v for v in values if np.isfinite(v)])
    return float(np.median(values)), float(np.percentile(values, 95))


def accuracy_table(rows: list, failures: list, scenes: int, title: str) -> list:
    c, nc = stats(r["centre"] for r in rows), stats(r["naive_centre"] for r in rows)
    s, ns = stats(r["size"] for r in rows), stats(r["naive_size"] for r in rows)
    y = stats(r["yaw"] for r in rows)
    n_yaw = sum(np.isfinite(r["yaw"]) for r in rows)
    dist = [r["distance"] for r in rows]
    pca = sum(r["method"] == "pca" for r in rows)
    lines = [
        f"### {title}",
        "",
        f"Scenes: {scenes} seeded random tabletops (seeds 0..{scenes - 1}), {len(rows)} objects with >= "
        f"{MIN_VISIBLE_PIXELS} visible pixels at {min(dist):.2f}-{max(dist):.2f} m; "
        f"{len(failures)} estimates returned no result; {pca} fell back to the PCA box (no support plane).",
        "",
        "| metric | estimator median | estimator p95 | naive median | naive p95 |",
        "|---|---|---|---|---|",
        f"| centre error (mm) | {c[0] * 1000:.1f} | {c[1] * 1000:.1f} | "
        f"{nc[0] * 1000:.1f} | {nc[1] * 1000:.1f} |",
        f"| size error (mm, mean abs of sorted extents) | {s[0] * 1000:.1f} | {s[1] * 1000:.1f} | "
        f"{ns[0] * 1000:.1f} | {ns[1] * 1000:.1f} |",
        f"| yaw error (deg, {n_yaw} objects with aspect >= {YAW_MIN_ASPECT}) | {y[0]:.1f} | {y[1]:.1f} | "
        "n/a | n/a |",
        "",
        "Per object kind (medians / p95):",
        "",
        "| kind | objects | centre mm (p95) | naive centre mm | size mm (p95) | yaw deg (p95) |",
        "|---|---|---|---|---|---|",
    ]
    for kind in sorted({r["kind"] for r in rows}):
        sel = [r for r in rows if r["kind"] == kind]
        ck, nk = stats(r["centre"] for r in sel), stats(r["naive_centre"] for r in sel)
        sk = stats(r["size"] for r in sel)
        yk = stats(r["yaw"] for r in sel) if any(np.isfinite(r["yaw"]) for r in sel) else None
        yaw_text = f"{yk[0]:.1f} ({yk[1]:.1f})" if yk else "n/a (square)"
        lines.append(f"| {kind} | {len(sel)} | {ck[0] * 1000:.1f} ({ck[1] * 1000:.1f}) | "
                     f"{nk[0] * 1000:.1f} | "
                     f"{sk[0] * 1000:.1f} ({sk[1] * 1000:.1f}) | {yaw_text} |")
    if failures:
        lines += ["", "No-result cases (seed, object, reason):", ""]
        lines += [f"- {seed}, {name}: {reason}" for seed, name, reason in failures[:10]]
    return lines + [""]


def report(results: list, scenes: int, timing: tuple) -> str:
    lines = []
    for title, rows, failures in results:
        lines += accuracy_table(rows, failures, scenes, title)
    float_ms, mm_ms, count = timing
    lines += [f"Time per 640x480 frame, {count} objects: {float_ms:.1f} ms from float32 metres, "
              f"{mm_ms:.1f} ms from 16UC1 including decoding (noise-free frame).", "",
              f"Machine: {machine()}."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=60)
    parser.add_argument("--write", default="", help="also write the markdown report to this path")
    args = parser.parse_args()
    start = time.perf_counter()
    results = []
    for noise, title in ((False, "Noise-free rendered depth"),
                         (True, f"Noisy depth (sigma = {NOISE_SIGMA_AT_1M * 1000:.0f} mm x z^2, "
                                f"{DROPOUT:.0%} dropouts)")):
        rows: list = []
        failures: list = []
        for seed in range(args.scenes):
            evaluate_scene(seed, rows, failures, noise)
        results.append((title, rows, failures))
    text = report(results, args.scenes, time_per_frame())
    print(text)
    print(f"\n(benchmark wall time {time.perf_counter() - start:.1f} s)")
    if args.write:
        with open(args.write, "w") as handle:
            handle.write(DOC_HEADER + text + "\n" + DOC_FOOTER)
    return 0


DOC_HEADER = """# Pose estimation accuracy (simulation)

Produced by
`PYTHONPATH=vla_perception .venv/bin/python bench/bench_pose.py --scenes 60 --write docs/pose_accuracy.md`
(about 25 s on the machine below).

Setup: pybullet tabletop (`vla_perception/sim/scene.py`), 4-6 random objects per scene (mugs,
ducks, cubes, trays, boxes of random sizes and colours, random yaw), random camera 0.6-1.4 m
from a random point near the table centre, azimuth +-60 deg in front of the robot,
elevation 30-65 deg, 640x480, 58 deg vertical fov; rendered depth as is, then the same
scenes with simulated sensor noise. Detections are the ground-truth 2D boxes
from the segmentation mask (so the figures isolate the 3D step from detector errors).

Ground truth: the axis-aligned box of each object's visual mesh in its upright object frame
(the URDF link frame -- not pybullet's centre of mass -- rotated so z is up), placed at the
object's settled pose. Centre error = distance between the estimated and that box's centre;
size error = mean absolute difference of the sorted extents; yaw error = angle between the
estimated and true long horizontal axes modulo 180 deg, only for objects whose horizontal
extents differ by >= 25 %. The naive baseline back-projects the box centre at the median depth
in the box; its size is the box's metric width/height (third extent = the smaller of the two).

"""

DOC_FOOTER = """
Notes: the estimator sees only the visible surfaces, so hidden parts inside the ground-truth
box (a mug handle behind the mug, the far side of a duck) are the main source of the
remaining error; flat-sided boxes are recovered to about a millimetre. A mug's long horizontal axis
runs through its handle, so its yaw is only as good as the handle's visibility (p95 ~30 deg); a
duck's outline is irregular. The naive baseline's size is poor by construction (it has no
depth extent). Tolerances in `test/test_sim_scene.py` are set above these per-kind p95s.
The noisy table
models only Gaussian depth noise and dropouts; real sensors add flying pixels at edges,
multipath and reflective/transparent failures that this benchmark does not cover.
"""

if __name__ == "__main__":
    sys.exit(main())
