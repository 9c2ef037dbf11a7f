"""The original's utils/ddp_decorators.md, run as a user would: ``on_rank``,
``parallel_on_all_devices``, ``ParallelExecutor`` and ``parallelize_on_gpus``. On this CPU-only
machine they run on the CPU as documented; the per-device worker processes are exercised with
CPU and meta devices standing in for GPUs. Adaptations are marked ``# ADAPTED``."""

from __future__ import annotations

import os

import pytest
import torch
from models import TinyNet

import nn_handler.utils.ddp as ddp
from nn_handler.utils import ddp_decorators

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fall-back")


def test_the_module_re_exports_the_one_implementation():
    for name in ddp_decorators.__all__:
        assert getattr(ddp_decorators, name) is getattr(ddp, name)
    assert set(ddp_decorators.__all__) == {
        "on_rank",
        "parallel_on_all_devices",
        "parallelize_on_gpus",
        "ParallelExecutor",
    }


def test_on_rank_example(capsys):
    import torch  # ADAPTED: the page uses torch without importing it
    import torch.distributed as dist  # noqa: F401

    from nn_handler.utils.ddp_decorators import on_rank

    model = TinyNet()  # ADAPTED: the page's `model`
    data = [3, 1, 2]  # ADAPTED: the page's `data`

    @on_rank(0)  # Only execute on rank 0
    def save_checkpoint(model, path):
        torch.save(model.state_dict(), path)
        print(f"Checkpoint saved to {path}")

    # This will only execute on rank 0, other ranks will wait
    save_checkpoint(model, "checkpoint.pth")

    @on_rank([0, 1])  # Execute on ranks 0 and 1
    def process_data(data):
        processed_data = sorted(data)  # ADAPTED: the page leaves processed_data undefined
        return processed_data

    # This will execute on ranks 0 and 1, other ranks will wait
    assert process_data(data) == [1, 2, 3]
    assert "Checkpoint saved to checkpoint.pth" in capsys.readouterr().out
    saved = torch.load("checkpoint.pth", weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def test_on_rank_elsewhere_returns_none():
    from nn_handler.utils.ddp_decorators import on_rank

    assert on_rank(1)(lambda: "ran")() is None  # one process is rank 0


@needs_no_cuda
def test_parallel_on_all_devices_example():
    import torch

    from nn_handler.utils.ddp_decorators import parallel_on_all_devices

    @parallel_on_all_devices
    def my_model_forward(data_chunk):
        # data_chunk is a slice of the batch on a specific GPU
        device = data_chunk.device
        # ... perform operations on data_chunk ...
        new_tensor = torch.ones(1, device=device)
        # ... more operations ...
        return new_tensor

    # Move your entire input batch to the primary CUDA device
    # ADAPTED: "cuda:0" only where CUDA exists; this machine has none
    full_batch = torch.randn(128, 10).to("cuda:0" if torch.cuda.is_available() else "cpu")

    # Call the function. DataParallel will automatically split the batch,
    # move chunks to other GPUs, execute the function, and gather results
    results = my_model_forward(full_batch)
    assert torch.equal(results, torch.ones(1))  # one device: one chunk, the whole batch
    assert my_model_forward.__name__ == "my_model_forward"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_parallel_on_all_devices_splits_over_every_gpu():
    @ddp.parallel_on_all_devices
    def per_chunk(chunk):
        return torch.full((1,), float(len(chunk)), device=chunk.device)

    results = per_chunk(torch.randn(64, 3, device="cuda:0"))
    count = torch.cuda.device_count()
    assert results.shape == (count,) and float(results.sum()) == 64.0
    with pytest.raises(TypeError, match="without any tensor"):
        per_chunk([1, 2])


@needs_no_cuda
def test_parallel_executor_example():
    import torch

    from nn_handler.utils.ddp_decorators import ParallelExecutor

    def heavy_computation(device, data):
        # Move data to the specified device
        data = data.to(device)
        # Perform computation
        result = data * 2
        return result

    # Create some data
    data = torch.tensor([1, 2, 3])

    # Use ParallelExecutor as a context manager
    with pytest.warns(RuntimeWarning, match="CUDA is not available"):  # ADAPTED: no GPU here
        with ParallelExecutor(num_gpus=2) as executor:
            # Run the function on 2 GPUs
            results = executor.run(heavy_computation, data)
            # results is a list of tensors, one from each GPU
    assert len(results) == 1 and results[0].tolist() == [2, 4, 6]


@needs_no_cuda
def test_parallelize_on_gpus_example():
    import torch

    from nn_handler.utils.ddp_decorators import parallelize_on_gpus

    @parallelize_on_gpus()
    def process_on_gpu(device, data):
        # This function will be executed on each GPU
        return data.to(device) * 2

    # Create some data
    data = torch.tensor([1, 2, 3])

    # Run the function on all available GPUs
    results = process_on_gpu(data)
    # results is a list of tensors, one from each GPU
    assert len(results) == 1 and results[0].tolist() == [2, 4, 6]

    # You can also specify the number of GPUs to use
    @parallelize_on_gpus(num_gpus=2)
    def another_gpu_function(device, x, y):
        return (x + y).to(device)

    # This will run only on the first 2 GPUs
    with pytest.warns(RuntimeWarning, match="CUDA is not available"):  # ADAPTED: no GPU here
        results = another_gpu_function(torch.tensor([1, 2]), torch.tensor([3, 4]))
    assert len(results) == 1 and results[0].tolist() == [4, 6]


def test_device_is_passed_by_keyword_or_in_its_positional_place():
    seen = []

    def device_first(device, data):
        seen.append(("first", device.type, data))

    def device_last(data, device=None):
        seen.append(("last", device.type, data))

    def device_keyword_only(data, *, device):
        seen.append(("kw", device.type, data))

    def no_device(data):
        seen.append(("none", data))

    executor = ddp.ParallelExecutor()
    for func in (device_first, device_last, device_keyword_only):
        executor.run(func, 5)
    ddp.ParallelExecutor(pass_device=False).run(no_device, 6)
    assert seen == [("first", "cpu", 5), ("last", "cpu", 5), ("kw", "cpu", 5), ("none", 6)]


@needs_no_cuda
def test_an_error_names_the_device():
    def boom(device, x):
        raise ValueError(f"bad input {x}")

    with pytest.raises(RuntimeError, match=r"boom failed on cpu: ValueError: bad input 7") as info:
        ddp.ParallelExecutor().run(boom, 7)
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(RuntimeError, match="failed on cpu: ValueError"):
        ddp.parallelize_on_gpus()(boom)(7)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_gpus"):
        ddp.ParallelExecutor(num_gpus=0)
    with pytest.raises(TypeError, match="needs a function"):
        ddp.ParallelExecutor().run("not callable")


# ---------------------------------------------- worker processes (devices standing in for GPUs)
@pytest.fixture
def two_devices(monkeypatch):
    """What a 2-GPU machine would give, with the CPU and the meta device as the two devices."""
    devices = [torch.device("cpu"), torch.device("meta")]
    monkeypatch.setattr(ddp, "_target_devices", lambda *args, **kwargs: list(devices))
    return devices


@pytest.mark.slow
def test_worker_processes_return_results_in_device_order(two_devices):
    import parallel_targets as targets

    with ddp.ParallelExecutor(num_gpus=2) as executor:
        assert executor._pool is not None  # the workers outlive one run
        first = executor.run(targets.where, tag="a")
        second = executor.run(targets.doubled, torch.tensor([1, 2]))
    assert executor._pool is None
    assert [r[:2] for r in first] == [("cpu", "a"), ("meta", "a")]
    assert all(pid != os.getpid() for *_, pid in first)  # ran in worker processes
    assert [t.tolist() for t in second] == [[2, 4], [3, 5]]
    decorated = ddp.parallelize_on_gpus(num_gpus=2)(targets.where)
    assert [r[:2] for r in decorated("b")] == [("cpu", "b"), ("meta", "b")]


@pytest.mark.slow
def test_worker_errors_name_each_failed_device(two_devices):
    import parallel_targets as targets

    with pytest.raises(RuntimeError) as info:
        ddp.ParallelExecutor().run(targets.fail_on_meta)
    message = str(info.value)
    assert "failed on 1 of 2 device(s)" in message
    assert "meta (worker 1): ValueError: no data on the meta device" in message
    assert "cpu (worker 0)" not in message
