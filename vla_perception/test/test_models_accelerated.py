"""Accelerated runtimes (ONNX Runtime, OpenVINO) against eager torch, on tiny random-weight models.

Random weights: these tests check parity of the exported graphs with torch, the export cache and the
error messages, not what the models recognise. Speed is measured by bench/bench_runtimes.py.
"""
import sys

import numpy as np
import pytest

from vla_perception.core.models import load_classifier, resolve_model_source
from vla_perception.core.models import accelerated
from vla_perception.core.models.errors import AccelerationError
from vla_perception.core.types import Box2D

LABELS = ["cup", "duck", "red bottle"]
BOXES = [Box2D(0, 0, 80, 60), Box2D(40, 30, 160, 120), Box2D(10, 70, 90, 118)]


def needs(runtime: str):
    """``runtime`` as a test parameter that skips, naming the install, where the runtime is absent."""
    reason = f"{runtime} not installed: {accelerated.INSTALL_HINT[runtime]}"
    return pytest.param(runtime, marks=pytest.mark.skipif(not accelerated.installed(runtime), reason=reason))


ACCELERATED = [needs("onnxruntime"), needs("openvino")]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(accelerated.CACHE_ENV, str(tmp_path / "compiled"))
    return tmp_path / "compiled"


def clip(tiny_models_dir, **kwargs):
    source = resolve_model_source("tiny", "clip", str(tiny_models_dir / "clip"))
    return load_classifier(source, device="cpu", threads=1, templates=["a photo of a {}."], **kwargs)


def image(seed=0, height=120, width=160):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("runtime", ACCELERATED)
def test_clip_scores_match_torch(tiny_models_dir, runtime):
    eager, fast = clip(tiny_models_dir), clip(tiny_models_dir, runtime=runtime)
    assert fast.runtime_name == runtime and eager.runtime_name == "torch"
    for labels, boxes in ((LABELS, None), (LABELS[:2], BOXES), (["mug"] + LABELS, BOXES[:1])):
        expected = eager.classify(image(1), labels, boxes)
        got = fast.classify(image(1), labels, boxes)  # other batch sizes than the export's example
        assert len(got) == len(expected)
        for ours, theirs in zip(got, expected):
            np.testing.assert_allclose(ours.scores, theirs.scores, atol=1e-4)
            assert ours.best_label == theirs.best_label


@pytest.mark.parametrize("runtime", ACCELERATED)
def test_second_load_reuses_the_cached_export(tiny_models_dir, runtime, cache_dir, monkeypatch):
    first = clip(tiny_models_dir, runtime=runtime)
    files = sorted(cache_dir.rglob("*.onnx"))
    assert len(files) == 2, "one file per tower"

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds this model")

    monkeypatch.setattr(accelerated, "export_onnx", no_export)
    second = clip(tiny_models_dir, runtime=runtime)
    assert second.runtime_name == runtime and sorted(cache_dir.rglob("*.onnx")) == files
    np.testing.assert_allclose(second.classify(image(3), LABELS)[0].scores,
                               first.classify(image(3), LABELS)[0].scores, atol=1e-6)


def test_cache_key_names_weights_runtime_precision_and_shape():
    import torch

    part = accelerated.Part("p", ["x"], ["y"])
    one = [torch.zeros(1, 3, 8, 8)]
    base = accelerated.cache_path("w1", one, part, "onnxruntime", "fp32")
    assert base != accelerated.cache_path("w2", one, part, "onnxruntime", "fp32")
    assert base != accelerated.cache_path("w1", one, part, "openvino", "fp32")
    assert base != accelerated.cache_path("w1", one, part, "onnxruntime", "int8")
    assert base != accelerated.cache_path("w1", [torch.zeros(1, 3, 16, 16)], part, "onnxruntime", "fp32")
    assert base == accelerated.cache_path("w1", one, part, "onnxruntime", "fp32")


def test_weights_hash_changes_when_one_weight_changes():
    import torch

    layer = torch.nn.Linear(4, 4)
    before = accelerated.weights_hash(layer)
    with torch.no_grad():
        layer.weight[0, 0] += 1e-3
    assert accelerated.weights_hash(layer) != before


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_a_runtime_that_is_not_installed_gives_one_clear_message(tiny_models_dir, runtime, monkeypatch):
    monkeypatch.setitem(sys.modules, runtime, None)  # what an absent package looks like to import
    with pytest.raises(AccelerationError, match=f"{runtime}.*not installed.*pip install"):
        clip(tiny_models_dir, runtime=runtime)


def test_auto_uses_torch_when_onnxruntime_is_missing(tiny_models_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert clip(tiny_models_dir, runtime="auto").runtime_name == "torch"


def test_tensorrt_without_cuda_is_a_clear_error(tiny_models_dir):
    with pytest.raises(AccelerationError, match="tensorrt.*CUDA"):
        clip(tiny_models_dir, runtime="tensorrt")


@pytest.mark.skipif(not accelerated.installed("onnxruntime"),
                    reason=f"onnxruntime not installed: {accelerated.INSTALL_HINT['onnxruntime']}")
def test_failed_export_is_an_error_unless_runtime_is_auto(tiny_models_dir, monkeypatch):
    def failing_export(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::made_up' to ONNX is not supported")

    monkeypatch.setattr(accelerated, "export_onnx", failing_export)
    with pytest.raises(AccelerationError, match="onnxruntime could not run clip_image.*aten::made_up"):
        clip(tiny_models_dir, runtime="onnxruntime")
    fallback = clip(tiny_models_dir, runtime="auto")
    assert fallback.runtime_name == "torch"
    assert fallback.classify(image(), LABELS)[0].best_label in LABELS


@pytest.mark.parametrize("runtime", ["torch", needs("onnxruntime")])
def test_int8_quantises_the_linear_layers(tiny_models_dir, runtime, cache_dir):
    fp32 = clip(tiny_models_dir, runtime=runtime)
    int8 = clip(tiny_models_dir, runtime=runtime, precision="int8")
    if runtime == "torch":
        quantised = [m for m in int8.encode_image.modules() if "quantized" in type(m).__module__]
        assert quantised, "int8 on torch must replace nn.Linear with dynamically quantised layers"
    else:
        import onnx

        (path,) = cache_dir.glob("clip_image-onnxruntime-int8-*/model.onnx")
        ops = {node.op_type for node in onnx.load(str(path)).graph.node}
        assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops
    result, reference = int8.classify(image(5), LABELS)[0], fp32.classify(image(5), LABELS)[0]
    assert sum(result.scores) == pytest.approx(1.0, abs=1e-5)
    assert not np.allclose(result.scores, reference.scores, atol=1e-7), "int8 must change the arithmetic"


def test_unknown_runtime_and_precision_are_rejected(tiny_models_dir):
    with pytest.raises(ValueError, match="runtime must be one of"):
        clip(tiny_models_dir, runtime="tflite")
    with pytest.raises(ValueError, match="precision must be one of"):
        clip(tiny_models_dir, precision="int4")


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_families_without_an_export_name_themselves_in_the_error(tiny_models_dir, runtime):
    from vla_perception.core.models import load_detector, load_vlm

    source = resolve_model_source("tiny", "owlvit", str(tiny_models_dir / "owlvit"))
    with pytest.raises(AccelerationError, match=f"{runtime}.*not supported for owlvit"):
        load_detector(source, backend="owlvit", device="cpu", runtime=runtime)
    with pytest.raises(AccelerationError, match="int8.*not supported for blip_caption"):
        load_vlm(str(tiny_models_dir / "blip_caption"), str(tiny_models_dir / "blip_vqa"), device="cpu",
                 precision="int8")
    assert load_detector(source, backend="owlvit", device="cpu", runtime="auto").model_id.endswith("owlvit")
