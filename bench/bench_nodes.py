"""Benchmark: what a node costs on top of its model, and how it streams (prints figures; not a test).

(a) Node overhead: clip_node's ``~/classify`` round trip from a client in another process, for one
    640x480 frame carried in the request and 4 labels, divided by the model call alone
    (``ClipClassifier.classify`` in this process, same weights, same frame). Calls alternate between
    the two so both see the same load on the machine. Tiny profile and full-size ViT-B/32 with random
    weights (saved in open_clip's local-dir format and passed as the node's ``model`` parameter).
(b) Streaming: clip_node (tiny profile) fed 640x480 rgb8 frames by a publisher in this process;
    result age (arrival at this client - the frame's header stamp) against the median inference time
    the node reports, and the node's resident memory after 100 and after 5,000 frames.

    PYTHONPATH=vla_perception nice .venv/bin/python bench/bench_nodes.py [--write docs/node_benchmark.md]
"""
from __future__ import annotations

import argparse
import json
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

from vla_perception.core.models import load_classifier, resolve_model_source  # noqa: E402
from bench_common import machine, write_keeping_notes  # noqa: E402

LABELS = ["cup", "bottle", "duck", "cube"]
WIDTH, HEIGHT = 640, 480


def frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def write_full_size_clip(directory: Path) -> Path:
    """Save a random-weight ViT-B/32 as open_clip_config.json + open_clip_model.safetensors (local-dir)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": open_clip.get_model_config("ViT-B-32"), "preprocess_cfg": {}}
    (directory / "open_clip_config.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(directory / "open_clip_model.safetensors"))
    return directory


# ----- processes ------------------------------------------------------------------------------------
def node_env(models_root: str) -> dict:
    from ros_harness import ros_env

    path = os.pathsep.join([os.path.join(HERE, "..", "vla_perception"), os.environ.get("PYTHONPATH", "")])
    return ros_env(PYTHONPATH=path, VLA_PERCEPTION_MODELS=models_root)


def start_clip_node(name: str, params: dict, models_root: str, directory: str):
    from ros_harness import NodeProcess, write_params

    base = {"autostart": True, "device": "cpu", "threads": 0, "labels": LABELS}
    path = write_params(name, {**base, **params}, directory)
    return NodeProcess("vla_perception.nodes.clip_node", ["-r", f"__node:={name}", "--params-file", path],
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
        client = wait_until_active(ros, f"/{name}/classify", request)
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


def streaming(ros, seconds: float, rate: float, total_frames: int, fast_rate: float, models_root: str,
              directory: str) -> dict:
    from vla_perception_interfaces.msg import Classification

    name = "bench_clip_stream"
    node = start_clip_node(name, {"profile": "tiny", "stream": True}, models_root, directory)
    results: list[tuple[float, float, float]] = []  # (arrival - stamp, inference time, arrival)

    def on_result(msg: Classification) -> None:
        arrival = time.time()
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        results.append((arrival - stamp, msg.inference_time, arrival))

    ros.node.create_subscription(Classification, f"/{name}/classification", on_result, 50)
    publisher = FramePublisher(ros.node, "/image")
    try:
        from vla_perception.bridge.image import cv2_to_imgmsg
        from vla_perception_interfaces.srv import Classify

        wait_until_active(ros, f"/{name}/classify", Classify.Request(image=cv2_to_imgmsg(frame(), "rgb8")))
        deadline = time.monotonic() + 30.0  # the subscription must see frames before counting starts
        while not results and time.monotonic() < deadline:
            publisher.publish()
            time.sleep(1.0 / rate)
        if not results:
            raise TimeoutError(f"no results on /{name}/classification after 30 s of frames")
        publisher.count = 0
        results.clear()
        publisher.sent.clear()
        publisher.run(rate, 100)
        rss_100 = rss_mib(node.process.pid)
        publisher.run(rate, int(seconds * rate))
        time.sleep(0.5)
        window = list(results)
        streamed = publisher.count
        gaps = np.diff(publisher.sent)
        publisher.run(fast_rate, total_frames)
        time.sleep(1.0)
        rss_total = rss_mib(node.process.pid)
        alive = node.alive()
    finally:
        node.stop()
    ages = [age for age, _, _ in window]
    inference = [seconds_ for _, seconds_, _ in window]
    return {"rate": rate, "seconds": seconds, "frames": streamed, "results": len(window),
            "age_median": statistics.median(ages), "age_p95": float(np.percentile(ages, 95)),
            "inference_median": statistics.median(inference),
            "inference_p95": float(np.percentile(inference, 95)),
            "achieved_rate": len(gaps) / float(np.sum(gaps)), "max_gap": float(np.max(gaps)),
            "rss_100": rss_100, "rss_total": rss_total,
            "total_frames": total_frames, "fast_rate": fast_rate, "alive": alive,
            "total_results": len(results)}


# ----- report ---------------------------------------------------------------------------------------


def report(overheads: list[dict], stream: dict, args) -> str:
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
    s = stream
    lines += ["## (b) Streaming: clip_node, tiny profile, 640x480 rgb8 frames", "",
              f"{s['frames']} frames published at {s['rate']:.0f} Hz ({s['seconds']:.0f} s), then more at "
              f"{s['fast_rate']:.0f} Hz up to {s['total_frames']} frames in all (to reach 5,000 sooner). "
              "Result age = arrival of `~/classification` at the bench - the frame's header stamp "
              "(same machine clock).", "",
              "| figure | value |", "|---|---:|",
              f"| results in the {s['rate']:.0f} Hz window | {s['results']} of {s['frames']} frames |",
              f"| publish rate achieved / longest gap between two frames | {s['achieved_rate']:.1f} Hz / "
              f"{s['max_gap'] * 1000:.0f} ms |",
              f"| inference time (node-reported) median / p95 | {s['inference_median'] * 1000:.1f} / "
              f"{s['inference_p95'] * 1000:.1f} ms |",
              f"| result age median | {s['age_median'] * 1000:.1f} ms "
              f"(x{s['age_median'] / s['inference_median']:.1f} inference) |",
              f"| result age p95 | {s['age_p95'] * 1000:.1f} ms (x{s['age_p95'] / s['inference_median']:.1f} "
              "inference) |",
              f"| node RSS after 100 frames | {s['rss_100']:.0f} MiB |",
              f"| node RSS after {s['total_frames']} frames | {s['rss_total']:.0f} MiB "
              f"({s['rss_total'] - s['rss_100']:+.0f} MiB) |",
              f"| results in the {s['fast_rate']:.0f} Hz phase | {s['total_results'] - s['results']} of "
              f"{s['total_frames'] - s['frames']} frames |",
              f"| node still running | {'yes' if s['alive'] else 'NO'} |", "",
              "## Reproduce", "", "```",
              "PYTHONPATH=vla_perception nice .venv/bin/python bench/bench_nodes.py "
              f"--tiny-calls {args.tiny_calls} --full-calls {args.full_calls} "
              f"--stream-seconds {args.stream_seconds:.0f} --write docs/node_benchmark.md", "```", "",
              "Benchmark figures, not tests: other jobs shared the 2-core machine (load average about 5 "
              "during this run), so treat times as indicative."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny-calls", type=int, default=50)
    parser.add_argument("--full-calls", type=int, default=20)
    parser.add_argument("--stream-seconds", type=float, default=60.0)
    parser.add_argument("--stream-rate", type=float, default=30.0)
    parser.add_argument("--total-frames", type=int, default=5000)
    parser.add_argument("--fast-rate", type=float, default=90.0, help="rate after the timed window")
    parser.add_argument("--write", help="also write the report to this markdown file")
    args = parser.parse_args()
    from ros_harness import RosClient

    from vla_perception.core.models.tiny import make_tiny_models

    with tempfile.TemporaryDirectory() as root:
        make_tiny_models(root, ["clip"])
        os.environ["VLA_PERCEPTION_MODELS"] = root
        full = f"local-dir:{write_full_size_clip(Path(root) / 'vit_b32_random')}"
        ros = RosClient("bench_nodes")
        try:
            overheads = [overhead(ros, "bench_clip_tiny", "", "tiny", args.tiny_calls, root, root)]
            print(overheads[-1], flush=True)
            overheads.append(overhead(ros, "bench_clip_full", full, "tiny", args.full_calls, root, root))
            overheads[-1]["name"] = "bench_clip_full (ViT-B/32, random)"
            print(overheads[-1], flush=True)
            stream = streaming(ros, args.stream_seconds, args.stream_rate, args.total_frames, args.fast_rate,
                               root, root)
            print(stream, flush=True)
        finally:
            ros.close()
    text = report(overheads, stream, args)
    print("\n" + text)
    if args.write:
        write_keeping_notes(Path(args.write), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
