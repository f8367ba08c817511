"""Benchmark: model families on each runtime x precision, against eager torch in the same run (prints tables).

For each family, full-size random-weight models are saved locally and loaded through the project's
own loading code once per runtime/precision (``runtime``/``precision`` as the nodes pass them, exports
into a fresh cache directory). Calls then alternate between the variants, round after round, so load
from other jobs on the machine hits every variant alike; each table gives median and p95 latency, the
ratio of eager torch fp32's median to the variant's (> 1: faster), and parity with eager torch fp32 on
the same inputs (for int8: *agreement* with fp32 on random weights, not accuracy).

Families measured: CLIP, the tests' tiny model and ViT-B/32 (image tower alone on a preprocessed batch
of 1, and the whole ``classify`` call on a 640x480 frame with 4 cached labels).

    PYTHONPATH=vla_perception nice .venv/bin/python bench/bench_runtimes.py [--rounds 10]
        [--sizes tiny full] [--write docs/runtime_benchmark.md]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "vla_perception"))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

from bench_common import machine, print_and_write, write_full_size_clip  # noqa: E402

LABELS = ["cup", "bottle", "duck", "cube"]
VARIANTS = [("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("torch", "int8"),
            ("onnxruntime", "int8")]


def tiny_clip(root: Path) -> tuple[str, Path]:
    from vla_perception.core.models.tiny import make_tiny_clip

    return "CLIP tiny (the tests' 1-layer model: plumbing cost, not a model's)", make_tiny_clip(root / "tiny_clip")


def full_clip(root: Path) -> tuple[str, Path]:
    return "CLIP ViT-B/32 (open_clip)", write_full_size_clip(root / "vit_b32_random")


CLIP_MODELS = {"tiny": tiny_clip, "full": full_clip}


def frame(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (480, 640, 3), dtype=np.uint8)


def load_variants(model_dir: Path, threads: int, variants) -> dict:
    """{(runtime, precision): (classifier, configure seconds, second configure seconds)}; failures -> reason."""
    from vla_perception.core.models import load_classifier, resolve_model_source

    source = resolve_model_source("default", "clip", f"local-dir:{model_dir}")
    loaded = {}
    for runtime, precision in variants:
        try:
            started = time.perf_counter()
            load_classifier(source, device="cpu", threads=threads, runtime=runtime, precision=precision)
            first = time.perf_counter() - started
            started = time.perf_counter()
            classifier = load_classifier(source, device="cpu", threads=threads, runtime=runtime,
                                         precision=precision)
            loaded[(runtime, precision)] = (classifier, first, time.perf_counter() - started)
        except Exception as error:  # noqa: BLE001 - a variant that cannot run is reported, not fatal
            loaded[(runtime, precision)] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
        print(runtime, precision, "loaded" if isinstance(loaded[(runtime, precision)], tuple)
              else loaded[(runtime, precision)], flush=True)
    return loaded


def clip_rounds(loaded: dict, rounds: int) -> dict:
    """Alternate every variant's image tower and classify calls; per variant: times and outputs."""
    import torch

    usable = {key: value[0] for key, value in loaded.items() if isinstance(value, tuple)}
    reference = usable[("torch", "fp32")]
    pixels = reference.image_batch(frame(0), None)
    figures = {key: {"tower": [], "classify": [], "features": None, "scores": []} for key in usable}
    for classifier in usable.values():  # warm up (text cache, allocators, first-run graph optimisations)
        classifier.classify(frame(0), LABELS)
        classifier.encode_image(pixels)
    for index in range(rounds):
        image = frame(index + 1)
        for key, classifier in usable.items():
            started = time.perf_counter()
            with torch.inference_mode():
                features = classifier.encode_image(pixels)
            figures[key]["tower"].append(time.perf_counter() - started)
            figures[key]["features"] = features.float()
            result = classifier.classify(image, LABELS)[0]
            figures[key]["classify"].append(result.inference_time)
            figures[key]["scores"].append(np.array(result.scores))
    return figures


def parity(figures: dict, key) -> dict:
    reference = figures[("torch", "fp32")]
    ours = figures[key]
    feature_error = float((ours["features"] - reference["features"]).abs().max())
    score_error = max(float(np.abs(a - b).max()) for a, b in zip(ours["scores"], reference["scores"]))
    same_best = np.mean([int(np.argmax(a) == np.argmax(b)) for a, b in zip(ours["scores"], reference["scores"])])
    return {"feature_error": feature_error, "score_error": score_error, "same_best": float(same_best)}


def clip_table(loaded: dict, figures: dict) -> list[str]:
    base_tower = statistics.median(figures[("torch", "fp32")]["tower"])
    base_classify = statistics.median(figures[("torch", "fp32")]["classify"])
    lines = ["| runtime | precision | device | image tower median / p95 ms | x eager | classify median / p95 ms "
             "| x eager | max abs score diff vs torch fp32 | same best label | configure s (first / cached) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, value in loaded.items():
        runtime, precision = key
        if not isinstance(value, tuple):
            lines.append(f"| {runtime} | {precision} | cpu | not supported: {value} | | | | | | |")
            continue
        tower, classify = figures[key]["tower"], figures[key]["classify"]
        match = parity(figures, key)
        lines.append(
            f"| {runtime} | {precision} | cpu | {statistics.median(tower) * 1000:.1f} / "
            f"{np.percentile(tower, 95) * 1000:.1f} | **{base_tower / statistics.median(tower):.2f}** | "
            f"{statistics.median(classify) * 1000:.1f} / {np.percentile(classify, 95) * 1000:.1f} | "
            f"{base_classify / statistics.median(classify):.2f} | {match['score_error']:.1e} | "
            f"{match['same_best'] * 100:.0f} % | {value[1]:.1f} / {value[2]:.1f} |")
    return lines


def report(tables: dict, args) -> str:
    lines = ["# Runtime benchmark", "",
             f"Machine: {machine()}; {args.threads} threads per runtime; load average {args.load_before} "
             f"before the run, {os.getloadavg()[0]:.1f} at its end (the machine is shared).", "",
             "Random weights, so parity columns compare numbers, not recognition. "
             "'x eager' = eager torch fp32 median / this variant's median, from the same run with calls "
             "alternating between variants. int8 rows: *agreement* with fp32, not accuracy. "
             "Configure: loading plus export into an empty cache (first), then loading again from the "
             "cache (cached).", ""]
    for title, table in tables.items():
        lines += [f"## {title}", "", *table, ""]
    lines += ["## Reproduce", "", "```",
              f"PYTHONPATH=vla_perception nice .venv/bin/python bench/bench_runtimes.py --rounds {args.rounds} "
              f"--threads {args.threads} --sizes {' '.join(args.sizes)} --write docs/runtime_benchmark.md", "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", nargs="+", choices=sorted(CLIP_MODELS), default=["tiny", "full"],
                        help="CLIP models to measure, in turn")
    parser.add_argument("--write", help="also write the report to this markdown file")
    args = parser.parse_args()
    args.load_before = f"{os.getloadavg()[0]:.1f}"
    tables = {}
    with tempfile.TemporaryDirectory() as root:
        os.environ["VLA_PERCEPTION_CACHE"] = str(Path(root) / "compiled")
        for size in args.sizes:
            title, model_dir = CLIP_MODELS[size](Path(root))
            loaded = load_variants(model_dir, args.threads, VARIANTS)
            figures = clip_rounds(loaded, args.rounds)
            tables[f"{title}, random weights, 640x480 frame, 4 labels"] = clip_table(loaded, figures)
            print(title, json.dumps({f"{k[0]}/{k[1]}": {"tower_ms": statistics.median(v["tower"]) * 1000,
                                                        "classify_ms": statistics.median(v["classify"]) * 1000}
                                     for k, v in figures.items()}, indent=1), flush=True)
    text = report(tables, args)
    print_and_write(text, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
