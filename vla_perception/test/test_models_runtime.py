"""Device, precision and thread settings of the model layer (CPU machine; CUDA paths checked by hand)."""
import pytest
import torch

from vla_perception.core.models.runtime import Stopwatch, make_runtime


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_cpu_runs_fp32_and_threads_are_applied_only_when_positive(restore_threads):
    runtime = make_runtime("cpu", threads=1)
    assert runtime.device == torch.device("cpu") and runtime.dtype == torch.float32 and not runtime.is_cuda
    assert torch.get_num_threads() == 1
    make_runtime("cpu", threads=0)
    assert torch.get_num_threads() == 1, "threads=0 keeps the current setting"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_auto_falls_back_to_the_cpu_and_cuda_without_a_gpu_is_a_clear_error():
    assert make_runtime("auto").device == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            make_runtime(name)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_runs_fp16():
    assert make_runtime("auto").dtype == torch.float16
    assert make_runtime("cuda:0").device == torch.device("cuda:0")


@pytest.mark.parametrize("name", ["gpu", "tpu", "cuda0x"])
def test_unknown_devices_are_refused(name):
    with pytest.raises((ValueError, RuntimeError)):
        make_runtime(name)


def test_stopwatch_measures_the_block():
    with Stopwatch() as watch:
        torch.ones(1000).sum()
    assert watch.seconds > 0
