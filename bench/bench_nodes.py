"""Benchmark: what a node costs on top of its model, and how it streams (prints figures; not a test).

(a) Node overhead: clip_node's ``~/classify`` round trip from a client in another process, for one
    640x480 frame carried in the request and 4 labels, divided by the model call alone
    (``ClipClassifier.classify`` in this process, same weights, same frame). Calls alternate between
    the two so both see the same load on the machine. Tiny profile and full-size ViT-B/32 with random
    weights (saved in open_clip's local-dir format and passed as the node's ``model`` parameter).
(b) Streaming: clip_node (tiny, then full-size) fed 640x480 rgb8 frames by a publisher in this process at
    30 Hz, then 90 Hz: results per second, and result age (arrival at this client - the frame's header
    stamp) against the median inference time the node reports; the node's resident memory.

    PYTHONPATH=vla_perception nice .venv/bin/python bench/bench_nodes.py [--write docs/node_benchmark.md]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
from bench_common import use_loopback_ros  # noqa: E402

use_loopback_ros()  # before rclpy or the package is imported

import numpy as np  # noqa: E402

from vla_perception import names  # noqa: E402
from vla_perception.core.models import load_classifier, resolve_model_source  # noqa: E402
from bench_common import machine, print_and_write, write_full_size_clip  # noqa: E402

LABELS = ["cup", "bottle", "duck", "cube"]
IMAGE_TOPIC = "/bench_camera/image"  # not /image, which a simulator running beside the bench may publish on
WIDTH, HEIGHT = 640, 480


def frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


# ----- processes ------------------------------------------------------------------------------------
def node_env(models_root: str) -> dict:
    from ros_harness import ros_env

    path = os.pathsep.join([os.path.join(HERE, "..", "vla_perception"), os.environ.get("PYTHONPATH", "")])
    return ros_env(PYTHONPATH=path, VLA_PERCEPTION_MODELS=models_root)


def start_clip_node(name: str, params: dict, models_root: str, directory: str):
    from ros_harness import NodeProcess, write_params

    base = {"autostart": True, "device": "cpu", "threads": 0, "labels": LABELS}
    path = write_params(name, {**base, **params}, directory)
    return NodeProcess("vla_perception.nodes.clip_node",
                       ["-r", f"__node:={name}", "-r", f"image:={IMAGE_TOPIC}", "--params-file", path],
                       name=name, env=node_env(models_root))


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        line = next(line for line in handle if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def call_and_wait(client, request, timeout: float = 60.0):
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _: done.set())
    if not done.wait(timeout):
        raise TimeoutError(f"no answer from {client.srv_name} within {timeout:.0f} s")
    return future.result()


def wait_until_active(ros, service: str, request, timeout: float = 180.0):
    """Return a Classify client once the node answers success (it configures and activates itself)."""
    from vla_perception_interfaces.srv import Classify

    client = ros.node.create_client(Classify, service)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.wait_for_service(timeout_sec=5.0):
            response = call_and_wait(client, request, timeout)
            if response.success:
                return client
        time.sleep(0.5)
    raise TimeoutError(f"{service} did not answer success within {timeout:.0f} s")


# ----- (a) node overhead --------------------------------------------------------------------------
def overhead(ros, name: str, model_param: str, profile: str, calls: int, models_root: str,
             directory: str) -> dict:
    from vla_perception.bridge.image import cv2_to_imgmsg
    from vla_perception_interfaces.srv import Classify

    image = frame()
    classifier = load_classifier(resolve_model_source(profile, "clip", model_param or None), device="cpu")
    request = Classify.Request(image=cv2_to_imgmsg(image, "rgb8"), labels=LABELS)
    node = start_clip_node(name, {"profile": profile, "model": model_param, "stream": False}, models_root,
                           directory)
    try:
        client = wait_until_active(ros, f"/{name}/{names.CLASSIFY.name}", request)
        for _ in range(3):  # warm both sides (text cache, allocator)
            call_and_wait(client, request)
            classifier.classify(image, LABELS)
        service, inside, model = [], [], []
        for _ in range(calls):
            started = time.perf_counter()
            response = call_and_wait(client, request)
            service.append(time.perf_counter() - started)
            if not response.success:
                raise RuntimeError(f"{name}: {response.message}")
            inside.append(response.results[0].inference_time)  # the node's own timing of the model work
            started = time.perf_counter()
            classifier.classify(image, LABELS)
            model.append(time.perf_counter() - started)
        rss = rss_mib(node.process.pid)
    finally:
        node.stop()
    ratios = [total / work for total, work in zip(service, inside)]
    return {"name": name, "calls": calls, "service": statistics.median(service),
            "inside": statistics.median(inside), "ratio": statistics.median(ratios),
            "model": statistics.median(model), "rss": rss}


# ----- (b) streaming --------------------------------------------------------------------------------
class FramePublisher:
    """Publishes rgb8 frames (two alternating random images) on ``topic`` at ``rate`` Hz, stamped now."""

    def __init__(self, node, topic: str):
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        self.node, self.count = node, 0
        self.sent: list[float] = []  # monotonic publish times, to show stalls of this process
        self.publisher = node.create_publisher(Image, topic, qos_profile_sensor_data)
        self.frames = [frame(seed).tobytes() for seed in (1, 2)]  # bytes, never numpy arrays (docs/development.md)

    def publish(self) -> None:
        from sensor_msgs.msg import Image

        msg = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3)
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.header.frame_id = "bench_camera"
        msg.data = self.frames[self.count % 2]
        self.publisher.publish(msg)
        self.sent.append(time.monotonic())
        self.count += 1

    def run(self, rate: float, until_count: int) -> None:
        period, next_time = 1.0 / rate, time.monotonic()
        while self.count < until_count:
            self.publish()
            next_time += period
            time.sleep(max(0.0, next_time - time.monotonic()))


def phase_stats(rate: float, frames: int, results: list, sent: list) -> dict:
    """Figures of one streaming phase: results (age, inference time, arrival) for ``frames`` at ``rate``."""
    ages = [age for age, _, _ in results] or [float("nan")]
    inference = [seconds for _, seconds, _ in results] or [float("nan")]
    gaps = np.diff(sent)
    span = sent[-1] - sent[0] if len(sent) > 1 else float("nan")
    return {"rate": rate, "frames": frames, "results": len(results), "result_rate": len(results) / span,
            "age_median": statistics.median(ages), "age_p95": float(np.percentile(ages, 95)),
            "inference_median": statistics.median(inference),
            "inference_p95": float(np.percentile(inference, 95)),
            "achieved_rate": len(gaps) / float(np.sum(gaps)), "max_gap": float(np.max(gaps))}


def streaming(ros, label: str, model_param: str, phases: list[tuple[float, float]], models_root: str,
              directory: str) -> dict:
    """clip_node fed 640x480 frames at each (rate Hz, seconds) phase in turn; figures per phase and RSS."""
    from vla_perception_interfaces.msg import Classification

    name = f"bench_clip_stream_{label}"
    node = start_clip_node(name, {"profile": "tiny", "model": model_param, "stream": True}, models_root, directory)
    results: list[tuple[float, float, float]] = []  # (arrival - stamp, inference time, arrival)

    def on_result(msg: Classification) -> None:
        arrival = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        results.append((arrival - stamp, msg.inference_time, arrival))

    subscription = ros.node.create_subscription(Classification, f"/{name}/{names.CLASSIFICATION.name}", on_result, 50)
    publisher = FramePublisher(ros.node, IMAGE_TOPIC)
    stats = []
    try:
        from vla_perception.bridge.image import cv2_to_imgmsg
        from vla_perception_interfaces.srv import Classify

        wait_until_active(ros, f"/{name}/{names.CLASSIFY.name}",
                          Classify.Request(image=cv2_to_imgmsg(frame(), "rgb8")))
        deadline = time.monotonic() + 60.0  # the subscription must see frames before counting starts
        while not results and time.monotonic() < deadline:
            publisher.publish()
            time.sleep(1.0 / phases[0][0])
        if not results:
            raise TimeoutError(f"no results on /{name}/classification after 60 s of frames")
        time.sleep(1.0)  # the result of a warm-up frame still in flight
        rss_start, total = rss_mib(node.process.pid), 0
        for rate, seconds in phases:
            results.clear()
            publisher.count, publisher.sent = 0, []
            publisher.run(rate, int(seconds * rate))
            time.sleep(max(0.5, 2 * (statistics.median(r[1] for r in results) if results else 0.5)))
            stats.append(phase_stats(rate, publisher.count, list(results), publisher.sent))
            total += publisher.count
            print(label, stats[-1], flush=True)
        rss_end = rss_mib(node.process.pid)
        alive = node.alive()
    finally:
        ros.node.destroy_subscription(subscription)
        ros.node.destroy_publisher(publisher.publisher)
        node.stop()
    return {"label": label, "phases": stats, "rss_start": rss_start, "rss_end": rss_end, "frames_total": total,
            "alive": alive}


# ----- report ---------------------------------------------------------------------------------------


def report(overheads: list[dict], streams: list[dict], args) -> str:
    lines = ["# Node benchmark", "", f"Machine: {machine()}; torch threads: default (0) in node and bench.",
             "", "## (a) clip_node overhead: `~/classify` round trip vs the model call alone", "",
             "One 640x480 rgb8 frame in the request, 4 labels, whole-frame classification. Round trip: "
             "`call_async` to response, from the bench process. Model alone, measured two ways: "
             "(1) in the node, the `inference_time` it reports for that same call "
             "(`ClipClassifier.classify`'s own stopwatch: text embeddings + preprocessing + image tower), "
             "and (2) `ClipClassifier.classify` in the bench process on the same weights and frame, "
             "alternating call by call with the round trips.", "",
             "| model | calls | round trip median ms | (1) in-node model median ms | ratio to (1), "
             "median per call | (2) bench-process model median ms | ratio to (2) | node RSS MiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in overheads:
        lines.append(f"| {row['name']} | {row['calls']} | {row['service'] * 1000:.1f} | "
                     f"{row['inside'] * 1000:.1f} | **{row['ratio']:.2f}** | {row['model'] * 1000:.1f} | "
                     f"{row['service'] / row['model']:.2f} | {row['rss']:.0f} |")
    lines += ["", "Goal: ratio <= 1.10 for the full-size model. The difference is the node's own cost "
              "(request serialisation, image conversion, response message, executor hand-off, DDS). "
              "Ratio (1) compares each call with its own model time, so load from other jobs on this "
              "shared 2-core machine hits both sides alike; (2) compares two processes whose timings "
              "scatter independently under that load (a 4 ms tiny call took 3 ms or 12 ms at random), "
              "so it is the noisier one.", ""]
    lines += ["## (b) Streaming: clip_node fed 640x480 rgb8 frames at 30 Hz, then 90 Hz", "",
              "A publisher in the bench process sends frames at each rate in turn to one running node; "
              "result age = arrival of `~/classification` at the bench - the frame's header stamp (same "
              "machine clock). Result rate = results received / publishing time of the phase. "
              "Goals: result rate at 90 Hz >= rate at 30 Hz; at 30 Hz, median age <= 1.5x median "
              "inference for the full-size model.", "",
              "| model | input Hz (achieved) | frames | results | results/s | inference median / p95 ms "
              "| age median ms (x inference) | age p95 ms | longest publish gap ms |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for stream in streams:
        for ph in stream["phases"]:
            lines.append(f"| {stream['label']} | {ph['rate']:.0f} ({ph['achieved_rate']:.1f}) | {ph['frames']} | "
                         f"{ph['results']} | {ph['result_rate']:.1f} | {ph['inference_median'] * 1000:.1f} / "
                         f"{ph['inference_p95'] * 1000:.1f} | {ph['age_median'] * 1000:.1f} "
                         f"(x{ph['age_median'] / ph['inference_median']:.2f}) | {ph['age_p95'] * 1000:.1f} | "
                         f"{ph['max_gap'] * 1000:.0f} |")
    lines += ["", "| model | frames in all | node RSS after warm-up -> at the end | node still running |",
              "|---|---:|---:|---|"]
    for stream in streams:
        lines.append(f"| {stream['label']} | {stream['frames_total']} | {stream['rss_start']:.0f} -> "
                     f"{stream['rss_end']:.0f} MiB ({stream['rss_end'] - stream['rss_start']:+.0f}) | "
                     f"{'yes' if stream['alive'] else 'NO'} |")
    lines += ["", "## Reproduce", "", "```",
              "PYTHONPATH=vla_perception nice .venv/bin/python bench/bench_nodes.py "
              f"--tiny-calls {args.tiny_calls} --full-calls {args.full_calls} "
              f"--tiny-seconds {args.tiny_seconds:.0f} --full-seconds {args.full_seconds:.0f} "
              "--write docs/node_benchmark.md", "```", "",
              f"Benchmark figures, not tests: other jobs shared the 2-core machine (load average "
              f"{args.load_before} before this run, {os.getloadavg()[0]:.1f} at its end), so treat times as "
              "indicative."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny-calls", type=int, default=50, help="overhead calls, tiny model (0: skip)")
    parser.add_argument("--full-calls", type=int, default=20, help="overhead calls, full-size model (0: skip)")
    parser.add_argument("--tiny-seconds", type=float, default=30.0, help="tiny model: seconds per input rate")
    parser.add_argument("--full-seconds", type=float, default=30.0, help="full-size model: seconds per input rate")
    parser.add_argument("--rates", type=float, nargs="+", default=[30.0, 90.0], help="input rates, in turn")
    parser.add_argument("--write", help="also write the report to this markdown file")
    args = parser.parse_args()
    args.load_before = f"{os.getloadavg()[0]:.1f}"
    from ros_harness import RosClient

    from vla_perception.core.models.tiny import make_tiny_models

    with tempfile.TemporaryDirectory() as root:
        make_tiny_models(root, ["clip"])
        os.environ["VLA_PERCEPTION_MODELS"] = root
        full = f"local-dir:{write_full_size_clip(Path(root) / 'vit_b32_random')}"
        ros = RosClient("bench_nodes")
        try:
            overheads = []
            if args.tiny_calls:
                overheads.append(overhead(ros, "bench_clip_tiny", "", "tiny", args.tiny_calls, root, root))
                print(overheads[-1], flush=True)
            if args.full_calls:
                overheads.append(overhead(ros, "bench_clip_full", full, "tiny", args.full_calls, root, root))
                overheads[-1]["name"] = "bench_clip_full (ViT-B/32, random)"
                print(overheads[-1], flush=True)
            streams = [streaming(ros, "tiny", "", [(rate, args.tiny_seconds) for rate in args.rates], root, root),
                       streaming(ros, "full", full, [(rate, args.full_seconds) for rate in args.rates], root, root)]
            streams[-1]["label"] = "full (ViT-B/32, random)"
        finally:
            ros.close()
    text = report(overheads, streams, args)
    print_and_write(text, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
