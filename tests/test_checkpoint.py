"""Checkpoint format, safety, errors and every load option (SPEC §3.7)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch
from models import AutoEncoder, DropoutNet, TinyNet, accuracy
from torch import nn

import nn_handler._env.atomic as atomic_mod
from nn_handler import NNHandler, Sampler
from nn_handler.callbacks import Callback
from nn_handler.checkpoint import handler_checkpoint

SPEC_KEYS = {
    "model_state_dict",
    "optimizer_state_dict",
    "scheduler_state_dict",
    "grad_scaler_state_dict",
    "model_class",
    "model_kwargs",
    "model_type",
    "optimizer_class",
    "optimizer_kwargs",
    "scheduler_class",
    "scheduler_kwargs",
    "loss_fn",
    "loss_fn_kwargs",
    "pass_epoch_to_loss",
    "metrics",
    "seed",
    "train_loader_kwargs",
    "val_loader_kwargs",
    "train_losses",
    "val_losses",
    "train_metrics_history",
    "val_metrics_history",
    "auto_saver_state",
    "ema_state_dict",
    "ema_decay",
    "sde_class",
    "sde_kwargs",
    "sampler_class",
    "sampler_kwargs",
    "sampler_state_dict",
    "callback_classes",
    "callback_states",
    "nn_handler_version",
    "pytorch_version",
}
LIGHTNING_KEYS = {
    "state_dict",
    "optimizer_states",
    "lr_schedulers",
    "loops",
    "epoch",
    "global_step",
    "pytorch-lightning_version",
    "callbacks",
}


class Counter(Callback):
    """A stateful native callback (module-level, so it has an import path)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def on_epoch_end(self, epoch, logs=None):
        self.count += 1

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


class NeedsArgs(Callback):
    def __init__(self, tag):
        super().__init__()
        self.tag = tag


class CountingSampler(Sampler):
    def __init__(self, scale: float = 1.0):
        self.scale = scale
        self.calls = 0

    def sample(self, N, device, **kwargs):
        self.calls += 1
        return torch.zeros(N, device=device) + self.scale

    def save(self):
        return {"calls": self.calls}

    def load(self, state):
        self.calls = state["calls"]


class Payload:
    """Unpickling this would create a marker file: it proves that a load ran code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _handler(data, model=TinyNet, **kw):
    torch.manual_seed(0)
    h = NNHandler(model, **kw)
    h.set_optimizer(torch.optim.Adam, lr=1e-2)
    h.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    h.set_loss_fn(nn.functional.cross_entropy)
    h.add_metric("accuracy", accuracy)
    h.set_train_loader(data, batch_size=64, shuffle=True)
    h.set_val_loader(data, batch_size=96)
    return h


def _weights_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k].to(sa[k].device)) for k in sa)


@pytest.fixture
def trained(cls_data):
    h = _handler(cls_data)
    h.add_callback(Counter())
    h.train(2, progress_bar=False, seed=0)
    h.save("trained.pth")
    return h


# ----------------------------------------------------------------- format
def test_file_is_weights_only_and_has_every_key(trained):
    ckpt = torch.load("trained.pth", weights_only=True)
    assert SPEC_KEYS <= set(ckpt) and LIGHTNING_KEYS <= set(ckpt)
    assert ckpt["model_class"] == "models:TinyNet"
    assert ckpt["optimizer_class"] == "torch.optim.adam:Adam"
    assert ckpt["scheduler_class"] == "torch.optim.lr_scheduler:StepLR"
    assert ckpt["loss_fn"] == {"__nn_handler__": "ref", "path": "torch.nn.functional:cross_entropy"}
    assert ckpt["metrics"]["accuracy"]["path"] == "models:accuracy"
    assert ckpt["model_type"] == "classification"
    assert ckpt["train_losses"] == trained.train_losses and len(ckpt["train_losses"]) == 2
    assert ckpt["callback_classes"] == {"Counter": "test_checkpoint:Counter"}
    assert ckpt["callback_states"] == {"Counter": {"count": 2}}
    assert ckpt["train_loader_kwargs"] == {"batch_size": 64, "shuffle": True}
    assert set(ckpt["rng_states"]) >= {"python", "numpy", "torch"}
    # Lightning's view: the same tensors under the module's prefix, counters after 2 epochs.
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == trained.run_state.global_step == 6
    assert set(ckpt["state_dict"]) == {"model." + k for k in ckpt["model_state_dict"]}
    assert ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["completed"] == 2
    assert (
        ckpt["optimizer_states"][0]["state"].keys() == ckpt["optimizer_state_dict"]["state"].keys()
    )
    assert ckpt["lr_schedulers"][0]["last_epoch"] == 2


def test_handler_checkpoint_has_only_handler_keys(trained):
    keys = set(handler_checkpoint(trained.setup, trained.run_state, trained.runtime))
    assert SPEC_KEYS <= keys
    assert not keys & {"state_dict", "loops", "optimizer_states", "epoch", "global_step"}


def test_round_trip_restores_everything(trained, cls_data):
    h = NNHandler.load("trained.pth")
    assert _weights_equal(h.module, trained.module)
    assert h.train_losses == trained.train_losses and h.val_losses == trained.val_losses
    assert h.val_metrics_history == trained.val_metrics_history
    assert (
        h.optimizer.state_dict()["state"][0]["step"]
        == trained.optimizer.state_dict()["state"][0]["step"]
    )
    assert h.optimizer.param_groups[0]["lr"] == trained.optimizer.param_groups[0]["lr"] == 2.5e-3
    assert h.scheduler.last_epoch == 2
    assert h.loss_fn is nn.functional.cross_entropy and h.metrics == {"accuracy": accuracy}
    assert [type(c).__name__ for c in h.callbacks] == ["Counter"]
    assert h.callbacks[0].count == 2 and h.callbacks[0].handler is h
    assert h.model_kwargs == trained.model_kwargs and h.run_state.global_step == 6
    # It trains on, numbering epochs from 3.
    h.set_train_loader(cls_data, batch_size=64, shuffle=True)
    h.train(1, progress_bar=False)
    assert len(h.train_losses) == 3 and h.callbacks[0].count == 3


def test_loss_module_and_torchmetric_stored_by_class_and_arguments(cls_data):
    import torchmetrics

    h = _handler(cls_data)
    weight = torch.tensor([1.0, 2.0, 3.0])
    h.set_loss_fn(nn.CrossEntropyLoss(weight=weight, label_smoothing=0.1))
    h.add_metric("acc", torchmetrics.Accuracy(task="multiclass", num_classes=3))
    h.save("m.pth")
    stored = torch.load("m.pth", weights_only=True)
    assert stored["loss_fn"]["path"] == "torch.nn.modules.loss:CrossEntropyLoss"
    assert stored["loss_fn"]["kwargs"]["label_smoothing"] == 0.1
    loaded = NNHandler.load("m.pth")
    assert isinstance(loaded.loss_fn, nn.CrossEntropyLoss)
    assert loaded.loss_fn.label_smoothing == 0.1 and torch.equal(loaded.loss_fn.weight, weight)
    metric = loaded.metrics["acc"]
    assert type(metric).__name__ == "MulticlassAccuracy" and metric.num_classes == 3


def test_lambda_loss_warns_at_save_and_can_be_given_at_load(cls_data):
    h = _handler(cls_data)
    h.set_loss_fn(lambda out, y: nn.functional.cross_entropy(out, y))
    with pytest.warns(UserWarning, match=r"loss_fn: .*lambda.*stored as None.*loss_fn="):
        h.save("lam.pth")
    assert torch.load("lam.pth", weights_only=True)["loss_fn"] is None
    with pytest.warns(UserWarning, match="stores no loss function"):
        bare = NNHandler.load("lam.pth")
    assert bare.loss_fn is None
    given = NNHandler.load("lam.pth", loss_fn=nn.functional.mse_loss)
    assert given.loss_fn is nn.functional.mse_loss


def test_local_model_class_needs_model_class_at_load(cls_data):
    class Local(TinyNet):
        pass

    h = NNHandler(Local)
    with pytest.warns(UserWarning, match="model_class: .*inside a function"):
        h.save("local.pth")
    with pytest.raises(ValueError, match=r"model_class=YourModel"):
        NNHandler.load("local.pth")
    loaded = NNHandler.load("local.pth", model_class=Local)
    assert _weights_equal(loaded.module, h.module)


def test_main_class_is_stored_by_path_with_a_warning(cls_data, monkeypatch):
    import __main__

    Script = type("Script", (TinyNet,), {"__module__": "__main__"})
    monkeypatch.setattr(__main__, "Script", Script, raising=False)
    h = NNHandler(Script)
    with pytest.warns(UserWarning, match=r"__main__:Script.*loads only from that same script"):
        h.save("main.pth")
    assert torch.load("main.pth", weights_only=True)["model_class"] == "__main__:Script"
    assert type(NNHandler.load("main.pth").module) is Script
    monkeypatch.delattr(__main__, "Script")
    with pytest.raises(ValueError, match="cannot be resolved.*model_class="):
        NNHandler.load("main.pth")


def test_saved_model_code_runs_only_when_trusted(cls_data):
    class Hidden(nn.Module):
        def __init__(self, n: int = 4):
            super().__init__()
            self.lin = nn.Linear(n, 2)

    h = NNHandler(Hidden, save_model_code=True)
    with pytest.warns(UserWarning):
        h.save("code.pth")
    assert "class Hidden" in torch.load("code.pth", weights_only=True)["model_code"]
    with pytest.raises(ValueError, match="model_class="):
        NNHandler.load("code.pth")
    loaded = NNHandler.load("code.pth", trust_model_code=True)
    assert type(loaded.module).__name__ == "Hidden" and "class Hidden" in loaded.model_code
    assert torch.equal(loaded.module.lin.weight, h.module.lin.weight)


# ----------------------------------------------------------------- safety
def test_pickle_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"model_state_dict": {}, "model_class": Payload(str(marker))}, "evil.pth")
    with pytest.raises(ValueError, match=r"needs to run code.*allow_legacy_pickle=True"):
        NNHandler.load("evil.pth")
    with pytest.raises(ValueError, match="needs to run code"):
        NNHandler.initialize_from_checkpoint("evil.pth", TinyNet)
    assert not marker.exists()


def test_file_cannot_make_load_call_an_arbitrary_class(cls_data):
    h = _handler(cls_data)
    h.save("ok.pth")
    ckpt = torch.load("ok.pth", weights_only=True)
    ckpt["loss_fn"] = {
        "__nn_handler__": "module",
        "path": "subprocess:Popen",
        "kwargs": {"args": ["touch", "pwned"]},
        "state": {},
    }
    ckpt["model_class"] = "subprocess:Popen"
    torch.save(ckpt, "bad.pth")
    with pytest.raises(ValueError, match="subprocess:Popen.*is refused.*standard library"):
        NNHandler.load("bad.pth")
    ckpt["model_class"] = "torch.optim:SGD"  # importable, but not of the kind the slot takes
    torch.save(ckpt, "bad.pth")
    with pytest.raises(ValueError, match="not a valid model class"):
        NNHandler.load("bad.pth")
    with pytest.warns(UserWarning, match="Loss not restored.*Popen"):
        NNHandler.load("bad.pth", model_class=TinyNet)
    assert not os.path.exists("pwned")


# ----------------------------------------------------------------- errors
def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        NNHandler.load("nope.pth")


def test_bare_state_dict_and_lightning_checkpoint_are_named(cls_data):
    torch.save(TinyNet().state_dict(), "bare.pth")
    with pytest.raises(ValueError, match=r"bare model state_dict .*initialize_from_checkpoint"):
        NNHandler.load("bare.pth")
    torch.save(
        {"state_dict": {"model.w": torch.ones(1)}, "pytorch-lightning_version": "2.6", "epoch": 0},
        "pl.ckpt",
    )
    with pytest.raises(ValueError, match="Lightning checkpoint without NNHandler state"):
        NNHandler.load("pl.ckpt")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_truncated_or_corrupted_file(trained, damage):
    data = Path("trained.pth").read_bytes()
    Path("bad.pth").write_bytes(
        data[: len(data) // 2] if damage == "truncate" else b"\x00junk" * 50
    )
    with pytest.raises(ValueError, match=r"'bad.pth' is truncated or corrupted"):
        NNHandler.load("bad.pth")


def test_other_model_class_strict_and_non_strict(trained):
    with pytest.raises(ValueError, match=r"do not fit AutoEncoder.*another model class"):
        NNHandler.load("trained.pth", model_class=AutoEncoder, strict_load=True)
    with pytest.raises(ValueError, match=r"do not fit AutoEncoder.*another model class"):
        NNHandler.load("trained.pth", model_class=AutoEncoder, strict_load=False)


def test_shape_mismatch_strict_errors_non_strict_loads_the_rest(trained):
    with pytest.raises(ValueError, match=r"shape mismatch: body.0.weight: checkpoint \(16, 8\)"):
        NNHandler.load(
            "trained.pth", strict_load=True, model_kwargs={"hidden": 32}, skip_optimizer=True
        )
    with pytest.warns(UserWarning, match=r"Loaded 1/4 tensors.*shape mismatch"):
        h = NNHandler.load("trained.pth", model_kwargs={"hidden": 32}, skip_optimizer=True)
    assert torch.equal(h.module.body[2].bias, trained.module.body[2].bias)


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "module._orig_mod."])
def test_wrapper_prefixes_load_into_a_bare_model(trained, prefix):
    ckpt = torch.load("trained.pth", weights_only=True)
    ckpt["model_state_dict"] = {prefix + k: v for k, v in ckpt["model_state_dict"].items()}
    torch.save(ckpt, "wrapped.pth")
    assert _weights_equal(NNHandler.load("wrapped.pth", strict_load=True).module, trained.module)
    torch.save(ckpt["model_state_dict"], "wrapped_sd.pth")
    h = NNHandler.initialize_from_checkpoint("wrapped_sd.pth", TinyNet)
    assert _weights_equal(h.module, trained.module)


def test_compiled_model_saves_bare_keys(trained):
    trained.compile_model()
    trained.save("compiled.pth")
    keys = torch.load("compiled.pth", weights_only=True)["model_state_dict"].keys()
    assert all(not k.startswith("_orig_mod.") for k in keys)


def test_device_mapping(trained):
    h = NNHandler.load("trained.pth", device="cpu")
    assert h.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in h.module.parameters())
    assert all(t.device.type == "cpu" for s in h.optimizer.state.values() for t in s.values())


# ------------------------------------------------------------- skip flags
def test_skip_flags(trained):
    h = NNHandler.load("trained.pth", skip_optimizer=True)
    assert h.optimizer is None and h.scheduler is None
    h = NNHandler.load("trained.pth", skip_scheduler=True)
    assert h.scheduler is None and h.optimizer.param_groups[0]["lr"] == 2.5e-3
    h = NNHandler.load("trained.pth", skip_history=True)
    assert h.train_losses == [] and h.val_losses == [] and h.train_metrics_history == {}
    assert h.run_state.global_step == 0
    h = NNHandler.load("trained.pth", skip_callbacks=True)
    assert h.callbacks == []


def test_skip_ema_and_ema_round_trip(cls_data):
    h = _handler(cls_data)
    h.train(1, progress_bar=False, ema_decay=0.9)
    h.save("ema.pth")
    loaded = NNHandler.load("ema.pth")
    assert loaded.run_state.ema_decay == 0.9 and loaded.ema is not None
    assert _weights_equal(loaded.ema, h.ema)
    assert int(loaded.ema.n_averaged) == int(h.ema.n_averaged) == 3  # one per optimizer step
    assert NNHandler.load("ema.pth", skip_ema=True).ema is None


def test_sampler_and_sde_round_trip_and_skip(cls_data):
    from nn_handler import VESDE

    h = NNHandler(AutoEncoder, model_type="generative")
    h.set_sampler(CountingSampler, scale=2.0)
    h.sampler.calls = 5
    h.set_sde(VESDE, sigma_min=0.01, sigma_max=10.0)
    h.save("gen.pth")
    ckpt = torch.load("gen.pth", weights_only=True)
    assert ckpt["sampler_class"] == "test_checkpoint:CountingSampler"
    assert ckpt["sampler_state_dict"] == {"calls": 5} and ckpt["sde_kwargs"]["sigma_max"] == 10.0
    loaded = NNHandler.load("gen.pth")
    assert isinstance(loaded.sampler, CountingSampler) and loaded.sampler.calls == 5
    assert loaded.sampler.scale == 2.0 and isinstance(loaded.sde, VESDE)
    skipped = NNHandler.load("gen.pth", skip_sampler_sde=True)
    assert skipped.sampler is None and skipped.sde is None
    assert loaded.model_type.value == "generative"


def test_callbacks_without_no_arg_constructor(cls_data):
    h = _handler(cls_data)
    h.add_callback(NeedsArgs("x"))
    h.add_callback(Counter())
    h.add_callback(Counter())
    h.save("cb.pth")
    ckpt = torch.load("cb.pth", weights_only=True)
    assert list(ckpt["callback_classes"]) == ["NeedsArgs", "Counter", "Counter#1"]
    loaded = NNHandler.load("cb.pth")  # NeedsArgs is rebuilt from its kept constructor argument
    assert [type(c).__name__ for c in loaded.callbacks] == ["NeedsArgs", "Counter", "Counter"]
    assert loaded.callbacks[0].tag == "x"
    ckpt["callback_classes"]["NeedsArgs"] = "test_checkpoint:Gone"
    torch.save(ckpt, "cb2.pth")
    with pytest.warns(UserWarning, match=r"no matching callback.*NeedsArgs.*callbacks=\["):
        NNHandler.load("cb2.pth")
    given = NeedsArgs("y")
    loaded = NNHandler.load("cb2.pth", callbacks=[given])
    assert loaded.callbacks[0] is given and given.handler is loaded


def test_lightning_callback_state_is_kept_and_reported(cls_data):
    from lightning.pytorch.callbacks import EarlyStopping

    h = _handler(cls_data)
    h.add_callback(EarlyStopping(monitor="val_loss"))
    h.train(1, progress_bar=False)
    h.save("lcb.pth")
    ckpt = torch.load("lcb.pth", weights_only=True)
    assert any(k.startswith("EarlyStopping") for k in ckpt["callbacks"])
    with pytest.warns(UserWarning, match="Lightning callbacks are not re-created.*EarlyStopping"):
        NNHandler.load("lcb.pth")


# ------------------------------------------------------------- directory
def test_directory_loads_newest_by_recorded_epoch(cls_data):
    h = _handler(cls_data)
    os.makedirs("runs")
    h.train(2, progress_bar=False)
    h.save("runs/b_late.pth")
    h.train(1, progress_bar=False)
    h.save("runs/a_newest.pth")
    os.utime("runs/a_newest.pth", (1, 1))  # oldest by file time, newest by content
    torch.save(TinyNet().state_dict(), "runs/zz_weights.pth")
    Path("runs/notes.txt").write_text("not a checkpoint")
    loaded = NNHandler.load("runs")
    assert len(loaded.train_losses) == 3
    os.makedirs("empty")
    with pytest.raises(FileNotFoundError, match="No NNHandler checkpoint"):
        NNHandler.load("empty")


# ------------------------------------------------------------ atomicity
def test_failed_write_keeps_previous_file_and_leaves_no_temp(trained, monkeypatch):
    before = Path("trained.pth").read_bytes()

    def exploding_save(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(atomic_mod.torch, "save", exploding_save)
        with pytest.raises(OSError, match="disk full"):
            trained.save("trained.pth")
    assert Path("trained.pth").read_bytes() == before
    assert sorted(os.listdir(".")) == ["trained.pth"]
    assert NNHandler.load("trained.pth").train_losses == trained.train_losses


def test_save_before_training_loads_back():
    h = NNHandler(TinyNet, hidden=4)
    h.save("fresh.pth")
    loaded = NNHandler.load("fresh.pth")
    assert loaded.model_kwargs == {"hidden": 4} and loaded.optimizer is None
    assert _weights_equal(loaded.module, h.module)


# -------------------------------------------------- initialize_from_checkpoint
def test_initialize_from_handler_lightning_and_bare_files(trained):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_handler = NNHandler.initialize_from_checkpoint("trained.pth", TinyNet)
    assert isinstance(from_handler, NNHandler) and from_handler.optimizer is None
    assert from_handler.train_losses == []
    assert _weights_equal(from_handler.module, trained.module)
    sd = trained.module.state_dict()
    torch.save(
        {
            "state_dict": {"model." + k: v for k, v in sd.items()},
            "pytorch-lightning_version": "2.6.6",
        },
        "pl.ckpt",
    )
    assert _weights_equal(
        NNHandler.initialize_from_checkpoint("pl.ckpt", TinyNet).module, trained.module
    )
    torch.save(sd, "bare.pth")
    h = NNHandler.initialize_from_checkpoint("bare.pth", TinyNet, model_type="regression")
    assert _weights_equal(h.module, trained.module) and h.model_type.value == "regression"
    with pytest.raises(ValueError, match="do not fit TinyNet"):
        NNHandler.initialize_from_checkpoint("bare.pth", TinyNet, hidden=7)
    torch.save([1, 2], "list.pth")
    with pytest.raises(ValueError, match="a list object"):
        NNHandler.initialize_from_checkpoint("list.pth", TinyNet)


def test_dropout_model_predictions_identical_after_reload(cls_data):
    h = _handler(cls_data, model=DropoutNet)
    h.train(1, progress_bar=False, seed=1)
    h.save("d.pth")
    loaded = NNHandler.load("d.pth")
    a = torch.cat(h.predict(h.val_loader))
    b = torch.cat(loaded.predict(h.val_loader))
    assert torch.equal(a, b)


def test_only_rank_zero_writes_and_every_rank_waits(monkeypatch):
    import nn_handler.checkpoint._save as ckpt_mod

    h = NNHandler(TinyNet)
    calls = []
    monkeypatch.setattr(ckpt_mod, "_dist_rank_and_barrier", lambda: (1, lambda: calls.append(1)))
    h.save("rank1.pth")
    assert not os.path.exists("rank1.pth") and calls == [1]
    monkeypatch.setattr(ckpt_mod, "_dist_rank_and_barrier", lambda: (0, lambda: calls.append(0)))
    h.save("rank0.pth")
    assert os.path.exists("rank0.pth") and calls == [1, 0]


def test_save_inside_a_process_group(tmp_path):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        NNHandler(TinyNet).save("pg.pth")
    finally:
        dist.destroy_process_group()
    assert NNHandler.load("pg.pth").model_kwargs == {}


def test_import_paths_and_encoding_rules():
    import functools

    import numpy as np

    from nn_handler._codecs.refs import Unresolvable, decode, encode, import_path

    assert import_path(torch.sigmoid) == "torch:sigmoid"  # a built-in function
    assert import_path(nn.functional.relu) == "torch.nn.functional:relu"
    with pytest.raises(Unresolvable, match="cannot be imported back"):
        import_path(Counter().on_epoch_end)  # a bound method
    problems = []
    value = {
        "fn": functools.partial(nn.functional.smooth_l1_loss, beta=0.5),
        "np": np.float32(1.5),
        "tuple": (1, "a"),
        "cls": torch.optim.SGD,
        "bad": lambda x: x,
    }
    stored = encode(value, problems, "kw")
    assert len(problems) == 1 and problems[0].startswith("kw['bad']: ") and "lambda" in problems[0]
    assert stored["np"] == 1.5 and type(stored["np"]) is float
    with pytest.raises(Unresolvable, match=r"kw\['bad'\].*was not stored"):
        decode(stored, "kw", trust=True)
    del stored["bad"]
    # Without trust, a function chosen by the file (here inside a partial) is refused.
    with pytest.raises(Unresolvable, match=r"kw\['fn'\] is a functools.partial"):
        decode(stored, "kw")
    back = decode(stored, "kw", trust=True)
    assert back["fn"].func is nn.functional.smooth_l1_loss and back["fn"].keywords == {"beta": 0.5}
    assert back["cls"] is torch.optim.SGD and back["tuple"] == (1, "a")


def test_three_callbacks_of_one_class_each_keep_their_state(cls_data):
    h = _handler(cls_data)
    for count in (1, 2, 3):
        counter = Counter()
        counter.count = count
        h.add_callback(counter)
    h.save("three.pth")
    loaded = NNHandler.load("three.pth")
    assert [type(c).__name__ for c in loaded.callbacks] == ["Counter"] * 3
    assert [c.count for c in loaded.callbacks] == [1, 2, 3]
