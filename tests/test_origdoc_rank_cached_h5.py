"""The original's dataloaders/rank_cached_h5_dataloader.md: ``RankMemCachedH5Dataset``,
``EpochShuffleSampler`` and the split helpers, on real HDF5 files. The page's examples run in a
real 2-process torchrun job (tests/ddp_scripts/h5_job.py, adaptations marked ``# ADAPTED``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from h5_files import write_embeddings, write_images
from launch_env import clean_env, job_output, torchrun

pytest.importorskip("h5py")

from nn_handler.dataloaders.rank_cached_h5_dataloader import (  # noqa: E402
    EpochShuffleSampler,
    RankMemCachedH5Dataset,
    _balanced_contiguous_shard,
    _interleaved_indices,
)

JOB = Path(__file__).resolve().parent / "ddp_scripts" / "h5_job.py"


def _quiet(_line: str) -> None:
    pass


# -------------------------------------------------------------------- split helpers
@pytest.mark.parametrize("world", [1, 2, 3, 5])
@pytest.mark.parametrize("total", [0, 1, 4, 7, 20])
def test_split_helpers_are_disjoint_and_cover(total, world):
    contiguous = [_balanced_contiguous_shard(total, world, r) for r in range(world)]
    assert contiguous[0][0] == 0 and contiguous[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(contiguous, contiguous[1:]))  # adjacent slices
    sizes = [end - start for start, end in contiguous]
    assert max(sizes) - min(sizes) <= 1
    interleaved = [_interleaved_indices(total, world, r) for r in range(world)]
    assert sorted(np.concatenate(interleaved).tolist()) == list(range(total))
    assert all((part % world == r).all() for r, part in enumerate(interleaved))


def test_split_helpers_reject_bad_arguments():
    assert _balanced_contiguous_shard(10, 3, 0) == (0, 4)
    assert _interleaved_indices(10, 3, 2).tolist() == [2, 5, 8]
    with pytest.raises(ValueError, match="rank 2 is outside"):
        _balanced_contiguous_shard(10, 2, 2)
    with pytest.raises(ValueError, match="world_size"):
        _interleaved_indices(10, 0, 0)
    with pytest.raises(ValueError, match="total"):
        _balanced_contiguous_shard(-1, 2, 0)


# ------------------------------------------------------------------------- dataset
@pytest.fixture
def images():
    return write_images("data/large_dataset.h5", n=23, label_dtype=np.int64)


def test_one_process_caches_everything_once(images):
    lines = []
    dataset = RankMemCachedH5Dataset(
        "data/large_dataset.h5", "images", "labels", log_fn=lines.append
    )
    assert (dataset.rank, dataset.world_size, len(dataset), dataset.total) == (0, 1, 23, 23)
    assert dataset.indices.tolist() == list(range(23))
    assert len(lines) == 1 and "cached 23 of 23 samples" in lines[0]
    images.unlink()  # read once: nothing is read from the file any more
    x, y = dataset[22]
    assert x.dtype == torch.float32 and float(x.max()) == 22.0  # dtype_x=np.float32 default
    assert y.dtype == torch.int64 and int(y) == 22 % 3  # dtype_y=None keeps the file's dtype


@pytest.mark.parametrize("mode", ["contiguous", "interleave"])
def test_shards_from_the_launcher_variables_are_disjoint_and_cover(images, monkeypatch, mode):
    shards = []
    for rank in range(3):
        for key, value in {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": 3}.items():
            monkeypatch.setenv(key, str(value))
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
        dataset = RankMemCachedH5Dataset(
            "data/large_dataset.h5", "images", "labels", mode=mode, log_fn=_quiet
        )
        assert (dataset.rank, dataset.world_size, dataset.max_shard_len) == (rank, 3, 8)
        rows = [int(dataset[i][0][0, 0, 0]) for i in range(len(dataset))]
        assert rows == dataset.indices.tolist()  # the cache holds exactly those rows, in order
        shards.append(set(rows))
    assert not (shards[0] & shards[1]) and not (shards[1] & shards[2]) and not shards[0] & shards[2]
    assert set().union(*shards) == set(range(23))
    if mode == "interleave":
        assert sorted(shards[1]) == list(range(1, 23, 3))
    else:
        assert sorted(shards[0]) == list(range(0, 8))


def test_options_transforms_and_shared_memory(images):
    dataset = RankMemCachedH5Dataset(
        "data/large_dataset.h5",
        "images",
        "labels",
        dtype_x=np.float16,
        dtype_y=np.int32,
        transform=lambda x: x * 2,
        target_transform=lambda y: y + 100,
        share_memory=True,
        pin_host_memory=True,  # no CUDA here: pinning is skipped, not an error
        log_fn=None,
    )
    x, y = dataset[5]
    assert x.dtype == torch.float16 and float(x[0, 0, 0]) == 10.0
    assert y.dtype == torch.int32 and int(y) == 100 + 5 % 3
    assert dataset._x.is_shared() and dataset._y.is_shared()
    inputs_only = RankMemCachedH5Dataset("data/large_dataset.h5", "images", log_fn=None)
    assert isinstance(inputs_only[3], torch.Tensor)


def test_bad_input(images):
    import h5py

    with pytest.raises(ValueError, match="mode must be one of"):
        RankMemCachedH5Dataset("data/large_dataset.h5", "images", mode="random")
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        RankMemCachedH5Dataset("data/nope.h5", "images")
    with pytest.raises(KeyError, match=r"y_key='classes' is missing.*'labels'"):
        RankMemCachedH5Dataset("data/large_dataset.h5", "images", "classes")
    with h5py.File("data/names.h5", "w") as f:
        f["names"] = np.array([b"a", b"b"])
    with pytest.raises(TypeError, match="dtype_x"):
        RankMemCachedH5Dataset("data/names.h5", "names", dtype_x=None, log_fn=None)


def test_missing_h5py_says_how_to_install(images, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install nn-handler\[h5\]"):
        RankMemCachedH5Dataset("data/large_dataset.h5", "images")


# ------------------------------------------------------------------------- sampler
def test_epoch_shuffle_sampler_reshuffles_per_epoch_reproducibly():
    sampler = EpochShuffleSampler(data_len=50, seed=42, shuffle=True)
    first = list(sampler)
    assert sorted(first) == list(range(50)) and len(sampler) == 50
    assert list(sampler) == first  # same epoch, same order
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(second) == list(range(50)) and second != first
    again = EpochShuffleSampler(50, seed=42)
    again.set_epoch(1)
    assert list(again) == second  # a function of seed + epoch only
    assert list(EpochShuffleSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]
    assert list(EpochShuffleSampler(0)) == []


def test_epoch_shuffle_sampler_bad_input():
    with pytest.raises(ValueError, match="data_len"):
        EpochShuffleSampler(-1)
    with pytest.raises(ValueError, match="seed"):
        EpochShuffleSampler(3, seed=1.5)
    with pytest.raises(ValueError, match="epoch"):
        EpochShuffleSampler(3).set_epoch(-2)


# ------------------------------------------------------- the page's examples, torchrun
def run_h5_job(tmp_path: Path, mode: str) -> list[dict]:
    """Launch h5_job.py MODE on 2 CPU processes; the two ranks' reports."""
    write_images(tmp_path / "data" / "large_dataset.h5", n=45, label_dtype=np.int64)
    write_images(tmp_path / "data" / "imbalanced_dataset.h5", n=11)
    write_embeddings(tmp_path / "data" / "features.h5", n=21)
    env = clean_env(drop_slurm=True)
    env.update(NN_HANDLER_DDP_TIMEOUT="90", OMP_NUM_THREADS="1")
    cmd = torchrun(JOB, tmp_path / "out", mode)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, job_output(proc)
    return [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow
def test_the_pages_examples_under_torchrun(tmp_path):
    r0, r1 = run_h5_job(tmp_path, "rank_cached")
    # Basic setup, contiguous: 45 rows split 23 + 22, disjoint, covering the file.
    assert r0["contiguous"] == list(range(0, 23)) and r1["contiguous"] == list(range(23, 45))
    for rep in (r0, r1):
        assert rep["dtype_x"] == "torch.float32"
        epoch0, epoch1 = rep["contiguous_epochs"]
        # every epoch reads exactly the rank's own rows, in a new order each epoch
        assert sorted(epoch0) == sorted(epoch1) == rep["contiguous"]
        assert epoch0 != epoch1
    assert [rep["local_rank"] for rep in (r0, r1)] == [0, 1]
    # Interleaved: 11 rows, rank 0 the even ones and rank 1 the odd ones; labels cast to int64.
    assert r0["interleave"] == r0["interleave_rows"] == [0, 2, 4, 6, 8, 10]
    assert r1["interleave"] == r1["interleave_rows"] == [1, 3, 5, 7, 9]
    assert r0["interleave_label_dtype"] == "torch.int64"
    # Input-only, not shuffled: each rank's features in file order, together the whole file.
    assert r0["features"] == r0["features_indices"] == list(range(0, 11))
    assert r1["features"] == r1["features_indices"] == list(range(11, 21))
