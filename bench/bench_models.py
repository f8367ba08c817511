"""Benchmark: per-call latency of the model wrappers on this CPU (prints figures; not a test).

1. The tiny profile (random-weight test models), loaded through the normal loaders.
2. Full-size architectures with random weights, built from their default configs (no download):
   CLIP ViT-B/32 (open_clip), Grounding DINO Swin-T at 480x640, OWL-ViT B/32, BLIP base caption,
   CLIPSeg rd64-refined (ViT-B/16 at 352x352).
   They run through the same wrapper classes as real checkpoints; weights do not change the cost,
   except that random BLIP never emits [SEP], so it always generates max_new_tokens.
3. CLIP per-frame cost with 1, 10 and 50 labels: warm text-embedding cache vs recomputing the
   text embeddings every frame.

    PYTHONPATH=vla_perception .venv/bin/python bench/bench_models.py [--threads 2] [--skip-full]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vla_perception"))

from vla_perception.core.models import (  # noqa: E402
    load_classifier, load_detector, load_segmenter, load_vlm, resolve_model_source)
from vla_perception.core.models.runtime import make_runtime  # noqa: E402
from vla_perception.core.models.tiny import make_tiny_models  # noqa: E402
from vla_perception.core.types import Box2D  # noqa: E402

PROMPT = "cup . bottle . duck . cube"
LABELS = ["cup", "bottle", "duck", "cube"]
BOXES = [Box2D(60.0 + 140 * i, 150.0, 160.0 + 140 * i, 330.0) for i in range(4)]
WORDS = ["cup", "bottle", "duck", "cube", "tray", "mug", "red", "blue", "green", "table"]


def frame(height=480, width=640, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


LAST_MIN = {}  # the fastest of the last median_seconds() run, printed beside the median


def median_seconds(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    LAST_MIN["seconds"] = min(times)
    return statistics.median(times)


def row(name: str, seconds: float, note: str = "") -> None:
    fastest = LAST_MIN.pop("seconds", None)
    fastest_text = f"{fastest * 1000:>8.1f}" if fastest is not None else " " * 8
    print(f"| {name:<44} | {seconds * 1000:>10.1f} | {fastest_text} | {note} |")


def header(title: str) -> None:
    print(f"\n### {title}\n\n| call | median ms | min ms | note |\n|---|---:|---:|---|")


def bench_tiny(device: str, threads: int) -> None:
    header("tiny profile (random-weight test models)")
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        make_tiny_models(root)
        row("make-tiny (all six families)", time.perf_counter() - start)
        os.environ["VLA_PERCEPTION_MODELS"] = root
        image = frame()
        start = time.perf_counter()
        clip = load_classifier(resolve_model_source("tiny", "clip"), device=device, threads=threads)
        row("load CLIP (incl. warm-up)", time.perf_counter() - start)
        row("CLIP classify 640x480, 4 labels", median_seconds(lambda: clip.classify(image, LABELS), 10))
        for backend in ("grounding_dino", "owlvit"):
            start = time.perf_counter()
            detector = load_detector(resolve_model_source("tiny", backend), backend=backend, device=device,
                                     threads=threads)
            row(f"load {backend} (incl. warm-up)", time.perf_counter() - start)
            row(f"{backend} detect 640x480", median_seconds(lambda: detector.detect(image, PROMPT), 5))
        start = time.perf_counter()
        vlm = load_vlm(resolve_model_source("tiny", "blip_caption"), resolve_model_source("tiny", "blip_vqa"),
                       device=device, threads=threads)
        row("load BLIP caption + VQA (incl. warm-up)", time.perf_counter() - start)
        row("BLIP caption, 20 tokens", median_seconds(lambda: vlm.caption(image, "", 20), 5))
        row("BLIP answer, 5 tokens", median_seconds(lambda: vlm.answer(image, "is there a cup?", 5), 5))
        segmenter = load_segmenter(resolve_model_source("tiny", "clipseg"), device=device, threads=threads)
        row("CLIPSeg 4 boxes", median_seconds(lambda: segmenter.segment(image, BOXES, LABELS), 5))


def on(model, runtime):
    """Move a randomly initialised model where the loaders would put a checkpoint (fp16 on CUDA)."""
    return model.to(runtime.device, runtime.dtype).eval()


def write_full_bert_vocab(path: Path) -> Path:
    """Write a 30524-entry BERT vocab: [CLS] 101, [SEP] 102, "." 1012, "?" 1029, [DEC] 30522, our words."""
    vocab = [f"[unused{i}]" for i in range(30524)]
    for index, token in {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 1012: ".",
                         1029: "?", 30522: "[DEC]", 30523: "[ENC]"}.items():
        vocab[index] = token
    words = WORDS + ["is", "there", "a", "what", "photo", "of"] + list("abcdefghijklmnopqrstuvwxyz")
    for index, word in enumerate(words):
        vocab[2000 + index] = word
    path.write_text("\n".join(vocab) + "\n")
    return path


def full_clip(runtime):
    import open_clip

    from vla_perception.core.models.clip import ClipClassifier

    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    return on(model, runtime), preprocess, open_clip.get_tokenizer("ViT-B-32"), ClipClassifier


def bench_full_clip(device: str, threads: int) -> None:
    runtime = make_runtime(device, threads)
    model, preprocess, tokenizer, classifier_class = full_clip(runtime)
    cached = classifier_class(model, preprocess, tokenizer, runtime, "ViT-B-32 (random)",
                              ["a photo of a {}."])
    uncached = classifier_class(model, preprocess, tokenizer, runtime, "ViT-B-32 (random)",
                                ["a photo of a {}."], cache_size=0)
    image = frame()
    header("CLIP ViT-B/32, full size, random weights, 640x480 frame")
    cached.classify(image, LABELS)
    row("classify whole frame, 4 labels (warm cache)",
        median_seconds(lambda: cached.classify(image, LABELS), 5))
    boxes = [Box2D(40.0 * i, 30.0, 40.0 * i + 120, 200.0) for i in range(8)]
    row("classify 8 box crops in one batch, 4 labels",
        median_seconds(lambda: cached.classify(image, LABELS, boxes), 3))
    header("CLIP per-frame cost vs number of labels (templates: 1)")
    for count in (1, 10, 50):
        labels = [f"{WORDS[i % len(WORDS)]} {i}" for i in range(count)]
        cached.classify(image, labels)
        warm = median_seconds(lambda: cached.classify(image, labels), 9)
        row(f"{count} labels, warm text cache", warm)
        cold = median_seconds(lambda: uncached.classify(image, labels), 5)
        row(f"{count} labels, text embeddings recomputed", cold, f"x{cold / warm:.1f} of warm")


def bench_full_detectors(device: str, threads: int, tokenizer_dir: Path) -> None:
    from PIL import Image  # noqa: F401  (the processors need pillow)
    from transformers import (BertTokenizer, GroundingDinoConfig, GroundingDinoForObjectDetection,
                              GroundingDinoImageProcessor, GroundingDinoProcessor)

    from vla_perception.core.models.detector import GroundingDinoDetector

    runtime = make_runtime(device, threads)
    image = frame()
    header("Grounding DINO Swin-T + BERT-base, full size, random weights")
    start = time.perf_counter()
    torch.manual_seed(0)
    model = on(GroundingDinoForObjectDetection(GroundingDinoConfig()), runtime)
    tokenizer = BertTokenizer(vocab_file=str(write_full_bert_vocab(tokenizer_dir / "vocab.txt")))
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 480, "longest_edge": 640})
    processor = GroundingDinoProcessor(image_processor, tokenizer)
    detector = GroundingDinoDetector(model, processor, runtime, "grounding-dino Swin-T (random)")
    row("build from config", time.perf_counter() - start)
    detector.detect(image, PROMPT)
    row("detect 640x480 (model input 480x640)", median_seconds(lambda: detector.detect(image, PROMPT), 2))

    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTProcessor

    from vla_perception.core.models.detector import OwlVitDetector

    header("OWL-ViT B/32, full size, random weights (input 768x768)")
    torch.manual_seed(0)
    tiny_owl = tokenizer_dir / "owlvit"
    make_tiny_models(tokenizer_dir, ["owlvit"])
    owl_processor = OwlViTProcessor.from_pretrained(tiny_owl)
    owl_processor.image_processor.size = {"height": 768, "width": 768}
    owl_processor.image_processor.crop_size = {"height": 768, "width": 768}
    config = OwlViTConfig(text_config={"vocab_size": len(owl_processor.tokenizer),
                                       "eos_token_id": owl_processor.tokenizer.eos_token_id,
                                       "bos_token_id": owl_processor.tokenizer.bos_token_id})
    owl_model = on(OwlViTForObjectDetection(config), runtime)
    owl = OwlVitDetector(owl_model, owl_processor, runtime, "owlvit B/32 (random)")
    owl.detect(image, LABELS)
    row("detect 640x480, 4 phrases", median_seconds(lambda: owl.detect(image, LABELS), 2))


def bench_full_blip(device: str, threads: int, tokenizer_dir: Path) -> None:
    from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor,
                              BlipProcessor)

    from vla_perception.core.models.vlm import BlipModels

    runtime = make_runtime(device, threads)
    header("BLIP base captioning, full size, random weights (input 384x384)")
    torch.manual_seed(0)
    tokenizer = BertTokenizer(vocab_file=str(write_full_bert_vocab(tokenizer_dir / "vocab.txt")),
                              bos_token="[DEC]")
    processor = BlipProcessor(BlipImageProcessor(), tokenizer)
    model = on(BlipForConditionalGeneration(BlipConfig()), runtime)
    vlm = BlipModels((model, processor), None, runtime, "blip base (random)", "")
    image = frame()
    vlm.caption(image, "", 2)
    for tokens in (5, 20):
        row(f"caption, {tokens} new tokens", median_seconds(lambda: vlm.caption(image, "", tokens), 2))


def bench_full_clipseg(device: str, threads: int, scratch: Path) -> None:
    from transformers import CLIPSegConfig, CLIPSegForImageSegmentation, CLIPSegProcessor

    from vla_perception.core.models.segmenter import ClipSegSegmenter

    runtime = make_runtime(device, threads)
    header("CLIPSeg rd64-refined (ViT-B/16), full size, random weights (input 352x352 per box)")
    torch.manual_seed(0)
    make_tiny_models(scratch, ["clipseg"])  # its tokenizer and processor; token ids fit the full vocab
    processor = CLIPSegProcessor.from_pretrained(scratch / "clipseg")
    processor.image_processor.size = {"height": 352, "width": 352}
    config = CLIPSegConfig(vision_config={"patch_size": 16}, reduce_dim=64, use_complex_transposed_convolution=True)
    segmenter = ClipSegSegmenter(on(CLIPSegForImageSegmentation(config), runtime), processor, runtime,
                                 "clipseg rd64 (random)")
    image = frame()
    segmenter.segment(image, BOXES[:1], LABELS[:1])
    for count in (1, 4):
        row(f"segment {count} box(es) in one batch",
            median_seconds(lambda: segmenter.segment(image, BOXES[:count], LABELS[:count]), 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N] (fp16)")
    parser.add_argument("--skip-full", action="store_true", help="only the tiny profile")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"## bench_models: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} threads, device {args.device}"
          + (f" ({torch.cuda.get_device_name()}, fp16)" if args.device.startswith("cuda") else ", fp32"))
    bench_tiny(args.device, args.threads)
    if args.skip_full:
        return
    bench_full_clip(args.device, args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        bench_full_detectors(args.device, args.threads, Path(scratch))
        bench_full_blip(args.device, args.threads, Path(scratch))
        bench_full_clipseg(args.device, args.threads, Path(scratch))


if __name__ == "__main__":
    main()
