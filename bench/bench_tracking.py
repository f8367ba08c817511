"""Benchmark: tracker_node on moving simulated scenes, against per-frame detections held between updates.

Seeded moving tabletop scenes (vla_perception.sim.moving: objects pushed across the table, one
passing behind a tall box, one leaving the view and coming back) are rendered once (cached),
then played through a real tracker_node in its own process over DDS: frames at 30 Hz, and
detections at a fixed low rate (0.5 Hz stands for a CPU, 2 Hz for a GPU) published ``--latency``
seconds after the frame they were made on.

The detector here is a SIMULATION, not a model: this script makes its detections from the
scene's ground-truth boxes, with every box edge jittered by Gaussian noise (``--jitter`` of the
box size), a detection missed at random (``--miss-rate``) and always when less than
``--min-visible`` of the object shows (occluded or at the image border), and scores drawn in
[0.45, 0.9] scaled by the visible fraction. ``--cpu-load`` busy processes stand for the real
detector's inference occupying cores while the tracker runs (default 1).

The baseline, scored in the same run on the same detections: no tracker, the latest detections
published so far held until the next update, with the detector's per-array index as id (what
detector_node's Detection2D.id is).

Metrics (motmetrics, IoU >= 0.5 to match): MOTA, IDF1, ID switches and ID switches per 100
object-seconds; mean IoU between detections (frames that are not detector frames: each ground
truth box already detected once against the output box paired with it by maximum IoU, 0 when
none); tracks' publish rate and detection age as received by this script. A frame the tracker
did not answer (it skips to the newest frame when behind) is scored with the tracks last
received, as a subscriber would hold them -- the same holding the baseline gets.

    PYTHONPATH=vla_perception .venv/bin/python bench/bench_tracking.py [--write docs/tracking_benchmark.md]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_common import use_loopback_ros  # noqa: E402

use_loopback_ros()  # before rclpy or the package is imported

import numpy as np  # noqa: E402

from bench_common import machine, print_and_write  # noqa: E402
from vla_perception.core.types import Box2D, Detection  # noqa: E402
from vla_perception.sim.moving import SCENES, MovingSequence, render_sequence  # noqa: E402

GOALS = {"rate_hz": 25.0, "mean_iou": 0.7, "idf1": 0.8, "switches_per_100s": 1.0}
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vla_perception" / "moving_scenes"


# ---------------------------------------------------------------------- scenes
def load_sequence(name: str, seed: int, duration: float, fps: float) -> MovingSequence:
    """Render scene ``name`` once; later runs read the cached frames and ground truth."""
    import pickle

    path = CACHE / f"{name}-seed{seed}-{duration:g}s-{fps:g}fps.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    started = time.monotonic()
    sequence = render_sequence(name, seed, duration, fps,
                               progress=lambda i, n: i % 60 == 0 and print(f"  rendered {i}/{n}", flush=True))
    print(f"  {name}: {len(sequence.frames)} frames rendered in {time.monotonic() - started:.0f} s", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(sequence))
    return sequence


def simulated_detections(sequence: MovingSequence, rate: float, args) -> dict[int, list[Detection]]:
    """{frame index: detections} on every (fps / rate)-th frame, from the ground truth with noise and misses."""
    rng = np.random.default_rng(args.seed)
    period = max(1, int(round(sequence.fps / rate)))
    best_view = {}
    for truth in sequence.truth:
        for i, pixels in zip(truth.ids, truth.visible_pixels):
            best_view[i] = max(best_view.get(i, 0), pixels)
    height, width = sequence.frames[0].shape[:2]
    results = {}
    for k in range(0, len(sequence.frames), period):
        truth, found = sequence.truth[k], []
        for i, box, pixels in zip(truth.ids, truth.boxes, truth.visible_pixels):
            visible = pixels / best_view[i]
            if visible < args.min_visible or rng.random() < args.miss_rate:
                continue
            found.append(Detection(sequence.labels[i], float(rng.uniform(0.45, 0.9) * min(1.0, visible + 0.2)),
                                   _jittered(box, args.jitter, width, height, rng), sequence.labels[i]))
        results[k] = sorted(found, key=lambda d: -d.score)
    return results


def _jittered(box: Box2D, jitter: float, width: int, height: int, rng) -> Box2D:
    x0, x1 = sorted(np.clip(np.add([box.x_min, box.x_max], rng.normal(0, jitter * box.width, 2)), 0, width))
    y0, y1 = sorted(np.clip(np.add([box.y_min, box.y_max], rng.normal(0, jitter * box.height, 2)), 0, height))
    return Box2D(float(x0), float(y0), float(max(x1, x0 + 1)), float(max(y1, y0 + 1)))


# ---------------------------------------------------------------------- playing through tracker_node
@dataclass
class Received:
    outputs: dict = field(default_factory=dict)  # frame index -> [(track_id, Box2D)]
    arrivals: list = field(default_factory=list)  # wall time of each tracks message
    ages: list = field(default_factory=list)


def play(ros, sequence: MovingSequence, detections: dict, args, node_name: str) -> Received:
    """Publish frames at the scene's rate and detections ``latency`` s after their frame; collect tracks."""
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from vla_perception.bridge.image import cv2_to_imgmsg
    from vla_perception.bridge.messages import box_from_msg, detections_to_msg
    from vla_perception_interfaces.msg import Detection2DArray

    node, received = ros.node, Received()
    base = 1_000.0  # stamps: base + frame time (frame index = round((stamp - base) * fps))
    images = node.create_publisher(Image, f"/{node_name}_bench/image", qos_profile_sensor_data)
    detections_pub = node.create_publisher(Detection2DArray, f"/{node_name}_bench/detections", QoSProfile(depth=10))
    prompt = " . ".join(dict.fromkeys(sequence.labels))

    def on_tracks(msg) -> None:
        received.arrivals.append(time.monotonic())
        k = int(round((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9 - base) * sequence.fps))
        received.outputs[k] = [(d.track_id, box_from_msg(d.bbox)) for d in msg.detections]
        received.ages += [d.detection_age for d in msg.detections]

    node.create_subscription(Detection2DArray, f"/{node_name}/tracks", on_tracks, QoSProfile(depth=50))
    _wait_for_subscribers(images, detections_pub)
    height, width = sequence.frames[0].shape[:2]
    messages = [cv2_to_imgmsg(frame, "rgb8") for frame in sequence.frames]
    due = sorted((k / sequence.fps + args.latency, k) for k in detections)
    start = time.monotonic()
    for k, msg in enumerate(messages):
        _sleep_until(start + k / sequence.fps)
        msg.header.stamp = _stamp(base + k / sequence.fps)
        msg.header.frame_id = "sim_camera_color_optical_frame"
        images.publish(msg)
        while due and due[0][0] <= time.monotonic() - start:
            _, j = due.pop(0)
            detections_pub.publish(detections_to_msg(detections[j], messages[j].header, (width, height), prompt,
                                                     "simulated detector"))
    time.sleep(1.0)  # the last tracks in flight
    return received


def _wait_for_subscribers(*publishers, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(p.get_subscription_count() == 0 for p in publishers):
        if time.monotonic() > deadline:
            raise TimeoutError("tracker_node did not subscribe in time")
        time.sleep(0.05)


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _stamp(seconds: float):
    from builtin_interfaces.msg import Time

    return Time(sec=int(seconds), nanosec=int(round((seconds - int(seconds)) * 1e9)))


def held(outputs: dict, frames: int) -> dict:
    """A frame the tracker did not answer shows what a subscriber last received: the previous answer."""
    result, latest = {}, []
    for k in range(frames):
        latest = outputs.get(k, latest)
        result[k] = latest
    return result


def baseline_outputs(sequence: MovingSequence, detections: dict, latency: float) -> dict:
    """Per frame: the latest detections published by then (index in their array as id)."""
    outputs, latest = {}, []
    for k in range(len(sequence.frames)):
        now = k / sequence.fps
        published = [j for j in detections if j / sequence.fps + latency <= now + 1e-9]
        if published:
            latest = [(index + 1, d.box) for index, d in enumerate(detections[max(published)])]
        outputs[k] = latest
    return outputs


# ---------------------------------------------------------------------- scoring
def score(sequence: MovingSequence, outputs: dict, detections: dict, name: str):
    """The motmetrics accumulator and the between-detections IoUs of one method on one scene."""
    import motmetrics

    from vla_perception.core.tracking.association import boxes_array, iou_matrix

    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    ious, seen = [], set()
    for k, truth in enumerate(sequence.truth):
        seen.update(i for i, d in ((i, detections.get(k)) for i in truth.ids) if d is not None)
        hyp = outputs.get(k, [])
        overlap = iou_matrix(boxes_array(truth.boxes), boxes_array([box for _, box in hyp]))
        distances = np.where(overlap >= 0.5, 1.0 - overlap, np.nan)
        accumulator.update(truth.ids, [track_id for track_id, _ in hyp], distances)
        if k not in detections:
            ious += _paired_ious(overlap, [i in seen for i in truth.ids])
    return accumulator, ious


def _paired_ious(overlap: np.ndarray, counted: list[bool]) -> list[float]:
    from scipy.optimize import linear_sum_assignment

    best = np.zeros(overlap.shape[0])
    if overlap.size:
        rows, cols = linear_sum_assignment(-overlap)
        best[rows] = overlap[rows, cols]
    return [float(v) for v, keep in zip(best, counted) if keep]


def summary(accumulators, names, ious, object_seconds):
    import motmetrics

    metrics = motmetrics.metrics.create()
    frame = metrics.compute_many(accumulators, metrics=["mota", "idf1", "num_switches", "num_false_positives",
                                                        "num_misses"], names=names, generate_overall=True)
    overall = frame.loc["OVERALL"]
    return {"mota": float(overall["mota"]), "idf1": float(overall["idf1"]),
            "switches": int(overall["num_switches"]),
            "switches_per_100s": 100.0 * float(overall["num_switches"]) / object_seconds,
            "false_positives": int(overall["num_false_positives"]), "misses": int(overall["num_misses"]),
            "mean_iou": float(np.mean(ious)) if ious else float("nan")}


# ---------------------------------------------------------------------- main
def start_tracker(name: str, directory: str):
    from ros_harness import NodeProcess, write_params

    params = write_params(name, {"autostart": True, "publish_markers": False})
    return NodeProcess("vla_perception.nodes.tracker_node", [
        "-r", f"__node:={name}", "--params-file", params, "-r", f"image:=/{name}_bench/image",
        "-r", f"detections:=/{name}_bench/detections"], name=name)


def busy_processes(count: int) -> list:
    return [subprocess.Popen([sys.executable, "-c", "while True: sum(range(100000))"]) for _ in range(count)]


def run_rate(ros, sequences, rate: float, args) -> dict:
    tracker_acc, baseline_acc, names, tracker_ious, baseline_ious = [], [], [], [], []
    arrivals_rates, ages, answered, object_seconds = [], [], [], 0.0
    for sequence in sequences:
        detections = simulated_detections(sequence, rate, args)
        node_name = f"tracker_{sequence.name}_{str(rate).replace('.', '_')}"
        with start_tracker(node_name, args.tmp) as tracker:
            received = play(ros, sequence, detections, args, node_name)
            if not received.arrivals:
                raise RuntimeError(f"no tracks from {node_name}:\n{tracker.output()[-3000:]}")
        accumulator, ious = score(sequence, held(received.outputs, len(sequence.frames)), detections, sequence.name)
        tracker_acc.append(accumulator)
        tracker_ious += ious
        accumulator, ious = score(sequence, baseline_outputs(sequence, detections, args.latency), detections,
                                  sequence.name)
        baseline_acc.append(accumulator)
        baseline_ious += ious
        names.append(sequence.name)
        span = received.arrivals[-1] - received.arrivals[0]
        arrivals_rates.append((len(received.arrivals) - 1) / span if span > 0 else 0.0)
        answered.append(len(received.outputs) / len(sequence.frames))
        ages += received.ages
        object_seconds += sum(len(t.ids) for t in sequence.truth) / sequence.fps
        print(f"  {rate:g} Hz {sequence.name}: {arrivals_rates[-1]:.1f} tracks/s, "
              f"{100 * answered[-1]:.0f}% of frames answered", flush=True)
    tracker = summary(tracker_acc, names, tracker_ious, object_seconds)
    tracker.update(rate_hz=float(np.mean(arrivals_rates)), min_rate_hz=float(np.min(arrivals_rates)),
                   answered=float(np.mean(answered)), mean_age=float(np.mean(ages)) if ages else float("nan"),
                   max_age=float(np.max(ages)) if ages else float("nan"))
    baseline = summary(baseline_acc, names, baseline_ious, object_seconds)
    baseline.update(rate_hz=rate, min_rate_hz=rate, answered=float("nan"), mean_age=float("nan"),
                    max_age=float("nan"))
    return {"tracker": tracker, "baseline": baseline, "object_seconds": object_seconds}


def report(results: dict, args, sequences) -> str:
    lines = ["# Tracking benchmark", "",
             f"Machine: {machine()}; {args.cpu_load} busy process(es) beside the tracker standing for the detector.",
             f"Scenes: {', '.join(f'{s.name} ({len(s.frames)} frames)' for s in sequences)} at "
             f"{sequences[0].fps:g} Hz, seed {args.seed}. Simulated detector (ground truth + noise, not a model): "
             f"jitter {args.jitter:g}, miss rate {args.miss_rate:g}, missed below {args.min_visible:g} visible, "
             f"latency {args.latency:g} s.", "",
             "Produced by `bench/bench_tracking.py`; the baseline holds the latest detections until the next.", "",
             "| detector | method | tracks/s (min) | MOTA | IDF1 | ID switches | per 100 obj-s | mean IoU between "
             "detections | FP | misses | detection age mean / max (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for rate, result in results.items():
        for method in ("baseline", "tracker"):
            m = result[method]
            rate_cell = (f"{m['rate_hz']:.1f} ({m['min_rate_hz']:.1f})" if method == "tracker"
                         else f"{rate:g} (held)")
            age = f"{m['mean_age']:.2f} / {m['max_age']:.2f}" if method == "tracker" else "-"
            lines.append(f"| {rate:g} Hz | {method} | {rate_cell} | {m['mota']:.3f} | {m['idf1']:.3f} | "
                         f"{m['switches']} | {m['switches_per_100s']:.2f} | {m['mean_iou']:.3f} | "
                         f"{m['false_positives']} | {m['misses']} | {age} |")
    lines += ["", "Goals (tracker, detector at 0.5 Hz):", ""]
    slow = results[min(results)]["tracker"]
    checks = [("tracks >= 25 Hz", slow["min_rate_hz"], GOALS["rate_hz"], True),
              ("mean IoU between detections >= 0.7", slow["mean_iou"], GOALS["mean_iou"], True),
              ("IDF1 >= 0.8", slow["idf1"], GOALS["idf1"], True),
              ("<= 1 ID switch per 100 object-seconds", slow["switches_per_100s"], GOALS["switches_per_100s"], False)]
    for text, value, goal, higher in checks:
        met = value >= goal if higher else value <= goal
        lines.append(f"- {text}: {value:.3f} -> {'met' if met else 'NOT met'}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", default=",".join(SCENES))
    parser.add_argument("--rates", default="0.5,2", help="detector rates (Hz)")
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.3, help="detections arrive this long after their frame")
    parser.add_argument("--jitter", type=float, default=0.04)
    parser.add_argument("--miss-rate", type=float, default=0.1)
    parser.add_argument("--min-visible", type=float, default=0.4)
    parser.add_argument("--cpu-load", type=int, default=1)
    parser.add_argument("--write", help="write the report (markdown) here, keeping its Notes section")
    args = parser.parse_args()
    import tempfile

    args.tmp = tempfile.mkdtemp(prefix="bench_tracking_")
    sequences = [load_sequence(name, args.seed, args.duration, args.fps) for name in args.scenes.split(",")]
    from ros_harness import RosClient

    load = busy_processes(args.cpu_load)
    try:
        with RosClient("bench_tracking") as ros:
            results = {float(rate): run_rate(ros, sequences, float(rate), args) for rate in args.rates.split(",")}
    finally:
        for process in load:
            process.kill()
            process.wait()
    text = report(results, args, sequences)
    print_and_write(text, args.write)


if __name__ == "__main__":
    main()
