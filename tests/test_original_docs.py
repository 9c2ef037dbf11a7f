"""The original NNHandler's documentation pages, run against nn_handler (issue 13).

Each test reads its page from the original's documentation (see ``original_docs.py``) and runs the
page's examples as a user would write them, adapted only where SPEC §6 or a contradiction between
the pages says so. Every adaptation is an :class:`~original_docs.Edit` with its reason, applied
to the page's own text (placeholders such as ``YourModel`` become the tiny real classes below);
``docs/migration.md`` lists them. Signature and class blocks are compared with our signatures and
classes. ``COVERED`` says, for every block of every page here, which kind of check reads it.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import re
import socket
import warnings
from pathlib import Path

import pytest
import torch
from original_docs import (
    ClassSpec,
    Edit,
    blocks,
    class_problems,
    documented_signatures,
    needs_docs,
    page_module,
    run_blocks,
    signature_problems,
    skip_unless_modules,
)
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nn_handler
from nn_handler import NNHandler, Sampler
from nn_handler.callbacks import (
    BasePredictionVisualizer,
    Callback,
    CudaGarbageCollector,
    EarlyStopping,
    ImagePredictionVisualizer,
    ModelCheckpoint,
    ProgressMonitor,
    SimpleGarbageCollector,
)
from nn_handler.enums import LoggingMode, ModelType
from nn_handler.generative import handler_ops
from nn_handler.utils import dummy_classes

pytestmark = needs_docs


# ---------------------------------------------------------------- stand-ins for placeholders
class DocsNet(nn.Module):
    """``YourModel``/``MyModel`` of the pages: 8 features, 3 classes (or ``out`` outputs)."""

    def __init__(self, in_features: int = 8, out: int = 3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, 16), nn.ReLU(), nn.Linear(16, out))

    def forward(self, x):
        return self.net(x)


class DocsImageNet(nn.Module):
    """An image-to-image model for the visualisation page (3-channel images in and out)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))


class DocsScoreNet(nn.Module):
    """``YourScoreNetwork``: ``model(t, x)`` returning ``sigma(t) * score`` (our convention)."""

    def __init__(self, dim: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim + 1, 32), nn.Tanh(), nn.Linear(32, dim))

    def forward(self, t, x):
        return self.net(torch.cat([x, t[:, None]], dim=1))


class DocsSampler(Sampler):
    """``YourCustomSampler(param1=value1, param2=value2)``: a constant ``value``."""

    def __init__(self, value: float = 1.0, width: int = 2):
        self.value, self.width = value, width

    def sample(self, N, device, **kwargs):
        return torch.full((N, self.width), self.value, device=device)

    def save(self):
        return {"value": self.value}

    def load(self, state_dict):
        self.value = state_dict["value"]


def docs_data(n: int = 48, features: int = 8, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long())


def accuracy(outputs, targets):
    return (outputs.argmax(1) == targets).float().mean()


def configured_handler(**kwargs) -> NNHandler:
    """A handler ready to train with validation and an ``accuracy`` metric (the pages' `...`)."""
    torch.manual_seed(0)
    handler = NNHandler(DocsNet, **kwargs)
    configure(handler)
    return handler


def configure(handler: NNHandler) -> None:
    handler.set_optimizer(torch.optim.Adam, lr=1e-2)
    handler.set_loss_fn(nn.functional.cross_entropy)
    handler.set_train_loader(docs_data(48), batch_size=16, shuffle=True)
    handler.set_val_loader(docs_data(24, seed=1), batch_size=12)
    handler.add_metric("accuracy", accuracy)


def namespace(monkeypatch, name: str, *star_imports: str, **names) -> dict:
    """The page's namespace: ``from <module> import *`` for each of ``star_imports`` (the
    imports a usage snippet takes for granted from its page), then ``names``."""
    module = page_module(monkeypatch, name)
    for source in star_imports:
        imported = importlib.import_module(source)
        module.__dict__.update({n: getattr(imported, n) for n in imported.__all__})
    module.__dict__.update(names)
    return module.__dict__


_PROGRESS_LINE = re.compile(r"^E(\d+/\d+) \[[\d.]+s\] Train Loss: ", re.M)


def progress_lines(capsys) -> list[re.Match]:
    """ProgressMonitor's lines in what was printed (progress bars write "Epoch ..." too)."""
    return list(_PROGRESS_LINE.finditer(capsys.readouterr().out))


SIGNATURE_NS = {"NNHandler": NNHandler, "logging": logging, "torch": torch}

# For every page of this module: which check reads each block ("run", "signature", "class"),
# or why none does.
COVERED: dict[str, dict[int, str]] = {}


def covers(page: str, **kinds: str):
    """Record which check reads which block (``b3="run"``) of ``page``."""
    COVERED.setdefault(page, {}).update({int(k[1:]): v for k, v in kinds.items()})


# =============================================================================== nn_handler.md
NN_HANDLER = "nn_handler/nn_handler.md"
covers(NN_HANDLER, b0="class", b1="class", b2="run", **{f"b{i}": "signature" for i in range(3, 22)})

# Methods that forward **kwargs to their implementation: compare with the implementation.
FORWARDED = {
    # SPEC 3.10 (and the original's code) put corrector_steps third; the page omits it.
    "sample": (handler_ops.sample, False),
    "log_likelihood": (handler_ops.log_likelihood, True),
}


def test_nn_handler_page_signatures_are_ours():
    problems = []
    for i in range(3, 22):
        for name, params in documented_signatures(blocks(NN_HANDLER)[i]).items():
            ours, ordered = FORWARDED.get(name, (getattr(NNHandler, name), True))
            problems += signature_problems(name, params, ours, SIGNATURE_NS, ordered)
    assert problems == []


def test_nn_handler_page_constructor_and_enums():
    specs = {
        "NNHandler": ClassSpec(NNHandler),
        "ModelType": ClassSpec(ModelType),
        "LoggingMode": ClassSpec(LoggingMode),
    }
    for i in (0, 1):
        problems, checked = class_problems(blocks(NN_HANDLER)[i], specs, SIGNATURE_NS)
        assert problems == [] and checked
    assert NNHandler.ModelType is ModelType and NNHandler.LoggingMode is LoggingMode
    assert NNHandler.ModelType.from_string("Score_Based") is ModelType.SCORE_BASED


class _BatchNormNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(8)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.bn(x))


def test_nn_handler_page_seed_and_keep_eval_on_module(monkeypatch):
    ns = namespace(monkeypatch, "nn_handler", handler=configured_handler())
    run_blocks(ns, NN_HANDLER, [2], {})
    assert ns["handler"].seed == 42
    assert torch.initial_seed() == 42  # the setter seeds torch

    # keep_eval_on_module: the module stays in eval mode through eval(activate=False) ...
    handler = NNHandler(_BatchNormNet)
    frozen = handler.module.bn
    handler.keep_eval_on_module(frozen)
    handler.eval(activate=False, log=False)
    assert handler.module.training and handler.module.head.training and not frozen.training
    # ... and through training: its running statistics do not change.
    configure(handler)
    stats = frozen.running_mean.clone()
    handler.train(1, progress_bar=False)
    assert torch.equal(frozen.running_mean, stats) and not frozen.training
    assert handler.module.training and handler.module.head.training
    # activate=False unregisters it and puts it back in train mode.
    handler.keep_eval_on_module(frozen, activate=False)
    assert frozen.training
    handler.eval(log=False)
    handler.eval(activate=False, log=False)
    assert frozen.training
    handler.train(1, progress_bar=False)
    assert not torch.equal(frozen.running_mean, stats)


# ========================================================================== getting_started.md
GETTING_STARTED = "getting_started.md"
covers(GETTING_STARTED, b0="run", b1="run", b2="run", b3="run")


def test_getting_started_runs_as_written(monkeypatch, capsys):
    ns = namespace(monkeypatch, "getting_started")
    with pytest.warns(UserWarning, match="use_amp"):  # AMP needs CUDA: one warning, full precision
        run_blocks(ns, GETTING_STARTED, [0], {})
    handler = ns["handler"]
    assert len(handler.train_losses) == 5 and all(math.isfinite(v) for v in handler.train_losses)
    # save() created the models/ folder.
    assert Path("models/my_model_handler_state.pth").is_file()

    run_blocks(ns, GETTING_STARTED, [1], {})
    loaded = ns["loaded_handler"]
    assert loaded.train_losses == handler.train_losses
    want = handler.module(ns["test_data"]).argmax(1)
    assert ns["predicted_classes"].tolist() == want.tolist()

    run_blocks(ns, GETTING_STARTED, [2], {})
    epochs = len(handler.train_losses) - 5
    assert 1 <= epochs <= 20
    early = next(cb for cb in handler.callbacks if isinstance(cb, EarlyStopping))
    assert epochs == 20 or early.stopped_epoch == len(handler.train_losses)
    assert len(handler.val_losses) == epochs  # validation only since the loader was set
    best = handler.val_losses.index(min(handler.val_losses))
    # The best-only checkpoint name carries the epoch and the val_loss of its epoch.
    name = f"checkpoint_epoch{5 + best + 1:02d}_val_loss{handler.val_losses[best]:.2f}.pth"
    assert (Path("models") / name).is_file()
    assert len(progress_lines(capsys)) == epochs  # ProgressMonitor: one line per epoch

    before = len(handler.train_losses)
    run_blocks(ns, GETTING_STARTED, [3], {})
    # The metric is recorded from the epochs it was added for (early stopping may end them).
    history = handler.train_metrics_history["accuracy"]
    assert 1 <= len(history) == len(handler.train_losses) - before <= 5
    assert all(0.0 <= v <= 100.0 for v in history)  # the page's metric is a percentage
    # plot_metrics created plots/ and wrote {prefix}_metric_{name}.png.
    assert Path("plots/my_model_metrics_metric_accuracy.png").read_bytes()[:4] == b"\x89PNG"


# ================================================================================ autosaver.md
AUTOSAVER = "nn_handler/autosaver.md"
covers(AUTOSAVER, b0="signature", b1="run", b2="run")
AUTOSAVER_EDITS = {
    2: [
        Edit(
            "my_model_autosave_ep050.pth",
            "my_model_autosave_ep010.pth",
            "the page's 'Example path' of a 100-epoch run; the test trains 10 epochs",
        )
    ]
}


def test_autosaver_page(monkeypatch):
    (params,) = documented_signatures(blocks(AUTOSAVER)[0]).values()
    assert signature_problems("auto_save", params, NNHandler.auto_save, SIGNATURE_NS) == []
    ns = namespace(monkeypatch, "autosaver")
    run_blocks(ns, AUTOSAVER, [1], AUTOSAVER_EDITS)
    handler = ns["handler"]
    assert (handler.save_interval, handler.save_path) == (10, "checkpoints")
    assert handler.save_model_name == "my_model_autosave_ep{epoch:03d}"
    handler.train(epochs=10, progress_bar=False)  # the page's commented-out call, shortened
    assert sorted(os.listdir("checkpoints")) == ["my_model_autosave_ep010.pth"]

    run_blocks(ns, AUTOSAVER, [2], AUTOSAVER_EDITS)
    loaded = ns["loaded_handler"]
    assert loaded.train_losses == handler.train_losses and loaded.save_interval == 10
    loaded.set_train_loader(ns["dummy_ds"], batch_size=16)  # datasets are not in checkpoints
    loaded.train(epochs=10, progress_bar=False)
    assert len(loaded.train_losses) == 20
    assert "my_model_autosave_ep020.pth" in os.listdir("checkpoints")


# ========================================================================== callbacks/README.md
CALLBACKS_README = "nn_handler/callbacks/README.md"
covers(CALLBACKS_README, b0="class", b1="run")
CALLBACK_SPECS = {
    "Callback": ClassSpec(Callback, make=Callback),
    "ModelCheckpoint": ClassSpec(ModelCheckpoint, make=ModelCheckpoint),
    "EarlyStopping": ClassSpec(EarlyStopping, make=EarlyStopping),
    "ProgressMonitor": ClassSpec(ProgressMonitor, make=ProgressMonitor),
    "SimpleGarbageCollector": ClassSpec(SimpleGarbageCollector, make=SimpleGarbageCollector),
    "CudaGarbageCollector": ClassSpec(CudaGarbageCollector, make=CudaGarbageCollector),
}
PLACEHOLDER_HANDLER = Edit(
    "handler = NNHandler(...)",
    "handler = NNHandler(DocsNet)",
    "placeholder: `NNHandler(...)` becomes a tiny real model",
)


def test_callbacks_readme(monkeypatch):
    problems, checked = class_problems(blocks(CALLBACKS_README)[0], CALLBACK_SPECS, SIGNATURE_NS)
    assert problems == [] and checked == ["Callback"]
    ns = namespace(monkeypatch, "callbacks_readme", DocsNet=DocsNet, configure=configure)
    edits = {
        1: [
            PLACEHOLDER_HANDLER,
            Edit("# ... configure handler ...", "configure(handler)", "placeholder comment"),
            Edit("handler.train(...)", "handler.train(2)", "placeholder arguments"),
        ]
    }
    run_blocks(ns, CALLBACKS_README, [1], edits)
    # The checkpoint folder was created; the file is the full handler at its best epoch.
    losses = ns["handler"].val_losses
    best = losses.index(min(losses))
    assert NNHandler.load("models/best.pth").val_losses == losses[: best + 1]


# ============================================================================ callbacks/base.md
covers("nn_handler/callbacks/base.md", b0="class")


def test_callbacks_base_page():
    problems, checked = class_problems(
        blocks("nn_handler/callbacks/base.md")[0], CALLBACK_SPECS, SIGNATURE_NS
    )
    assert problems == [] and checked == ["Callback"]


# ========================================================================= callbacks/monitor.md
MONITOR = "nn_handler/callbacks/monitor.md"
covers(MONITOR, b0="class", b1="run", b2="class", b3="run")


def test_callbacks_monitor_page_classes():
    problems, checked = class_problems(blocks(MONITOR)[0], CALLBACK_SPECS, SIGNATURE_NS)
    assert problems == [] and checked == ["ProgressMonitor"]
    # The page's EarlyStopping is a sketch whose argument order differs from training.md's
    # "actual implementation" (baseline before restore_best_weights); training.md's order wins.
    specs = {"EarlyStopping": ClassSpec(EarlyStopping, make=EarlyStopping, check_order=False)}
    problems, checked = class_problems(blocks(MONITOR)[2], specs, SIGNATURE_NS)
    assert problems == [] and checked == ["EarlyStopping"]


def test_callbacks_monitor_page_usage(monkeypatch, capsys):
    ns = namespace(
        monkeypatch, "monitor", "nn_handler.callbacks.monitor", handler=configured_handler()
    )
    run_blocks(ns, MONITOR, [1, 3], {})
    handler = ns["handler"]
    handler.train(3, progress_bar=False)
    assert [m.group(1) for m in progress_lines(capsys)] == ["1/3", "2/3", "3/3"]
    progress, stopper = handler.callbacks
    assert progress.epoch_start_time is not None
    assert stopper.best == pytest.approx(min(handler.val_losses))
    assert stopper.best_score == stopper.best and stopper.wait_count == stopper.wait
    assert stopper.restore_best_weights and stopper.best_weights is not None


def test_early_stopping_baseline_counts_against_patience():
    handler = configured_handler()
    stopper = EarlyStopping(monitor="val_loss", patience=2, baseline=-1.0)  # never beaten
    handler.add_callback(stopper)
    handler.train(10, progress_bar=False)
    assert len(handler.train_losses) == 2 and stopper.stopped_epoch == 2
    assert stopper.best == -1.0 and stopper.baseline == -1.0


# ========================================================================== callbacks/saving.md
SAVING = "nn_handler/callbacks/saving.md"
covers(SAVING, b0="class", b1="run", b2="run")


def test_callbacks_saving_page(monkeypatch):
    problems, checked = class_problems(blocks(SAVING)[0], CALLBACK_SPECS, SIGNATURE_NS)
    assert problems == [] and checked == ["ModelCheckpoint"]
    ns = namespace(
        monkeypatch, "saving", "nn_handler.callbacks.saving", handler=configured_handler()
    )
    run_blocks(ns, SAVING, [1, 2], {})
    handler = ns["handler"]
    handler.add_callback(ModelCheckpoint(filepath=ns["filepath"], save_best_only=False))
    handler.train(2, progress_bar=False)
    files = sorted(os.listdir("checkpoints"))
    assert files[:2] == ["best_accuracy_weights.pth", "best_val_loss_model.pth"]
    assert files[2:] == ["epoch_001.pth", "epoch_002.pth"]
    weights = torch.load("checkpoints/best_accuracy_weights.pth", weights_only=True)
    assert set(weights) == set(handler.module.state_dict())  # weights only
    assert NNHandler.load("checkpoints/epoch_002.pth").train_losses == handler.train_losses
    expected = f"epoch002_valloss{handler.val_losses[1]:.4f}.pth"
    assert expected in os.listdir("models")


def test_model_checkpoint_public_attributes():
    cb = ModelCheckpoint(filepath="ck/best", monitor="val_accuracy", mode="max")
    assert cb.monitor_op is torch.gt and cb.best == -math.inf and cb.best.item() == -math.inf
    cb.mode = "min"  # the setter starts over, as the page's does
    assert cb.mode == "min" and cb.monitor_op is torch.lt and cb.best == math.inf
    cb.best = torch.tensor(0.25)
    assert cb.best == 0.25 and cb.state_dict()["best"] == 0.25
    cb.monitor = "val_loss"
    assert cb.state_dict()["monitor"] == "val_loss"
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        cb.mode = "largest"


# ======================================================================== callbacks/training.md
TRAINING = "nn_handler/callbacks/training.md"
covers(TRAINING, b0="class", b1="run")


def test_callbacks_training_page(monkeypatch):
    problems, checked = class_problems(blocks(TRAINING)[0], CALLBACK_SPECS, SIGNATURE_NS)
    assert problems == [] and checked == ["EarlyStopping"]
    ns = namespace(
        monkeypatch, "training", "nn_handler.callbacks.training", handler=configured_handler()
    )
    run_blocks(ns, TRAINING, [1], {})
    handler = ns["handler"]
    handler.train(3, progress_bar=False)
    on_loss, on_accuracy, with_delta = handler.callbacks
    assert on_loss.best == pytest.approx(min(handler.val_losses))
    assert on_accuracy.mode == "max" and on_accuracy.monitor_op is torch.gt
    assert on_accuracy.best == pytest.approx(max(handler.val_metrics_history["accuracy"]))
    assert with_delta.min_delta == 0.001 and with_delta.patience == 5


# =========================================================================== callbacks/utils.md
GC_PAGE = "nn_handler/callbacks/utils.md"
covers(GC_PAGE, b0="class", b1="class", b2="run")


def test_callbacks_utils_page(monkeypatch, capsys):
    for i in (0, 1):
        problems, checked = class_problems(blocks(GC_PAGE)[i], CALLBACK_SPECS, SIGNATURE_NS)
        assert problems == [] and len(checked) == 1
    ns = namespace(monkeypatch, "gc", "nn_handler.callbacks.utils", handler=configured_handler())
    run_blocks(ns, GC_PAGE, [2], {})
    handler = ns["handler"]
    handler.train(5, progress_bar=False)
    simple, cuda = handler.callbacks
    assert simple.collections == 1  # every 5 epochs
    out = capsys.readouterr().out
    assert "Epoch 5: gc collected" in out and "Epoch 4: gc" not in out
    # Without CUDA the CUDA collector does nothing (it would collect every epoch).
    assert cuda.collections == (5 if torch.cuda.is_available() else 0)


# ==================================================================== callbacks/visualisation.md
VISUALISATION = "nn_handler/callbacks/visualisation.md"
covers(VISUALISATION, b0="class", b1="class", b2="run", b3="run")


class _Viz(BasePredictionVisualizer):
    def _visualize_batch(self, inputs, targets, predictions, epoch):
        pass


def test_callbacks_visualisation_page_classes():
    specs = {
        "BasePredictionVisualizer": ClassSpec(
            BasePredictionVisualizer,
            make=lambda: _Viz(use_fixed_batch=True, fixed_batch=torch.zeros(2, 3)),
        ),
        # Its page defines __init__(*args, **kwargs) passing everything to the base class; ours
        # spells out the same parameters (checked through the base class above).
        "ImagePredictionVisualizer": ClassSpec(
            ImagePredictionVisualizer, skip_methods=frozenset({"__init__"})
        ),
    }
    problems, checked = class_problems(blocks(VISUALISATION)[0], specs, SIGNATURE_NS)
    assert problems == [] and checked == ["BasePredictionVisualizer"]
    problems, checked = class_problems(blocks(VISUALISATION)[1], specs, SIGNATURE_NS)
    assert problems == [] and checked == ["ImagePredictionVisualizer"]


def test_callbacks_visualisation_page_usage(monkeypatch):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    torch.manual_seed(0)
    images = torch.rand(8, 3, 64, 64)
    handler = NNHandler(DocsImageNet, model_type="regression")
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(nn.functional.mse_loss)
    handler.set_train_loader(TensorDataset(images, images), batch_size=8)
    val_loader = DataLoader(TensorDataset(images, images), batch_size=8)
    # Blocks 2 and 3 use the names block 0 imports (os, torch, plt, the visualizers).
    ns = namespace(
        monkeypatch,
        "visualisation",
        "nn_handler.callbacks.visualisation",
        handler=handler,
        val_loader=val_loader,
        os=os,
        torch=torch,
        plt=plt,
    )
    run_blocks(ns, VISUALISATION, [2, 3], {})
    # The page's CustomVisualizer writes into save_dir without creating it: the base class
    # creates save_dir (and its parents) before calling it.
    custom = ns["CustomVisualizer"](
        use_fixed_batch=True, fixed_batch=images[:2], log_freq_epoch=5, save_dir="viz/custom/a"
    )
    handler.add_callback(custom)
    handler.train(10, progress_bar=False)
    assert os.listdir("visualizations") == ["epoch_0010_predictions.png"]
    assert sorted(os.listdir("fixed_batch_viz")) == [
        "epoch_0005_predictions.png",
        "epoch_0010_predictions.png",
    ]
    assert sorted(os.listdir("viz/custom/a")) == [
        "custom_viz_epoch_10.png",
        "custom_viz_epoch_5.png",
    ]


def test_visualizers_default_save_dir_is_created_with_parents():
    handler = configured_handler()
    viz = ImagePredictionVisualizer(
        log_freq_epoch=1, num_samples=2, use_fixed_batch=True, fixed_batch=torch.rand(2, 1, 4, 4)
    )
    assert viz.save_dir == "./viz_predictions" and not Path("viz_predictions").exists()
    deep = ImagePredictionVisualizer(
        log_freq_epoch=1,
        num_samples=2,
        save_dir="a/b/c",
        use_fixed_batch=True,
        fixed_batch=torch.rand(2, 8),
    )
    handler.add_callback(deep)
    handler.train(1, progress_bar=False)
    assert os.listdir("a/b/c") == ["epoch_0001_predictions.png"]
    del viz


# ================================================================================== sampler.md
SAMPLER_PAGE = "nn_handler/sampler.md"
covers(SAMPLER_PAGE, b0="class", b1="signature", b2="signature", b3="run")


def test_sampler_page(monkeypatch, capsys):
    problems, checked = class_problems(
        blocks(SAMPLER_PAGE)[0], {"Sampler": ClassSpec(Sampler)}, SIGNATURE_NS
    )
    assert problems == [] and checked == ["Sampler"]
    assert Sampler.__abstractmethods__ == {"sample", "save", "load"}
    for i in (1, 2):
        for name, params in documented_signatures(blocks(SAMPLER_PAGE)[i]).items():
            assert signature_problems(name, params, getattr(NNHandler, name), SIGNATURE_NS) == []

    ns = namespace(monkeypatch, "sampler")
    run_blocks(ns, SAMPLER_PAGE, [3], {})
    samples, handler = ns["generated_samples"], ns["handler"]
    assert samples.shape == (16, 1, 28, 28) and handler.sampler.internal_state == 16
    assert handler.sampler.model is handler.module and handler.sampler.temperature == 0.7
    assert "Generated 16 samples." in capsys.readouterr().out
    # Its state goes through save/load: the page's load() prints what it restored.
    handler.save("vae.pth")
    loaded = NNHandler.load("vae.pth")
    assert "Loaded sampler state: temp=0.7, internal=16" in capsys.readouterr().out
    assert loaded.get_samples(2).shape == (2, 1, 28, 28)


# ======================================================================== model_utils/*.md
MODEL_UTILS = "nn_handler/model_utils/README.md"
MU_SAMPLER = "nn_handler/model_utils/sampler.md"
SCORE_MODELS = "nn_handler/model_utils/score_models/README.md"
covers(MODEL_UTILS, b0="run", b1="run")
covers(MU_SAMPLER, b0="class", b1="run", b2="run")
# Blocks 0 and 2 import EulerMaruyamaSolver / SDESolver, which the original's code never had:
# test_module_map checks the ImportError that names handler.sample instead.
covers(SCORE_MODELS, b0="imports", b1="run", b2="imports")

YOUR_SAMPLER = [
    Edit(
        "from your_project.samplers import YourCustomSampler\n",
        "",
        "placeholder module: YourCustomSampler is a tiny real sampler of the test",
    ),
    Edit(
        "YourCustomSampler(param1=value1, param2=value2)",
        "YourCustomSampler(value=2.0, width=3)",
        "placeholder arguments",
    ),
]
SCORE_BASED = [
    Edit(
        "from your_project.models import YourScoreNetwork\n",
        "",
        "placeholder module: YourScoreNetwork is a tiny real score network of the test",
    ),
    Edit(
        "    model_class=YourScoreNetwork,\n",
        "    model_class=YourScoreNetwork,\n    model_type='score_based',\n",
        "contradiction: nn_handler.md trains a score model as ModelType.SCORE_BASED with an SDE",
    ),
    Edit(
        "handler.set_loss_fn(denoising_score_matching_loss)",
        "handler.set_sde(VESDE, sigma_min=0.01, sigma_max=5.0)\n"
        "handler.set_loss_fn(denoising_score_matching_loss)",
        "contradiction: the loss needs the SDE that nn_handler.md sets with set_sde",
    ),
]


def _placeholders(**extra):
    return {
        "torch": torch,
        "YourModel": DocsNet,
        "YourCustomSampler": DocsSampler,
        "YourScoreNetwork": DocsScoreNet,
        "VESDE": nn_handler.VESDE,
        "train_dataset": TensorDataset(torch.randn(32, 2)),
        **extra,
    }


@pytest.mark.parametrize("page", [MODEL_UTILS, MU_SAMPLER])
def test_model_utils_sampler_usage(monkeypatch, page):
    # set_sampler(instance) and handler.sample(N=16) are the forms of these pages (nn_handler.md
    # writes set_sampler(class, **kwargs) and get_samples(N)): both are accepted.
    ns = namespace(monkeypatch, "model_utils", **_placeholders())
    run_blocks(ns, page, [0 if page == MODEL_UTILS else 2], {0: YOUR_SAMPLER, 2: YOUR_SAMPLER})
    assert ns["handler"].sampler is ns["sampler"]
    assert torch.equal(ns["samples"], torch.full((16, 3), 2.0))


def test_model_utils_workflow(monkeypatch):
    ns = namespace(monkeypatch, "model_utils_workflow", **_placeholders())
    run_blocks(ns, MODEL_UTILS, [1], {1: SCORE_BASED})
    handler = ns["handler"]
    assert len(handler.train_losses) == 100 and all(math.isfinite(v) for v in handler.train_losses)
    assert handler.sampler is ns["sampler"] and ns["samples"] is None  # its sample() is a stub
    assert ns["sampler"].load() is ns["sampler"]  # load(**state_dict) returns the sampler


def test_model_utils_sampler_page(monkeypatch):
    assert "def __init__(self, **kwargs)" in blocks(MU_SAMPLER)[0]
    ns = namespace(monkeypatch, "mu_sampler")
    run_blocks(ns, MU_SAMPLER, [1], {})
    cls = ns["GaussianNoiseSampler"]
    sampler = cls(mean=2.0, std=0.0)
    assert torch.equal(sampler.sample(4, "cpu", shape=(2,)), torch.full((4, 2), 2.0))
    assert sampler.load(**{"mean": 1.0, "std": 0.0}) is sampler and sampler.mean == 1.0
    # Through a checkpoint: the saved dict reaches its load(**state_dict).
    handler = NNHandler(DocsNet)
    handler.set_sampler(cls, mean=3.0, std=0.0)
    handler.sampler.mean = 5.0
    handler.save("gauss.pth")
    loaded = NNHandler.load("gauss.pth")
    assert torch.equal(loaded.get_samples(2), torch.full((2, 3, 32, 32), 5.0))


def test_score_models_page_network(monkeypatch):
    ns = namespace(monkeypatch, "score_models", torch=torch, nn=nn)
    run_blocks(ns, SCORE_MODELS, [1], {})
    net = ns["SimpleScoreNetwork"](4, 16)
    x, sigma = torch.randn(5, 4), torch.full((5,), 2.0)
    torch.testing.assert_close(net(x, sigma), net.net(x) / 2.0)


# ================================================================================= utils/*.md
UTILS_README = "nn_handler/utils/README.md"
DDP_INIT = "nn_handler/utils/ddp_init.md"
DDP_HELPERS = "nn_handler/utils/ddp_helpers.md"
DDP_UTILS = "nn_handler/utils/ddp_utils.md"
DUMMY = "nn_handler/utils/dummy_classes.md"
ENUMS = "nn_handler/utils/enums.md"
covers(UTILS_README, b0="run")
covers(DDP_INIT, b0="run", b1="run", b2="run")
covers(DDP_HELPERS, b0="run", b1="run", b2="run")
covers(DDP_UTILS, **{f"b{i}": "run" for i in range(11)})
covers(DUMMY, b0="class", b1="signature", b2="run", b3="class", b4="run")
# Block 5 shows how the original's own code chose between torch.amp and these stand-ins
# (relative imports inside its package): internal, nothing for a user to run.
covers(DUMMY, b5="internal")
# Blocks 4 and 5 are the DataLoaderType part of the page (nn_handler.utils.enums' own tests).
covers(ENUMS, b0="class", b1="run", b2="class", b3="run", b4="elsewhere", b5="elsewhere")
DECORATORS = "nn_handler.utils.ddp_decorators"


def test_utils_readme(monkeypatch):
    skip_unless_modules([DECORATORS])
    ns = namespace(monkeypatch, "utils_readme", torch=torch)
    run_blocks(ns, UTILS_README, [0], {})
    assert (ns["distributed"], ns["rank"], ns["world_size"]) == (False, 0, 1)


class MyModel(DocsNet):
    """``MyModel()`` of the DDP pages."""


def test_ddp_init_page(monkeypatch):
    ns = namespace(monkeypatch, "ddp_init", torch=torch, MyModel=MyModel)
    run_blocks(ns, DDP_INIT, [0], {})
    assert ns["distributed"] is False and ns["rank"] == 0 and ns["world_size"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error" if torch.cuda.is_available() else "ignore")
        run_blocks(ns, DDP_INIT, [1], {})  # block 1 uses the torch its neighbours import
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert ns["device"].type == ns["resolved_device"].type == expected
    run_blocks(ns, DDP_INIT, [2], {})
    assert isinstance(ns["model"], MyModel) and ns["distributed"] is False


def test_resolve_device_falls_back_to_the_cpu_with_a_warning():
    from nn_handler.utils.ddp_init import _resolve_device

    if torch.cuda.is_available():
        pytest.skip("checks the CPU fall-back")
    for spec in ("cuda", "gpu", "cuda:1", torch.device("cuda")):
        with pytest.warns(UserWarning, match="CUDA is not available; using the CPU"):
            assert _resolve_device(spec) == torch.device("cpu")
    assert _resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="Invalid device 'tpu!'"):
        _resolve_device("tpu!")


@pytest.fixture
def one_process_group():
    """A real gloo process group of one process (the DDP pages' examples need one)."""
    import torch.distributed as dist

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


CUDA_RANK_DEVICE = Edit(
    "torch.device(f'cuda:{dist.get_rank()}')",
    "torch.device('cpu')",
    "GPU-only call run on the CPU",
)


def test_ddp_helpers_page(monkeypatch, one_process_group):
    config = {"lr": 0.1}
    ns = namespace(
        monkeypatch,
        "ddp_helpers",
        torch=torch,
        model_loss=torch.tensor(0.342),  # placeholder: a loss computed on this rank
        load_config_from_file=lambda path: dict(config),  # placeholder: the page's loader
    )
    edits = {0: [CUDA_RANK_DEVICE], 1: [CUDA_RANK_DEVICE]}
    run_blocks(ns, DDP_HELPERS, [0, 1, 2], edits)
    assert ns["global_metrics"] == pytest.approx(ns["local_metrics"])
    assert ns["global_loss"] == pytest.approx(0.342)
    assert ns["config"] == config


def test_ddp_utils_page_core(monkeypatch):
    ns = namespace(monkeypatch, "ddp_utils", torch=torch, MyModel=MyModel)
    run_blocks(ns, DDP_UTILS, [0, 1, 8], {})
    assert ns["distributed"] is False and isinstance(ns["model"], MyModel)
    assert ns["_should_use_distributed"](None) is False
    with pytest.warns(RuntimeWarning, match="DDP was requested"):
        assert ns["_should_use_distributed"](True) is False
    assert ns["_should_use_distributed"](False) is False


def test_ddp_utils_page_decorators(monkeypatch):
    skip_unless_modules([DECORATORS])
    model = MyModel()
    ns = namespace(
        monkeypatch,
        "ddp_utils_decorators",
        torch=torch,
        MyModel=MyModel,
        model=model,  # placeholders of the page: a model, data, an optimizer, an epoch
        data=torch.arange(3),
        processed_data=torch.arange(3) * 2,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        epoch=3,
    )
    edits = {
        6: [Edit("to('cuda:0')", "to('cpu')", "GPU-only call run on the CPU")],
        9: [
            Edit(
                "size=2000, iterations=20",
                "size=20, iterations=2",
                "GPU-sized work, run on the CPU",
            )
        ],
    }
    run_blocks(ns, DDP_UTILS, [2, 3, 4, 5, 6, 7, 9, 10], edits)
    assert Path("model.pth").is_file() and Path("checkpoint.pth").is_file()
    assert len(ns["results"]) >= 1


def test_dummy_classes_page(monkeypatch):
    specs = {
        "GradScaler": ClassSpec(dummy_classes.GradScaler, make=dummy_classes.GradScaler),
        "ExponentialMovingAverage": ClassSpec(dummy_classes.ExponentialMovingAverage),
    }
    for i in (0, 3):
        problems, checked = class_problems(blocks(DUMMY)[i], specs, SIGNATURE_NS)
        assert problems == [] and len(checked) == 1
    (params,) = documented_signatures(blocks(DUMMY)[1]).values()
    assert signature_problems("autocast", params, dummy_classes.autocast, SIGNATURE_NS) == []

    model = DocsNet()
    x = torch.randn(4, 8)
    ns = namespace(
        monkeypatch,
        "dummy_classes",
        model=model,  # placeholders: a model, its input and target, a loss
        input=x,
        target=torch.tensor([0, 1, 2, 0]),
        loss_fn=nn.functional.cross_entropy,
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run_blocks(ns, DUMMY, [2, 4], {})
    assert ns["output"].dtype == torch.float32  # no autocast
    torch.testing.assert_close(ns["loss"], nn.functional.cross_entropy(model(x), ns["target"]))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())

    scaler = dummy_classes.GradScaler(enabled=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = nn.functional.cross_entropy(model(x), ns["target"])
    assert scaler.scale(loss) is loss and scaler.is_enabled()
    scaler.scale(loss).backward()
    scaler.step(opt)  # steps the optimizer itself
    scaler.update()
    assert not torch.equal(before["net.0.weight"], model.state_dict()["net.0.weight"])
    assert scaler.state_dict() == {} and ns["ema"].state_dict() == {}
    assert dummy_classes.GradScaler().is_enabled() is False


def test_enums_page(monkeypatch):
    specs = {"ModelType": ClassSpec(ModelType), "LoggingMode": ClassSpec(LoggingMode)}
    for i in (0, 2):
        problems, checked = class_problems(blocks(ENUMS)[i], specs, SIGNATURE_NS)
        assert problems == [] and len(checked) == 1
    skip_unless_modules(["nn_handler.utils.enums"])
    ns = namespace(monkeypatch, "enums")
    run_blocks(ns, ENUMS, [1], {})
    assert ns["model_type"] is ModelType.SCORE_BASED
    skip_unless_modules(["nn_handler.logger"])
    run_blocks(ns, ENUMS, [3], {})
    ns["logger"].info("written")
    for handler in ns["logger"].handlers:
        handler.flush()
    assert "written" in Path("logs/training.log").read_text()


# ============================================================================ block coverage
OWNED_PAGES = sorted(COVERED)


@pytest.mark.parametrize("page", OWNED_PAGES)
def test_every_block_of_the_page_is_checked(page):
    assert sorted(COVERED[page]) == list(range(len(blocks(page))))
