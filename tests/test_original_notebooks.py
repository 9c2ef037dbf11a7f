"""The original NNHandler's own notebooks run on nn_handler, each in a real Jupyter kernel.

They are its author's client code (``shared/spec/original-notebooks``, MIT, copied unchanged
with their stored outputs). A migrating user's adaptations, and only those, are applied by this
test to a copy, and each is named where it is made:

- IMPORT: ``src.nn_handler`` (the original's source checkout) -> ``nn_handler``, everywhere.
- DATA: ``torchvision`` -> ``torchvision_standin``, a package on the kernel's path
  (``tests/notebook_standins``): ``MNIST`` with the real one's shapes and dtypes (1x28x28 uint8
  images, 10 classes; 256 training and 64 test images), the transforms the notebooks use and
  ``make_grid``. Nothing is downloaded. (Under the name ``torchvision`` it would make
  torchmetrics, which Lightning imports, take it for the real package.)
- CPU: the kernel has no GPU. A first cell added to every notebook makes
  ``torch.cuda.current_device()`` return 0 and ``Tensor.cuda()`` return the tensor as it is (what
  they do when the one device is the current one); explicit ``cuda:N`` devices become the CPU.
- SIZES: fewer epochs, sampling steps and samples, a narrower ``score_models.NCSNpp``.
- GPU TIMING: ``%timeit`` cells that time multi-GPU sampling are dropped.
- SAFE LOAD: the module a checkpoint names is imported first, as docs/migration.md tells a
  migrating script (a checkpoint no longer imports what the script did not): ``import
  score_models`` and ``import MNIST_model`` before the loads of notebooks that never import them.

Where a notebook fails on the original too, the cell is marked as expected to raise, the test
says why, and checks the error and everything else that can run. Notebooks that read what an
earlier one wrote run after it (two waves of concurrent kernels), in one working folder laid out
as the original repository (``notebooks/``, ``notebooks/test/``).

``score_models`` (Alexandre Adam's package, used by three notebooks) must be installed (the
``dev`` extra has it); without it, or without the notebooks folder, the test is skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from launch_env import clean_env
from original_docs import DOCS

import nn_handler

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("score_models", reason="the notebooks' score models: pip install score-models")

pytestmark = pytest.mark.slow

ORIGINAL = DOCS.parent / "original-notebooks" if DOCS is not None else None
if ORIGINAL is None or not ORIGINAL.is_dir():
    pytest.skip(
        "the original's notebooks (shared/spec/original-notebooks) are not in this workplace",
        allow_module_level=True,
    )
STANDINS = Path(__file__).resolve().parent / "notebook_standins"

CPU_CELL = """\
# Added by tests/test_original_notebooks.py (CPU): no GPU in this kernel.
import torch
torch.cuda.current_device = lambda: 0
torch.Tensor.cuda = lambda self, *args, **kwargs: self
"""

LOAD = "model = NNHandler.load("  # SAFE LOAD: the line the module's import goes before

SMALL_NET = {  # SIZES: score_models.NCSNpp, narrower and shallower
    '"nf": 64,': '"nf": 8,',
    '"num_res_blocks": 2,': '"num_res_blocks": 1,',
}


class Notebook:
    """A notebook's adapted copy: ``edit(cell, old, new)`` replaces text that must be there."""

    def __init__(self, relpath: str, cwd: str):
        self.relpath, self.cwd = relpath, cwd
        self.nb = nbformat.read(ORIGINAL / relpath, as_version=4)
        for cell in self.nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
                cell.source = cell.source.replace("src.nn_handler", "nn_handler")  # IMPORT
                cell.source = re.sub(r"\btorchvision\b", "torchvision_standin", cell.source)
        self.nb.cells.insert(0, nbformat.v4.new_code_cell(CPU_CELL))

    def cell(self, index: int):
        """The original's code cell ``index`` (numbered as in the original file)."""
        return self.nb.cells[index + 1]

    def edit(self, index: int, old: str, new: str) -> None:
        source = self.cell(index).source
        assert old in source, (self.relpath, index, old)
        self.cell(index).source = source.replace(old, new)

    def expect_error(self, *indices: int) -> None:
        for index in indices:
            self.cell(index).metadata.setdefault("tags", []).append("raises-exception")

    def drop(self, index: int) -> None:
        self.cell(index).source = "# dropped by the test (GPU TIMING)"

    def append(self, source: str) -> None:
        self.nb.cells.append(nbformat.v4.new_code_cell(source))

    def error(self, index: int) -> dict:
        errors = [o for o in self.cell(index).outputs if o.output_type == "error"]
        assert len(errors) == 1, (self.relpath, index, self.cell(index).outputs)
        return errors[0]

    def errors(self) -> list[int]:
        return [
            i - 1
            for i, c in enumerate(self.nb.cells)
            if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)
        ]

    def report(self) -> str:
        """Every error, for assertion messages."""
        return "\n".join(
            f"cell {i}: {self.error(i)['ename']}: {self.error(i)['evalue'][:300]}"
            for i in self.errors()
        )

    def text(self, index: int) -> str:
        outs = self.cell(index).outputs
        parts = [o.text for o in outs if o.output_type == "stream" and o.name == "stdout"]
        parts += [o.data.get("text/plain", "") for o in outs if "data" in o]
        return "".join(parts)

    def images(self, index: int) -> int:
        return sum("image/png" in o.get("data", {}) for o in self.cell(index).outputs)

    def summary(self) -> dict:
        return json.loads(self.text(len(self.nb.cells) - 2).strip().splitlines()[-1])


def _summary(expressions: dict[str, str]) -> str:
    items = ", ".join(f"{k!r}: {v}" for k, v in expressions.items())
    return f"import json\nprint(json.dumps({{{items}}}))"


# ---------------------------------------------------------------- the adapted notebooks
def mnist_basic_example() -> Notebook:
    nb = Notebook("mnist_basic_example.ipynb", ".")
    nb.append(
        _summary(
            {
                "train": "len(model.train_losses)",
                "val": "len(model.val_losses)",
                "files": "sorted(__import__('os').listdir('notebooks/models'))",
                "predicted": "predicted.shape[0]",
            }
        )
    )
    return nb


def mnist_score() -> Notebook:
    nb = Notebook("mnist_score.ipynb", ".")
    for old, new in SMALL_NET.items():
        nb.edit(4, old, new)
    nb.edit(10, "model.train(150,", "model.train(10,")  # SIZES (auto_save(10) saves at epoch 10)
    nb.edit(11, "N = 144", "N = 16")  # SIZES
    nb.edit(11, "steps=100)", "steps=10)")  # SIZES
    # The original fails here too: it loads models/MNIST_score_models_{10..50}.pth, files no run
    # writes (auto_save(10, "notebooks/models", "MNIST_score_models", overwrite=True) keeps one
    # file, notebooks/models/MNIST_score_models.pth).
    nb.expect_error(12)
    nb.append(
        _summary(
            {
                "train": "len(model.train_losses)",
                "samples": "list(samples.shape)",
                "finite": "bool(samples.isfinite().all())",
            }
        )
    )
    return nb


def mnist_patch_diffusion() -> Notebook:
    nb = Notebook("mnist_patch_diffusion.ipynb", ".")
    for old, new in SMALL_NET.items():
        nb.edit(5, old, new)
    # The notebook predates the original's rename (commit 17206f7) of the loss that crops
    # patches of `patch_sizes` to patchify_denoising_score_matching; with the current name
    # patch_denoising_score_matching (no patch_sizes argument) training fails on the original.
    nb.edit(1, "import patch_denoising_score_matching", "import patchify_denoising_score_matching")
    nb.edit(
        7, "partial(patch_denoising_score_matching", "partial(patchify_denoising_score_matching"
    )
    # The original loads notebooks/models/MNIST_patch_score_models.pth, written by its training
    # line, which is commented out: the test trains first (10 epochs: auto_save(10) writes the
    # file), then the load cell reads it.
    nb.edit(11, "model = NNHandler.load(", "model.train(10, validate_every=0, ema_decay=0.99)\n"
            "model = NNHandler.load(")  # fmt: skip
    for index in (15, 16):
        nb.edit(index, "N = 144" if index == 15 else "N = 16", "N = 4")  # SIZES
    nb.edit(15, "steps=100", "steps=10")
    nb.edit(16, "steps=200", "steps=10")
    nb.edit(19, "N = 16", "N = 4")
    nb.edit(19, "steps=100", "steps=10")
    nb.append(
        _summary(
            {
                "train": "len(model.train_losses)",
                "posterior": "list(samples.shape)",
                "finite": "bool(samples.isfinite().all())",
                "files": "sorted(__import__('os').listdir('notebooks/models'))",
            }
        )
    )
    # The shapes of the two earlier samplings, read where the cells leave them.
    nb.cell(15).source += "\nprior_patch_shape = list(samples.shape)"
    nb.cell(16).source += "\nfull_image_shape = list(samples.shape)"
    nb.append(_summary({"patch": "prior_patch_shape", "full": "full_image_shape"}))
    return nb


def multi_gpu_sampling() -> Notebook:
    nb = Notebook("multi_gpu_sampling.ipynb", ".")
    nb.edit(3, "torch.device('cuda:0')", "torch.device('cpu')")  # CPU
    nb.edit(
        8,
        "\nheavy_gpu_work(n=64**2, steps=1000)",
        "\nheavy = heavy_gpu_work(n=64, steps=10)\nheavy",
    )  # SIZES
    nb.edit(
        9, 'torch.device("cuda:1"), n=64**2, steps=1000 * 2', 'torch.device("cpu"), n=64, steps=20'
    )
    nb.append(
        _summary(
            {
                "per_device": "[len(r) for r in sample_gpu()]",
                "heavy": "[list(r.shape) for r in heavy]",
            }
        )
    )
    return nb


def parallelize_on_gpus_decorator() -> Notebook:
    nb = Notebook("parallelize_on_gpus_decorator.ipynb", ".")
    nb.edit(25, LOAD, "import score_models\n\n" + LOAD)  # SAFE LOAD: it never imports it
    nb.edit(26, "[1024, 1, 28, 28]", "[8, 1, 28, 28]")  # SIZES
    nb.edit(27, "steps=100", "steps=10")
    nb.drop(28)
    nb.drop(32)
    nb.edit(30, "steps=100", "steps=10")
    # One device here: the whole count goes to it (the original splits one count per GPU).
    nb.edit(30, "torch.tensor([512, 512])", "torch.tensor([8])")
    nb.append(
        _summary(
            {
                "result_is_data_plus_one": "bool(torch.equal(result, data + 1))",
                "samples": "list(samples.shape)",
                "multi": "list(samples_mGPU.shape)",
            }
        )
    )
    return nb


def save_model_code_example() -> Notebook:
    nb = Notebook("save_model_code_example.ipynb", "notebooks")
    # Fails on the original too: NNHandler.initialize no longer exists (and the cell passes
    # NNHandler.Logging_Modes, train(val=, debug=)); every later cell uses the `model` it would
    # have made, or the file its training would have written.
    nb.expect_error(5, 7, 9, 10, 12, 14, 15)
    return nb


def save_model_code_example_2() -> Notebook:
    nb = Notebook("save_model_code_example_2.ipynb", "notebooks")
    nb.edit(4, LOAD, "import MNIST_model\n\n" + LOAD)  # SAFE LOAD: it never imports it
    # Reads models/test_model_code_5.pth, which the first notebook would have written: the test
    # writes it beforehand with today's API (see _write_model_code_checkpoint). The stored
    # output of cell 7 shows the error the author expected (an older file, not here).
    nb.expect_error(7)
    nb.append(_summary({"train": "len(model.train_losses)", "predicted": "predicted.shape[0]"}))
    return nb


def save_model_code_example_3() -> Notebook:
    nb = Notebook("test/save_model_code_example_3.ipynb", "notebooks/test")
    # Cell 4 is expected to raise by its author (MNIST_model is not importable from test/);
    # cells 6 and 10 call NNHandler.load_model_code and load(load_from_code=True), which the
    # original's NNHandler no longer has; 8 reads a file no run writes; 12 and 13 use `model`.
    nb.expect_error(4, 6, 8, 10, 12, 13)
    return nb


WAVE_1 = [mnist_basic_example, mnist_score, mnist_patch_diffusion, multi_gpu_sampling,
          save_model_code_example]  # fmt: skip
WAVE_2 = [parallelize_on_gpus_decorator, save_model_code_example_2, save_model_code_example_3]


# ------------------------------------------------------------------------------ running
async def _execute(notebooks: list[Notebook], root: Path, env: dict) -> None:
    clients = [
        nbclient.NotebookClient(
            n.nb,
            timeout=600,
            kernel_name="python3",
            allow_errors=True,  # each test checks its notebook's errors: exactly the expected
            resources={"metadata": {"path": root / n.cwd}},
        )
        for n in notebooks
    ]
    await asyncio.gather(*(client.async_execute(env=env) for client in clients))


MODEL_CODE_SCRIPT = """\
import torch
from torch import nn, optim
import torchvision_standin.datasets as datasets
import torchvision_standin.transforms as transforms
from MNIST_model import Net
from nn_handler import NNHandler

tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
model = NNHandler(Net, device="cpu", save_model_code=True)
model.set_optimizer(optim.Adamax, lr=0.01)
model.set_loss_fn(nn.functional.nll_loss)
model.set_train_loader(datasets.MNIST("./data", transform=tf), batch_size=1024, shuffle=True)
model.set_val_loader(datasets.MNIST("./data", train=False, transform=tf), batch_size=1000)
model.train(5, progress_bar=False)
model.save("models/test_model_code_5.pth")
"""


def _write_model_code_checkpoint(folder: Path, env: dict) -> None:
    """What save_model_code_example.ipynb meant to write (5 epochs of MNIST_model.Net, its code
    saved), made with today's API since that notebook cannot run on the original either."""
    subprocess.run(
        [sys.executable, "-c", MODEL_CODE_SCRIPT], cwd=folder, env=env, check=True, timeout=600
    )


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    root = tmp_path_factory.mktemp("original_repo")
    (root / "notebooks" / "test").mkdir(parents=True)
    shutil.copy(ORIGINAL / "MNIST_model.py", root / "notebooks" / "MNIST_model.py")
    env = clean_env()
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(STANDINS))  # DATA
    env.pop("MPLBACKEND", None)  # the kernel's own (inline) backend
    first = [make() for make in WAVE_1]
    asyncio.run(_execute(first, root, env))
    _write_model_code_checkpoint(root / "notebooks", env)
    second = [make() for make in WAVE_2]
    asyncio.run(_execute(second, root, env))
    return root, {n.relpath.split("/")[-1].removesuffix(".ipynb"): n for n in first + second}


def test_mnist_basic_example(executed):
    root, nbs = executed
    nb = nbs["mnist_basic_example"]
    assert nb.errors() == [], nb.report()
    result = nb.summary()
    # 5 epochs, validated every epoch; the history came back with the loaded checkpoint.
    assert result["train"] == 5 and result["val"] == 5
    # auto_save(1, ..., "model_epoch_{epoch:02d}.pth", overwrite=True): the last one is kept.
    assert "model_epoch_05.pth" in result["files"] and "training.log" in result["files"]
    assert "model_state_dict" in nb.text(11)
    assert nb.images(14) == 1 and nb.images(15) == 1  # plot_losses, the 20 predictions
    assert result["predicted"] == 20


def test_mnist_score(executed):
    root, nbs = executed
    nb = nbs["mnist_score"]
    assert nb.text(3).strip() == "256"  # the stand-in's training set ([:1000] of 256 images)
    assert nb.errors() == [12], nb.report()
    assert nb.error(12)["ename"] == "FileNotFoundError"
    result = nb.summary()
    assert result == {"train": 10, "samples": [16, 1, 28, 28], "finite": True}
    models = root / "notebooks" / "models"
    assert (models / "MNIST_score_models.pth").is_file()
    assert (models / "MNIST_score_models.log").stat().st_size > 0
    assert nb.images(11) == 1


def test_mnist_patch_diffusion(executed):
    root, nbs = executed
    nb = nbs["mnist_patch_diffusion"]
    assert nb.errors() == [], nb.report()
    assert nb.text(3).split("\n")[:2] == ["tensor(-1.) tensor(1.)", "256"]
    assert nb.text(17).strip() == "tensor(255, dtype=torch.uint8)"
    first = json.loads(nb.text(len(nb.nb.cells) - 3).strip())
    assert first == {
        "train": 10,
        "posterior": [4, 1, 28, 28],
        "finite": True,
        "files": sorted(first["files"]),
    }
    assert "MNIST_patch_score_models.pth" in first["files"]
    # A 16x16 patch with its grid, then whole 28x28 images from the patch model.
    assert nb.summary() == {"patch": [4, 1, 16, 16], "full": [4, 1, 28, 28]}
    assert [nb.images(i) for i in (13, 15, 16, 18, 19)] == [1, 1, 1, 1, 2]


def test_multi_gpu_sampling(executed):
    _, nbs = executed
    nb = nbs["multi_gpu_sampling"]
    assert nb.errors() == [], nb.report()
    assert nb.text(1).strip() == "0"  # no GPU: one call, on the CPU
    assert "Running on device: -1" in nb.text(6)
    # sample_gpu as cell 7 redefined it: 2000 values per device.
    assert nb.summary() == {"per_device": [2000], "heavy": [[64, 64]]}


def test_parallelize_on_gpus_decorator(executed):
    _, nbs = executed
    nb = nbs["parallelize_on_gpus_decorator"]
    assert nb.errors() == [], nb.report()
    assert nb.text(2).strip() == nn_handler.__version__
    # Without GPUs the decorated function runs once on the inputs as they are.
    assert "cpu -> data.shape = torch.Size([2, 1])" in nb.text(7)
    assert nb.text(21) == ""  # no gather error: results stay where the function put them
    result = nb.summary()
    assert result == {"result_is_data_plus_one": True, "samples": [8, 1, 28, 28],
                      "multi": [8, 1, 28, 28]}  # fmt: skip
    assert nb.images(29) == 1 and nb.images(31) == 1


def test_save_model_code_examples(executed):
    root, nbs = executed
    first = nbs["save_model_code_example"]
    assert first.errors() == [5, 7, 9, 10, 12, 14, 15], first.report()
    assert first.error(5)["ename"] == "AttributeError" and "initialize" in first.error(5)["evalue"]
    assert {first.error(i)["ename"] for i in (7, 10, 14, 15)} == {"NameError"}

    second = nbs["save_model_code_example_2"]
    assert second.errors() == [7], second.report()
    assert "class Net(nn.Module)" in second.text(5)  # the model's code, kept in the file
    assert second.summary() == {"train": 5, "predicted": 20}
    assert second.images(9) == 1 and second.images(10) == 1

    third = nbs["save_model_code_example_3"]
    assert third.errors() == [4, 6, 8, 10, 12, 13], third.report()
    assert "MNIST_model" in third.error(4)["evalue"]
    assert "load_model_code" in third.error(6)["evalue"]
    assert (root / "notebooks" / "models" / "test_model_code_5.pth").is_file()
