"""Device, precision and thread settings, and timing of inference calls."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Runtime:
    """Where and in which precision a model runs: fp16 on CUDA, fp32 on the CPU."""

    device: torch.device
    dtype: torch.dtype

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def move(self, inputs) -> dict:
        """A processor's tensors on this device; floating-point ones in this precision."""
        return {
            key: value.to(self.device, self.dtype) if value.is_floating_point() else value.to(self.device)
            for key, value in inputs.items()
        }


def make_runtime(device: str = "auto", threads: int = 0) -> Runtime:
    """Resolve ``auto|cpu|cuda[:N]`` and apply ``threads`` (0 keeps torch's default)."""
    name = (device or "auto").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use device:=cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if threads and threads > 0:
        torch.set_num_threads(int(threads))
    resolved = torch.device(name)
    return Runtime(resolved, torch.float16 if resolved.type == "cuda" else torch.float32)


class Stopwatch:
    """``with Stopwatch() as watch: ...`` then ``watch.seconds`` (CUDA work is waited for)."""

    def __init__(self):
        self.seconds = 0.0
        self._start = 0.0

    def __enter__(self) -> "Stopwatch":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self._start
