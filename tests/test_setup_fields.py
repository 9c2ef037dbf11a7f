"""Every field of the handler's Setup survives every reader: save → load, export_config → CLI
rebuild, and ``to_lightning_module()``; and files written before the Setup existed still load.

A new field without a sample value below fails ``test_every_field_has_a_sample``; a field that one
reader forgets fails the walk for that reader.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
import yaml
from models import TinyNet
from models import accuracy as tiny_accuracy
from nn_handler.adapters.cli import HandlerCLIModule, NNHandlerCLI, setup_from_arguments
from safety_parts import PlainSampler, StatefulCallback

from nn_handler import VESDE, EarlyStopping, NNHandler
from nn_handler._state.setup import Setup

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "setup_v1"
sys.path.insert(0, str(ROOT / "examples" / "cli"))

from blobs import GaussianBlobs  # noqa: E402
from mlp import MLP, accuracy  # noqa: E402


@pytest.fixture(autouse=True)
def _no_lightning_seed_env(monkeypatch):
    for key in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(key, raising=False)


def base() -> NNHandler:
    """A handler whose every part can be written by import path (importable classes)."""
    h = NNHandler(MLP, hidden=8)
    h.set_optimizer(torch.optim.Adam, lr=0.01)
    h.set_loss_fn(torch.nn.functional.cross_entropy)
    h.set_train_loader(GaussianBlobs(n_samples=32), batch_size=16)
    return h


# One non-default value per Setup field, set through the public API only.
SAMPLES = {
    "model": lambda h: h.set_model(MLP, hidden=12, dropout=0.25),
    "model_type": lambda h: h.set_model(MLP, model_type="regression", hidden=8),
    "save_model_code": lambda h: h.set_model(MLP, save_model_code=True, hidden=8),
    "model_code": lambda h: h.set_model(MLP, save_model_code=True, hidden=8),
    "optimizer": lambda h: h.set_optimizer(torch.optim.SGD, lr=0.05, momentum=0.8),
    "scheduler": lambda h: h.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=3),
    "loss": lambda h: h.set_loss_fn(torch.nn.CrossEntropyLoss(label_smoothing=0.2)),
    "metrics": lambda h: h.add_metric("accuracy", accuracy),
    "callbacks": lambda h: h.add_callback(EarlyStopping(monitor="loss", patience=7)),
    "auto_save": lambda h: h.auto_save(
        3,
        save_path="ck",
        name="m_{epoch}",
        overwrite=True,
        every_n_train_steps=7,
        step_name="s{step}",
    ),
    "sde": lambda h: h.set_sde(VESDE, sigma_min=0.05, sigma_max=9.0),
    "sampler": lambda h: h.set_sampler(PlainSampler, width=5),
    "seed": lambda h: setattr(h, "seed", 11),
    "training": lambda h: h.train(
        1,
        progress_bar=False,
        gradient_accumulation_steps=2,
        gradient_clipping_norm=0.5,
        ema_decay=0.3,
        save_on_last_epoch=False,
        debug_print_interval=4,
        epoch_train_and_val_pbar=True,
        steps_per_execution=4,
    ),
    "ddp_kwargs": lambda h: h.set_model(MLP, ddp_kwargs={"find_unused_parameters": True}),
    "train_data": lambda h: h.set_train_loader(
        GaussianBlobs(n_samples=24, seed=3), batch_size=8, shuffle=True
    ),
    "val_data": lambda h: h.set_val_loader(
        GaussianBlobs(n_samples=16, split="val"), dataloader_type="rank_cached", batch_size=4
    ),
    "eval_modules": lambda h: h.keep_eval_on_module(h.module.net[0]),
    "compile_kwargs": lambda h: h.compile_model(dynamic=False),
    "device": lambda h: None,  # "cpu" is the only device here; the reader still must say so
}


def test_every_field_has_a_sample():
    assert set(SAMPLES) == set(Setup.field_names())


def test_every_field_says_how_each_reader_treats_it():
    for name in Setup.field_names():
        codec = Setup.codec(name)
        for reason in (codec.not_in_checkpoint, codec.not_in_config):
            assert reason is None or (isinstance(reason, str) and len(reason) > 10), name


def test_cli_module_takes_every_model_entry_a_config_can_hold():
    """The CLI rebuild reads the same keys the config writer writes (no forgotten parameter)."""
    h = base()
    for sample in SAMPLES.values():
        if sample is not SAMPLES["compile_kwargs"] and sample is not SAMPLES["training"]:
            sample(h)
    from nn_handler._codecs.config_values import Report

    keys = {k.split(".", 1)[1] for k in h.setup.to_config(Report()) if k.startswith("model.")}
    params = set(HandlerCLIModule.__init__.__code__.co_varnames) - {"self"}
    assert keys <= params, keys - params


@pytest.mark.parametrize("name", Setup.field_names())
def test_field_survives_save_and_load(name, tmp_path):
    h = base()
    SAMPLES[name](h)
    codec = Setup.codec(name)
    h.save(str(tmp_path / "h.pth"))
    loaded = NNHandler.load(str(tmp_path / "h.pth"))
    if codec.not_in_checkpoint:
        return  # said why above (datasets, live submodules, a compiled model)
    assert loaded.setup.same_field(h.setup, name), (
        getattr(loaded.setup, name),
        getattr(h.setup, name),
    )


def _rebuilt_from_config(h: NNHandler, path: Path) -> Setup:
    h.export_config(str(path), epochs=2, strict=False)
    cli = NNHandlerCLI(args=["--config", str(path)], run=False)
    setup = setup_from_arguments(cli.model.arguments, cli.trainer)
    data = cli.datamodule
    args = {
        "data.train_dataset": data.train_dataset,
        "data.train_loader": data.train_loader_kwargs,
        "data.val_dataset": data.val_dataset,
        "data.val_loader": data.val_loader_kwargs,
        "data.train_dataloader_type": data.dataloader_types["train"],
        "data.val_dataloader_type": data.dataloader_types["val"],
    }
    values = {n: Setup.codec(n).from_config(args) for n in ("train_data", "val_data")}
    return setup.replace(**{k: v for k, v in values.items() if v is not None})


@pytest.mark.parametrize("name", Setup.field_names())
def test_field_survives_export_config_and_the_cli_rebuild(name, tmp_path):
    h = base()
    SAMPLES[name](h)
    if Setup.codec(name).not_in_config:
        return
    rebuilt = _rebuilt_from_config(h, tmp_path / "run.yaml")
    assert rebuilt.same_field(h.setup, name), (getattr(rebuilt, name), getattr(h.setup, name))


@pytest.mark.parametrize("name", Setup.field_names())
def test_field_reaches_the_exported_lightning_module(name):
    h = base()
    SAMPLES[name](h)
    module = h.to_lightning_module()
    assert module.handler.setup is h.setup  # the module reads the one setup, not a copy
    assert module.run_state is h.run_state


def test_config_written_for_every_field_is_plain_yaml(tmp_path):
    h = base()
    for name, sample in SAMPLES.items():
        if name not in ("compile_kwargs", "eval_modules"):
            sample(h)
    h.export_config(str(tmp_path / "run.yaml"), epochs=2)
    config = yaml.safe_load((tmp_path / "run.yaml").read_text())
    assert config["model"]["sampler"]["init_args"] == {"width": 5}
    assert config["model"]["ddp_kwargs"] == {"find_unused_parameters": True}
    assert config["trainer"]["accumulate_grad_batches"] == 2


# ---------------------------------------------------------- compatibility
def test_a_checkpoint_written_before_the_setup_redesign_loads():
    expected = json.loads((FIXTURE / "expected.json").read_text())
    h = NNHandler.load(str(FIXTURE / "handler_v1.pth"))
    assert type(h.module) is TinyNet and h.model_kwargs == {"hidden": 12}
    assert h.train_losses == expected["train_losses"]
    assert h.val_losses == expected["val_losses"]
    assert h.train_metrics_history == expected["train_metrics_history"]
    assert h.optimizer.param_groups[0]["lr"] == pytest.approx(expected["lr"])
    total = float(sum(p.double().sum() for p in h.module.parameters()))
    assert math.isclose(total, expected["weight_sum"], rel_tol=1e-9)
    ema = float(sum(p.double().sum() for p in h.ema.module.parameters()))
    assert math.isclose(ema, expected["ema_weight_sum"], rel_tol=1e-9)
    assert h.metrics == {"accuracy": tiny_accuracy}
    assert [type(c).__name__ for c in h.callbacks] == ["EarlyStopping"]
    assert h.callbacks[0].patience == 4
    assert h.loss_fn_kwargs == {"label_smoothing": 0.1}
    assert h.setup.scheduler.kwargs == {"step_size": 1, "gamma": 0.5}
    assert h.run_state.global_step == 8


def test_a_callback_state_and_sampler_link_survive(tmp_path):
    h = base()
    h.add_callback(StatefulCallback("z"))
    h.train(2, progress_bar=False)
    h.save(str(tmp_path / "h.pth"))
    loaded = NNHandler.load(str(tmp_path / "h.pth"))
    assert loaded.callbacks[0].seen == 2 and loaded.callbacks[0].label == "z"
