"""The original's dataloaders/h5_dataloader.md, run as a user would: ``H5LazyDataset`` and
``h5_worker_init_fn`` on real HDF5 files. Adaptations are marked ``# ADAPTED`` (and listed in
docs/migration.md)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
from h5_files import write_embeddings, write_images
from torch.utils.data import DataLoader, Subset

pytest.importorskip("h5py")
# The page asks for 4 workers; torch warns when a machine has fewer cores.
pytestmark = pytest.mark.filterwarnings("ignore:This DataLoader will create:UserWarning")

from nn_handler.dataloaders.h5_dataloader import H5LazyDataset, h5_worker_init_fn  # noqa: E402


@pytest.fixture
def files():
    # ADAPTED: the page reads data/my_dataset.h5 and data/features.h5; the test writes them.
    write_images("data/my_dataset.h5", n=40)
    write_embeddings("data/features.h5", n=30)


# ---------------------------------------------------------------- the page's examples
def test_basic_usage(files):
    import numpy as np  # ADAPTED: the page uses np without importing it
    import torch  # noqa: F401
    from torch.utils.data import DataLoader

    from nn_handler.dataloaders.h5_dataloader import H5LazyDataset, h5_worker_init_fn

    # Create a dataset from an HDF5 file with input-target pairs
    dataset = H5LazyDataset(
        path="data/my_dataset.h5",
        x_key="images",
        y_key="labels",
        x_dtype=np.float32,
        y_dtype=np.int64,
    )

    # Create a DataLoader with worker initialization
    dataloader = DataLoader(
        dataset, batch_size=32, shuffle=True, num_workers=4, worker_init_fn=h5_worker_init_fn
    )

    seen = []
    for inputs, targets in dataloader:
        # Training code here
        assert inputs.dtype == torch.float32 and targets.dtype == torch.int64
        assert inputs.shape[1:] == (3, 4, 4)
        rows = inputs[:, 0, 0, 0].long()
        assert torch.equal(targets, rows % 3)  # each target belongs to its input
        seen += rows.tolist()
    assert sorted(seen) == list(range(40))


def test_with_transformations(files):
    import torch
    from torch.utils.data import DataLoader

    from nn_handler.dataloaders.h5_dataloader import H5LazyDataset, h5_worker_init_fn

    # ADAPTED: torchvision's T.Compose([ToPILImage, RandomHorizontalFlip, ToTensor, Normalize])
    # becomes a plain function (torchvision is not a dependency); the per-channel normalisation
    # with the page's mean/std is kept.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

    def transform(x):
        return (torch.as_tensor(x, dtype=torch.float32).flip(-1) - mean) / std

    def target_transform(y):
        return torch.tensor(y, dtype=torch.long)

    dataset = H5LazyDataset(
        path="data/my_dataset.h5",
        x_key="images",
        y_key="labels",
        transform=transform,
        target_transform=target_transform,
    )
    dataloader = DataLoader(
        dataset, batch_size=32, shuffle=True, num_workers=4, worker_init_fn=h5_worker_init_fn
    )
    batches = list(dataloader)
    inputs = torch.cat([b[0] for b in batches])
    targets = torch.cat([b[1] for b in batches])
    rows = torch.round(inputs[:, 0, 0, 0] * std[0, 0, 0] + mean[0, 0, 0]).long()
    assert sorted(rows.tolist()) == list(range(40))
    assert targets.dtype == torch.long and torch.equal(targets, rows % 3)


def test_input_only_dataset(files):
    import numpy as np  # ADAPTED: the page uses np without importing it
    from torch.utils.data import DataLoader

    from nn_handler.dataloaders.h5_dataloader import H5LazyDataset, h5_worker_init_fn

    dataset = H5LazyDataset(
        path="data/features.h5",
        x_key="embeddings",
        y_key=None,  # No targets
        x_dtype=np.float32,
    )
    dataloader = DataLoader(
        dataset, batch_size=64, shuffle=False, num_workers=2, worker_init_fn=h5_worker_init_fn
    )
    features = [f for f in dataloader]
    assert len(features) == 1 and features[0].dtype == torch.float32
    expected = torch.stack([torch.arange(30.0), 2 * torch.arange(30.0)], dim=1)
    assert torch.equal(features[0], expected)  # in file order


# ------------------------------------------------------------ per-process file handles
class HandleSpy(H5LazyDataset):
    """Each item also says which process read it and which process opened the handle used."""

    def __getitem__(self, idx):
        x, y = super().__getitem__(idx)
        return x, y, os.getpid(), self._pid, id(self._handle)


def test_construction_leaves_no_handle_open(files):
    dataset = H5LazyDataset("data/my_dataset.h5", "images", "labels")
    assert dataset._handle is None  # validated, then closed: nothing for a fork to inherit
    assert len(dataset) == 40
    x, y = dataset[7]
    assert dataset._pid == os.getpid() and float(x[0, 0, 0]) == 7.0 and int(y) == 1
    dataset.close()
    assert dataset._handle is None
    assert int(dataset[-1][1]) == 39 % 3  # reopened on demand; negative index


@pytest.mark.parametrize("init_fn", [h5_worker_init_fn, None], ids=["init_fn", "no_init_fn"])
def test_each_worker_opens_its_own_handle(files, init_fn):
    dataset = HandleSpy("data/my_dataset.h5", "images", "labels")
    parent_item = dataset[3]  # the parent opens a handle before the workers fork
    parent_handle = dataset._handle
    loader = DataLoader(dataset, batch_size=5, num_workers=2, worker_init_fn=init_fn)
    rows, readers = [], set()
    for x, _y, pid, opened_by, _ in loader:
        rows += x[:, 0, 0, 0].long().tolist()
        assert torch.equal(opened_by, pid)  # the handle used was opened in the reading process
        readers |= set(pid.tolist())
    assert sorted(rows) == list(range(40))
    assert len(readers) == 2 and os.getpid() not in readers
    # The parent's handle was never touched by the workers and still reads correctly.
    assert dataset._handle is parent_handle and parent_item[2] == os.getpid()
    assert float(dataset[39][0][0, 0, 0]) == 39.0


def test_worker_init_fn_reaches_datasets_inside_subsets(files):
    dataset = HandleSpy("data/my_dataset.h5", "images", "labels")
    dataset[0]
    loader = DataLoader(
        Subset(dataset, range(10, 20)),
        batch_size=4,
        num_workers=2,
        worker_init_fn=h5_worker_init_fn,
    )
    rows = [r for x, *_ in loader for r in x[:, 0, 0, 0].long().tolist()]
    assert sorted(rows) == list(range(10, 20))


def test_dataset_survives_pickling_without_its_handle(files):
    import pickle

    dataset = H5LazyDataset("data/my_dataset.h5", "images", "labels")
    dataset[0]
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._handle is None and dataset._handle is not None
    assert float(clone[5][0][0, 0, 0]) == 5.0


def test_with_nnhandler_and_two_workers(files):
    from h5_files import ImageNet

    from nn_handler import NNHandler

    handler = NNHandler(ImageNet)
    dataset = H5LazyDataset("data/my_dataset.h5", "images", "labels", y_dtype=np.int64)
    handler.set_train_loader(
        dataset,
        batch_size=8,
        shuffle=True,
        num_workers=2,
        worker_init_fn=h5_worker_init_fn,
        persistent_workers=True,  # ADAPTED: see docs/data.md, "Worker processes"
    )
    handler.set_optimizer(torch.optim.SGD, lr=0.01)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.train(2, progress_bar=False)
    assert len(handler.train_losses) == 2
    assert all(np.isfinite(handler.train_losses))


# --------------------------------------------------------------------------- bad input
def test_missing_file_is_named(files):
    with pytest.raises(FileNotFoundError, match=r"data/missing\.h5.*not found"):
        H5LazyDataset("data/missing.h5", "images")
    with pytest.raises(FileNotFoundError, match="directory"):
        H5LazyDataset("data", "images")


def test_missing_key_lists_the_datasets(files):
    with pytest.raises(KeyError, match=r"x_key='pixels' is missing.*\['images', 'labels'\]"):
        H5LazyDataset("data/my_dataset.h5", "pixels", "labels")
    with pytest.raises(KeyError, match="y_key='targets'"):
        H5LazyDataset("data/my_dataset.h5", "images", "targets")


def test_other_bad_input(files, tmp_path):
    import h5py

    with h5py.File("data/uneven.h5", "w") as f:
        f["x"] = np.zeros((5, 2))
        f["y"] = np.zeros(4)
        f.create_group("group")
    with pytest.raises(ValueError, match="5 samples but y_key='y' has 4"):
        H5LazyDataset("data/uneven.h5", "x", "y")
    with pytest.raises(KeyError, match="is a group"):
        H5LazyDataset("data/uneven.h5", "group")
    with pytest.raises(ValueError, match="rdcc_w0"):
        H5LazyDataset("data/my_dataset.h5", "images", rdcc_w0=2)
    with pytest.raises(TypeError, match="transform must be callable"):
        H5LazyDataset("data/my_dataset.h5", "images", transform="flip")
    (tmp_path / "data" / "text.h5").write_text("not hdf5")
    with pytest.raises(OSError, match="as an HDF5 file"):
        H5LazyDataset("data/text.h5", "images")
    dataset = H5LazyDataset("data/my_dataset.h5", "images")
    with pytest.raises(IndexError):
        dataset[40]
    with pytest.raises(TypeError, match="index must be an int"):
        dataset["3"]


def test_missing_h5py_says_how_to_install(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes `import h5py` fail
    with pytest.raises(ImportError, match=r"pip install nn-handler\[h5\]"):
        H5LazyDataset("data/my_dataset.h5", "images")
