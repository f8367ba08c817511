"""Run part of a model on ONNX Runtime or OpenVINO instead of eager torch: export once, cache, reuse.

``accelerate(module, example_inputs, part, settings)`` returns a callable with the module's calling
convention (torch tensors in, a torch tensor or tuple out). For ``runtime`` ``onnxruntime`` or
``openvino`` it exports ``module`` to ONNX at configure time into a cache directory keyed by the
weights' hash, the runtime, the precision, the input shapes and the exporter's version, so a second
configure (or another node with the same weights) loads the file instead of exporting again. Nothing
here touches the network.

``runtime: auto`` picks ONNX Runtime on the CPU when it is installed and falls back to eager torch,
with the reason, when it is not or when the export fails; any explicitly named runtime that cannot be
used raises one ``AccelerationError`` that says why and what to do.
``precision: int8`` is dynamic quantisation of the linear layers (weights int8, activations quantised
at run time): ``torch.ao.quantization.quantize_dynamic`` on torch, ``quantize_dynamic`` on ONNX Runtime.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from vla_perception.core.models.checks import check_precision, check_runtime
from vla_perception.core.models.errors import AccelerationError

CACHE_ENV = "VLA_PERCEPTION_CACHE"
CACHE_DEFAULT = "~/.cache/vla_perception/compiled"
INSTALL_HINT = {
    "onnxruntime": "pip install onnxruntime onnx (make setup installs the pins of requirements/lock.txt)",
    "openvino": "pip install openvino onnx (make setup installs the pins of requirements/lock.txt)",
}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Part:
    """One exportable piece of a model: its name and the ONNX graph's input/output names.

    ``dynamic`` maps an input name to the axes whose size may change between calls (e.g. the batch).
    """

    name: str
    inputs: Sequence[str]
    outputs: Sequence[str]
    dynamic: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RuntimeSettings:
    runtime: str = "torch"
    precision: str = "auto"
    threads: int = 0


def installed(runtime: str) -> bool:
    """Whether ``runtime`` and the ``onnx`` package (needed to export) can be imported."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in (runtime, "onnx"))
    except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules (absent)
        return False


def resolve_runtime(runtime: str, device: torch.device) -> str:
    """``auto`` -> onnxruntime on the CPU when installed, else torch; named runtimes are checked here."""
    name = check_runtime(runtime)
    if name == "auto":
        return "onnxruntime" if device.type == "cpu" and installed("onnxruntime") else "torch"
    if name == "tensorrt":
        if device.type != "cuda" or not torch.cuda.is_available():
            raise AccelerationError("runtime 'tensorrt' needs a CUDA device; this machine has none "
                                    "(use runtime:=onnxruntime, openvino or torch on the CPU)")
        raise AccelerationError("runtime 'tensorrt' is declared but not built into this version "
                                "(use runtime:=torch on CUDA)")
    if name in ("onnxruntime", "openvino"):
        if device.type != "cpu":
            raise AccelerationError(f"runtime {name!r} runs on the CPU here; use device:=cpu "
                                    "or runtime:=torch on CUDA")
        if not installed(name):
            raise AccelerationError(f"runtime {name!r} is not installed: {INSTALL_HINT[name]}")
    return name


def weights_hash(module: torch.nn.Module) -> str:
    """A digest of the module's parameter and buffer names, shapes and values."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                      if tensor.numel() else b"")
    return digest.hexdigest()


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or CACHE_DEFAULT).expanduser()


def cache_path(weights: str, example_inputs: Sequence[torch.Tensor], part: Part, runtime: str,
               precision: str) -> Path:
    shapes = ",".join("x".join(map(str, t.shape)) + str(t.dtype) for t in example_inputs)
    key = f"{weights}|{part.name}|{runtime}|{precision}|{shapes}|torch {torch.__version__}"
    name = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache_root() / f"{part.name}-{runtime}-{precision}-{name}" / "model.onnx"


def export_onnx(module: torch.nn.Module, example_inputs: Sequence[torch.Tensor], part: Part, path: Path) -> None:
    """Export to ``path`` (written to a temporary name first, so an interrupted export leaves no cache entry)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.onnx")
    # With gradients enabled nn.MultiheadAttention takes its plain path, not the fused kernel ONNX lacks.
    with torch.inference_mode(False), torch.enable_grad():
        torch.onnx.export(module, tuple(example_inputs), str(partial), input_names=list(part.inputs),
                          output_names=list(part.outputs), dynamic_axes=dict(part.dynamic) or None,
                          opset_version=17, dynamo=False)
    partial.replace(path)


def quantise_onnx(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial.onnx")
    quantize_dynamic(str(source), str(partial), weight_type=QuantType.QInt8)
    partial.replace(target)


def compiled_file(module, example_inputs, part: Part, runtime: str, precision: str, weights: str) -> Path:
    """The cached ONNX file for this module, runtime and precision; exported (and quantised) when absent."""
    path = cache_path(weights, example_inputs, part, runtime, precision)
    if path.exists():
        log.info("%s: reusing %s", part.name, path)
        return path
    if precision == "int8":
        fp32 = compiled_file(module, example_inputs, part, runtime, "fp32", weights)
        quantise_onnx(fp32, path)
    else:
        export_onnx(module, example_inputs, part, path)
    log.info("%s: exported %s", part.name, path)
    return path


class OnnxRuntimePart:
    """Calls an ONNX Runtime session like the torch module it was exported from."""

    def __init__(self, path: Path, part: Part, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads > 0:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.part = part

    def __call__(self, *inputs: torch.Tensor):
        feeds = {name: tensor.detach().cpu().numpy() for name, tensor in zip(self.part.inputs, inputs)}
        outputs = [torch.from_numpy(array) for array in self.session.run(list(self.part.outputs), feeds)]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


class OpenVinoPart:
    """Calls an OpenVINO compiled model (CPU) like the torch module it was exported from."""

    def __init__(self, path: Path, part: Part, threads: int):
        import openvino

        config = {"INFERENCE_NUM_THREADS": threads} if threads > 0 else {}
        core = openvino.Core()
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.part = part

    def __call__(self, *inputs: torch.Tensor):
        feeds = {name: tensor.detach().cpu().numpy() for name, tensor in zip(self.part.inputs, inputs)}
        results = self.request.infer(feeds)
        outputs = [torch.from_numpy(results[self.compiled.output(name)].copy()) for name in self.part.outputs]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def quantised_torch(module: torch.nn.Module) -> torch.nn.Module:
    quantised = torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)
    for layer in quantised.modules():  # open_clip asks a layer for its dtype here (weight is a method now)
        if callable(getattr(layer, "weight", None)):
            layer.int8_original_dtype = torch.float32
    return quantised


def accelerate(module: torch.nn.Module, example_inputs: Sequence[torch.Tensor], part: Part,
               settings: RuntimeSettings, device: torch.device, weights: Optional[str] = None
               ) -> tuple[Callable, str]:
    """(callable, runtime used) for ``module`` under ``settings``; see the module docstring.

    ``weights``: the module's ``weights_hash`` when the caller has it already (it reads every weight).
    """
    precision = check_precision(settings.precision)
    wanted = check_runtime(settings.runtime)
    runtime = resolve_runtime(wanted, device)
    if precision == "int8" and device.type != "cpu":
        raise AccelerationError("precision 'int8' is a CPU option (dynamic quantisation); use device:=cpu")
    if runtime == "torch":
        return (quantised_torch(module) if precision == "int8" else module), "torch"
    if precision == "int8" and runtime == "openvino":
        raise AccelerationError("precision 'int8' is not supported with runtime 'openvino' here "
                                "(it needs NNCF); use runtime:=onnxruntime or torch for int8")
    stored = "int8" if precision == "int8" else "fp32"
    try:
        path = compiled_file(module, example_inputs, part, runtime, stored, weights or weights_hash(module))
        runner = (OnnxRuntimePart if runtime == "onnxruntime" else OpenVinoPart)(path, part, settings.threads)
    except Exception as error:  # noqa: BLE001 - any exporter/runtime failure becomes one message
        reason = f"{runtime} could not run {part.name}: {type(error).__name__}: {str(error).splitlines()[0]}"
        if wanted != "auto":
            raise AccelerationError(f"{reason} (use runtime:=torch or runtime:=auto)") from error
        log.warning("%s; falling back to torch (runtime:=auto)", reason)
        return (quantised_torch(module) if precision == "int8" else module), "torch"
    return runner, runtime
