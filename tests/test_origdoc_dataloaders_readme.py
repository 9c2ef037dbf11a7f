"""The original's dataloaders/README.md: its two NNHandler examples, the second one for real under
torchrun (tests/ddp_scripts/h5_job.py readme). Adaptations are marked ``# ADAPTED``."""

from __future__ import annotations

import numpy as np
import pytest
from h5_files import ImageNet, ids, write_images

pytest.importorskip("h5py")
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")


def test_integration_with_nnhandler():
    write_images("data/my_dataset.h5", n=40, label_dtype=np.int64)  # ADAPTED: the file
    YourModel = ImageNet  # ADAPTED: the page's placeholder model
    import torch  # ADAPTED: the page uses torch without importing it

    from nn_handler import NNHandler
    from nn_handler.dataloaders.h5_dataloader import H5LazyDataset, h5_worker_init_fn

    # Create a dataset
    dataset = H5LazyDataset(path="data/my_dataset.h5", x_key="images", y_key="labels")

    # Set up the handler with the dataset
    handler = NNHandler(
        model_class=YourModel, device="cuda" if torch.cuda.is_available() else "cpu"
    )

    # Set the train loader with the dataset and worker initialization function
    handler.set_train_loader(
        dataset,
        batch_size=32,
        shuffle=True,
        num_workers=4,
        worker_init_fn=h5_worker_init_fn,
        persistent_workers=True,  # ADAPTED: see docs/data.md, "Worker processes"
    )

    loader = handler.train_loader
    assert loader.num_workers == 4 and loader.worker_init_fn is h5_worker_init_fn
    assert sorted(r for x, _ in loader for r in ids(x)) == list(range(40))
    # ... and the handler trains on it.
    handler.set_optimizer(torch.optim.SGD, lr=0.01)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.train(2, progress_bar=False)
    assert len(handler.train_losses) == 2 and np.isfinite(handler.train_losses).all()


@pytest.mark.slow
def test_distributed_example_under_torchrun(tmp_path):
    from test_origdoc_rank_cached_h5 import run_h5_job

    reports = run_h5_job(tmp_path, "readme")
    # The dataset was built before the handler created the process group (launcher variables).
    assert all(rep["pg_before_dataset"] is False for rep in reports)
    assert [(rep["rank"], rep["world"]) for rep in reports] == [(0, 2), (1, 2)]
    assert reports[0]["shard"] == list(range(23)) and reports[1]["shard"] == list(range(23, 45))
    for rep in reports:
        # The handler kept the user's sampler (not split again, only padded to 23 steps' worth)
        assert rep["sampler"] == "RankLocalSampler"
        assert rep["sampler_epochs"] == [0, 1] and rep["user_sampler_epoch"] == 1
        first, second = rep["epochs"]
        assert len(first) == len(second) == 23
        assert set(first) == set(second) == set(rep["shard"])
        assert first != second  # reshuffled for the second epoch
    assert reports[0]["train_losses"] == reports[1]["train_losses"]
