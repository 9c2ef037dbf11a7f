"""The original's rank-cached HDF5 examples under torchrun (2 processes, gloo); a JSON per rank.

Usage (in a directory holding data/large_dataset.h5, data/imbalanced_dataset.h5 and
data/features.h5, see h5_files.py): h5_job.py OUT_DIR MODE, MODE one of
  rank_cached  the examples of dataloaders/rank_cached_h5_dataloader.md (a plain DDP loop);
  readme       dataloaders/README.md's NNHandler example with RankMemCachedH5Dataset;
  enums        utils/enums.md's set_train_loader(dataloader_type=DataLoaderType.RANK_CACHED).
Each place where the original's example had to change says ``# ADAPTED``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from h5_files import ImageNet, ids  # noqa: E402

NUM_EPOCHS = 2


class Recorder(L.Callback):
    """The rows each training batch held, per epoch, and what sampler Lightning iterated."""

    def __init__(self):
        self.epochs: list[list[int]] = []
        self.sampler_epochs: list[int | None] = []

    def on_train_epoch_start(self, trainer, pl_module):
        sampler = trainer.train_dataloader.sampler
        self.sampler_type = type(sampler).__name__
        self.sampler_epochs.append(getattr(sampler, "epoch", None))
        self.epochs.append([])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.epochs[-1] += ids(batch[0])


def rank_cached() -> dict:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader

    from nn_handler.dataloaders.rank_cached_h5_dataloader import (
        EpochShuffleSampler,
        RankMemCachedH5Dataset,
    )

    report: dict = {}
    # --- Basic Distributed Training Setup
    dist.init_process_group(backend="gloo")  # ADAPTED: nccl -> gloo (CPU)
    local_rank = int(os.environ["LOCAL_RANK"])  # ADAPTED: `import os` was missing
    # ADAPTED: torch.cuda.set_device(local_rank) dropped (no GPU)

    dataset = RankMemCachedH5Dataset(
        path="data/large_dataset.h5",
        x_key="images",
        y_key="labels",
        mode="contiguous",
        pin_host_memory=True,
    )
    sampler = EpochShuffleSampler(data_len=len(dataset), seed=42, shuffle=True)
    dataloader = DataLoader(
        dataset,
        batch_size=32,
        sampler=sampler,
        num_workers=2,  # ADAPTED: 4 -> 2 (a 2-core test machine)
        pin_memory=False,
        persistent_workers=True,  # ADAPTED: see docs/data.md, "Worker processes"
    )
    model = ImageNet()  # ADAPTED: YourModel().cuda() -> a small CPU model
    model = DDP(model)  # ADAPTED: device_ids=[local_rank] is for GPUs
    criterion = torch.nn.CrossEntropyLoss()  # ADAPTED: the page leaves criterion undefined
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    num_epochs = NUM_EPOCHS
    report["contiguous_epochs"] = []
    for epoch in range(num_epochs):
        sampler.set_epoch(epoch)
        seen = []
        for inputs, targets in dataloader:
            # ADAPTED: .cuda(non_blocking=True) dropped
            outputs = model(inputs)
            loss = criterion(outputs, targets)
            optimizer.zero_grad()  # ADAPTED: "... rest of training loop" written out
            loss.backward()
            optimizer.step()
            seen += ids(inputs)
        report["contiguous_epochs"].append(seen)
    report["contiguous"] = dataset.indices.tolist()
    report["local_rank"] = local_rank
    report["dtype_x"] = str(dataset[0][0].dtype)

    # --- Using Interleaved Sharding for Class Balance
    dataset = RankMemCachedH5Dataset(
        path="data/imbalanced_dataset.h5",
        x_key="images",
        y_key="labels",
        mode="interleave",
        dtype_x=np.float32,
        dtype_y=np.int64,
    )
    report["interleave"] = dataset.indices.tolist()
    report["interleave_rows"] = [ids(dataset[i][0][None])[0] for i in range(len(dataset))]
    report["interleave_label_dtype"] = str(dataset[0][1].dtype)

    # --- Input-Only Dataset for Feature Extraction
    dataset = RankMemCachedH5Dataset(
        path="data/features.h5",
        x_key="embeddings",
        y_key=None,
        mode="contiguous",
        dtype_x=np.float32,
    )
    sampler = EpochShuffleSampler(data_len=len(dataset), shuffle=False)
    dataloader = DataLoader(dataset, batch_size=64, sampler=sampler, num_workers=2)  # ADAPTED: 4
    features_list = []
    for features in dataloader:
        # ADAPTED: .cuda() and the model call dropped: the features are kept as they are
        features_list.append(features.cpu())
    report["features"] = torch.cat(features_list)[:, 0].long().tolist()
    report["features_indices"] = dataset.indices.tolist()
    return report


def readme() -> dict:
    import torch

    from nn_handler import NNHandler
    from nn_handler.dataloaders.rank_cached_h5_dataloader import (
        EpochShuffleSampler,
        RankMemCachedH5Dataset,
    )

    report = {"pg_before_dataset": dist.is_initialized()}
    # Create a dataset with rank-specific sharding (before the handler creates the group)
    dataset = RankMemCachedH5Dataset(
        path="data/large_dataset.h5", x_key="images", y_key="labels", mode="contiguous"
    )
    sampler = EpochShuffleSampler(data_len=len(dataset), seed=42, shuffle=True)
    handler = NNHandler(
        model_class=ImageNet,  # ADAPTED: YourModel
        device="cuda" if torch.cuda.is_available() else "cpu",
        use_distributed=True,  # Enable distributed mode
    )
    handler.set_train_loader(
        dataset,
        batch_size=32,
        sampler=sampler,
        num_workers=2,  # ADAPTED: 4 -> 2
        pin_memory=False,  # Already pinned in dataset
        persistent_workers=True,  # ADAPTED: see docs/data.md, "Worker processes"
    )
    # ADAPTED: "for epoch in range(num_epochs): sampler.set_epoch(epoch); # Training code..."
    # is handler.train(num_epochs): Lightning calls set_epoch before every epoch.
    handler.set_optimizer(torch.optim.SGD, lr=0.01)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    recorder = Recorder()
    handler.add_callback(recorder)
    handler.train(NUM_EPOCHS, progress_bar=False)
    report.update(
        rank=handler._rank,
        world=handler._world_size,
        shard=dataset.indices.tolist(),
        epochs=recorder.epochs,
        sampler=recorder.sampler_type,
        sampler_epochs=recorder.sampler_epochs,
        user_sampler_epoch=sampler.epoch,
        train_losses=handler.train_losses,
    )
    return report


def enums() -> dict:
    from torch.utils.data import TensorDataset

    from nn_handler import NNHandler
    from nn_handler.utils.enums import DataLoaderType

    # ADAPTED: NNHandler(...) and Dataset(...) are placeholders on the page. Here each rank
    # builds its own, deliberately uneven shard: rows 0-6 on rank 0, rows 7-12 on rank 1.
    handler = NNHandler(ImageNet, use_distributed=True)
    rank = handler._rank
    rows = range(0, 7) if rank == 0 else range(7, 13)
    x = torch.tensor(list(rows), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 3, 4, 4)
    my_dataset = TensorDataset(x.contiguous(), torch.tensor(list(rows)) % 3)

    handler.set_train_loader(
        dataset=my_dataset,
        dataloader_type=DataLoaderType.RANK_CACHED,
        batch_size=2,  # ADAPTED: 32 -> 2, so that the shards make 4 and 3 batches
        shuffle=True,
    )
    handler.set_optimizer(torch.optim.SGD, lr=0.01)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    recorder = Recorder()
    handler.add_callback(recorder)
    handler.train(NUM_EPOCHS, progress_bar=False)
    return {
        "rank": rank,
        "shard": list(rows),
        "epochs": recorder.epochs,
        "sampler": recorder.sampler_type,
        "sampler_epochs": recorder.sampler_epochs,
        "train_losses": handler.train_losses,
    }


def main() -> None:
    out, mode = Path(sys.argv[1]), sys.argv[2]
    report = {"rank_cached": rank_cached, "readme": readme, "enums": enums}[mode]()
    out.mkdir(parents=True, exist_ok=True)
    rank = dist.get_rank()
    (out / f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
