"""A checkpoint never makes loading run code or delete files: proven by audit hooks.

A fuzzer plants references, ``partial``s and module markers of dangerous functions in every slot
of a real checkpoint (every kwargs dict, the loss, metrics, callbacks, SDE, sampler, nested lists
and dicts, settings) and loads the file every way a user can: ``NNHandler.load`` of the file and
of its directory, ``initialize_from_checkpoint``, ``Trainer.fit(ckpt_path=...)`` of the exported
module and the CLI's ``--ckpt_path``. A process-wide audit hook (``sys.addaudithook``) records
every process start, shell command and file removal while a load runs; any one fails the test.
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pytest
import torch
from safety_parts import Nested, PlainSampler, StatefulCallback, accuracy
from torch.utils.data import TensorDataset

from nn_handler import VESDE, NNHandler

MARK = "__nn_handler__"
_WATCHED = (
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "shutil.rmtree",
    "pty.spawn",
    "webbrowser.open",
    "os.kill",
)
_EVENTS: list[tuple[str, tuple]] = []
_ARMED = [False]


def _hook(event: str, args: tuple) -> None:
    if _ARMED[0] and event.startswith(_WATCHED):
        _EVENTS.append((event, args))


sys.addaudithook(_hook)  # process-wide and permanent: it records only while armed


class Watch:
    """Arms the audit hook for a block; ``events`` is what the block did that it must not."""

    def __enter__(self) -> Watch:
        _EVENTS.clear()
        _ARMED[0] = True
        return self

    def __exit__(self, *exc) -> None:
        _ARMED[0] = False
        self.events = list(_EVENTS)


# ----------------------------------------------------------------- payloads
DANGEROUS = (
    "subprocess:call",
    "subprocess:Popen",
    "os:system",
    "os:remove",
    "posix:system",
    "shutil:rmtree",
    "builtins:exec",
    "builtins:eval",
    "antigravity:geohash",  # importing it opens a web browser
    "torch.serialization:os.system",  # reaches os through a third-party module's attribute
)


def payloads(canary: Path, victim: Path) -> list[object]:
    out: list[object] = []
    for path in DANGEROUS:
        ref = {MARK: "ref", "path": path}
        out.append(ref)
        out.append(
            {
                MARK: "partial",
                "func": ref,
                "args": [f"touch {canary}"] if "remove" not in path else [str(victim)],
                "kwargs": {"shell": True} if path.startswith("subprocess") else {},
            }
        )
        out.append({MARK: "module", "path": path, "kwargs": {"args": ["touch", str(canary)]}})
    out.append(f"{DANGEROUS[0]}")  # a bare path string where a class path is read
    return out


# -------------------------------------------------------------------- files
SETUP_KEYS = (
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
    "callback_classes",
    "callback_kwargs",
    "callback_states",
    "lightning_callback_classes",
    "sde_class",
    "sde_kwargs",
    "sampler_class",
    "sampler_kwargs",
    "sampler_state_dict",
    "ddp_kwargs",
    "training_options",
    "auto_saver_state",
    "seed",
    "ema_decay",
    "train_loader_kwargs",
    "train_losses",
    "callbacks",
)


def good_handler(root: Path) -> NNHandler:
    torch.manual_seed(0)
    x = torch.randn(32, 8)
    y = (x[:, 0] > 0).long()
    h = NNHandler(Nested, sizes=[8, 6], extra={"depth": [1, {"k": 2}]})
    h.set_optimizer(torch.optim.Adam, lr=0.01, betas=(0.9, 0.99))
    h.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    h.set_loss_fn(torch.nn.functional.cross_entropy, label_smoothing=0.1)
    h.add_metric("acc", accuracy)
    h.add_metric("ce", torch.nn.CrossEntropyLoss(weight=torch.ones(3)))
    h.add_callback(StatefulCallback("x", weights=[0.5, 0.25]))
    h.set_sde(VESDE, sigma_min=0.1, sigma_max=5.0)
    h.set_sampler(PlainSampler, width=3, options={"a": [1, 2]})
    h.set_train_loader(TensorDataset(x, y), batch_size=16)
    h.auto_save(1, save_path=str(root / "auto"), name="m{epoch:02d}")
    h.train(1, progress_bar=False, ema_decay=0.5, trainer_kwargs={"log_every_n_steps": 1})
    return h


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[dict, Path]:
    root = tmp_path_factory.mktemp("safety")
    h = good_handler(root)
    h.save(str(root / "good.pth"))
    return torch.load(root / "good.pth", weights_only=True), root


def slots(value: object, path: tuple = ()) -> Iterator[tuple]:
    """Every position inside ``value`` (and one new key in every dict)."""
    yield path
    if isinstance(value, dict):
        if MARK not in value:
            yield (*path, "planted")
        for key, item in value.items():
            if not isinstance(item, torch.Tensor):
                yield from slots(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if not isinstance(item, torch.Tensor):
                yield from slots(item, (*path, i))


def every_slot(ckpt: dict) -> list[tuple]:
    out = []
    for key in SETUP_KEYS:
        if key in ckpt:
            out.extend(slots(ckpt[key], (key,)))
    return out


def planted(ckpt: dict, slot: tuple, payload: object) -> dict:
    evil = copy.copy(ckpt)
    evil[slot[0]] = copy.deepcopy(ckpt[slot[0]])
    if len(slot) == 1:
        evil[slot[0]] = payload
        return evil
    target = evil[slot[0]]
    for part in slot[1:-1]:
        target = target[part]
    if isinstance(target, tuple):  # tuples are immutable: rebuild the parent entry
        return evil
    target[slot[-1]] = payload
    return evil


def _load_quietly(load) -> BaseException | None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load()
        except (ValueError, TypeError, KeyError) as err:  # refused: a clear error is fine
            return err
    return None


def _check(watch: Watch, canary: Path, victim: Path, where: str) -> None:
    assert watch.events == [], f"{where}: {watch.events}"
    assert not canary.exists(), f"{where}: the canary file was created"
    assert victim.exists(), f"{where}: the victim file was deleted"


# --------------------------------------------------------------------- tests
def test_every_slot_is_reached(base):
    ckpt, _ = base
    found = {s[0] for s in every_slot(ckpt)}
    assert set(SETUP_KEYS) - {"callbacks"} <= found | {"lightning_callback_classes"}
    assert len(every_slot(ckpt)) > 60  # nested kwargs, states, lists and dicts


def _fuzz_load(ckpt: dict, tmp_path: Path, per_slot: int | None) -> int:
    canary, victim = tmp_path / "PWNED", tmp_path / "victim.txt"
    victim.write_text("keep me")
    file = tmp_path / "evil.pth"
    kinds = payloads(canary, victim)
    tried = 0
    for i, slot in enumerate(every_slot(ckpt)):
        chosen = (
            kinds if per_slot is None else [kinds[(i + j) % len(kinds)] for j in range(per_slot)]
        )
        for payload in chosen:
            torch.save(planted(ckpt, slot, payload), file)
            with Watch() as watch:
                _load_quietly(lambda: NNHandler.load(str(file)))
            _check(watch, canary, victim, f"slot {slot} payload {payload}")
            tried += 1
    return tried


def test_no_slot_makes_nnhandler_load_run_anything(base, tmp_path):
    """Every slot, two payloads each, rotating so that every payload meets every kind of slot."""
    ckpt, _ = base
    assert _fuzz_load(ckpt, tmp_path, per_slot=2) > 120


@pytest.mark.slow
def test_no_slot_and_no_payload_makes_nnhandler_load_run_anything(base, tmp_path):
    """The whole matrix: every payload in every slot."""
    ckpt, _ = base
    assert _fuzz_load(ckpt, tmp_path, per_slot=None) > 1500


def test_trusting_the_file_is_what_runs_it(base, tmp_path):
    """The issue's exploit: refused by default; the opt-in really is what would run it."""
    ckpt, _ = base
    canary = tmp_path / "RAN"
    partial = {
        MARK: "partial",
        "func": {MARK: "ref", "path": "subprocess:call"},
        "args": [f"touch {canary}"],
        "kwargs": {"shell": True},
    }
    evil = planted(ckpt, ("scheduler_kwargs",), {"lr_lambda": partial})
    evil["scheduler_class"] = "torch.optim.lr_scheduler:LambdaLR"
    evil["scheduler_state_dict"] = None
    torch.save(evil, tmp_path / "evil.pth")
    with Watch() as watch, pytest.warns(UserWarning, match=r"Scheduler not restored.*partial"):
        safe = NNHandler.load(str(tmp_path / "evil.pth"))
    assert safe.scheduler is None and not canary.exists() and watch.events == []
    with Watch() as watch, pytest.warns(UserWarning):
        NNHandler.load(str(tmp_path / "evil.pth"), trust_checkpoint=True)
    assert canary.exists() and any(e == "subprocess.Popen" for e, _ in watch.events)


def test_directory_load_of_a_planted_file_runs_nothing(base, tmp_path):
    ckpt, _ = base
    canary, victim = tmp_path / "PWNED", tmp_path / "victim.txt"
    victim.write_text("keep me")
    shared = tmp_path / "shared"
    shared.mkdir()
    torch.save(ckpt, shared / "model_epoch01.pth")
    kinds = payloads(canary, victim)
    for i, slot in enumerate(every_slot(ckpt)[::4]):
        for payload in (kinds[i % len(kinds)], kinds[(i + 7) % len(kinds)]):
            evil = planted(ckpt, slot, payload)
            evil["train_losses"] = [1.0] * 50  # claims the most epochs: the one a scan picks
            torch.save(evil, shared / "model_epoch50.pth")
            with Watch() as watch:
                _load_quietly(lambda: NNHandler.load(str(shared)))
            _check(watch, canary, victim, f"directory, slot {slot}")


def test_initialize_from_checkpoint_runs_nothing(base, tmp_path):
    ckpt, _ = base
    canary, victim = tmp_path / "PWNED", tmp_path / "victim.txt"
    victim.write_text("keep me")
    for slot in every_slot(ckpt)[::2]:
        payload = payloads(canary, victim)[1]
        torch.save(planted(ckpt, slot, payload), tmp_path / "evil.pth")
        with Watch() as watch:
            _load_quietly(
                lambda: NNHandler.initialize_from_checkpoint(
                    str(tmp_path / "evil.pth"), Nested, sizes=[8, 6]
                )
            )
        _check(watch, canary, victim, f"initialize_from_checkpoint, slot {slot}")


def _all_slots_planted(ckpt: dict, payload: object) -> dict:
    """One file with the payload in every slot Lightning's resume path reads."""
    evil = copy.deepcopy(ckpt)
    for key in ("callback_states", "auto_saver_state", "sampler_state_dict", "training_options"):
        evil[key] = {"x": payload, "nested": [payload, {"y": payload}]}
    evil["callbacks"] = {
        "nn_handler.AutoSaver": {"last_saved_model": payload, "save_path": payload},
        "NativeCallbackBridge": {"callback_states": [payload]},
    }
    for key in ("model_class", "optimizer_class", "loss_fn", "sde_class", "sampler_class"):
        evil[key] = payload
    return evil


def test_lightning_resume_of_the_exported_module_runs_nothing(base, tmp_path):
    ckpt, root = base
    canary, victim = tmp_path / "PWNED", tmp_path / "victim.txt"
    victim.write_text("keep me")
    for payload in payloads(canary, victim)[:6]:
        torch.save(_all_slots_planted(ckpt, payload), tmp_path / "evil.pth")
        h = good_handler(tmp_path / "fresh")
        h.auto_save(None)
        trainer = L.Trainer(
            max_epochs=3,
            logger=False,
            enable_progress_bar=False,
            enable_checkpointing=False,
            enable_model_summary=False,
        )
        with Watch() as watch:
            error = _load_quietly(
                lambda h=h, trainer=trainer: trainer.fit(
                    h.to_lightning_module(),
                    datamodule=h.to_datamodule(),
                    ckpt_path=str(tmp_path / "evil.pth"),
                )
            )
        _check(watch, canary, victim, f"Trainer.fit(ckpt_path), payload {payload}")
        # The resume went through: the planted values were ignored, not obeyed.
        assert error is None and len(h.train_losses) == 3 and trainer.global_step == 6


@pytest.mark.slow
def test_cli_ckpt_path_runs_nothing(base, tmp_path, monkeypatch):
    from nn_handler.adapters.cli import NNHandlerCLI

    examples = Path(__file__).resolve().parents[1] / "examples" / "cli"
    monkeypatch.syspath_prepend(str(examples))
    from blobs import GaussianBlobs
    from mlp import MLP

    h = NNHandler(MLP, hidden=8)
    h.set_optimizer(torch.optim.Adam, lr=0.01)
    h.set_loss_fn(torch.nn.functional.cross_entropy)
    h.set_train_loader(GaussianBlobs(n_samples=32), batch_size=16)
    h.export_config(str(tmp_path / "run.yaml"), epochs=2, progress_bar=False)
    h.train(1, progress_bar=False)
    h.save(str(tmp_path / "good.pth"))
    ckpt = torch.load(tmp_path / "good.pth", weights_only=True)
    canary, victim = tmp_path / "PWNED", tmp_path / "victim.txt"
    victim.write_text("keep me")
    monkeypatch.chdir(tmp_path)
    for payload in payloads(canary, victim)[:3]:
        torch.save(_all_slots_planted(ckpt, payload), tmp_path / "evil.pth")
        args = ["fit", "--config", "run.yaml", "--ckpt_path", "evil.pth"]
        args += ["--trainer.enable_checkpointing", "false", "--trainer.logger", "false"]
        with Watch() as watch:
            error = _load_quietly(lambda args=args: NNHandlerCLI(args=args))
        _check(watch, canary, victim, f"CLI --ckpt_path, payload {payload}")
        assert error is None  # the resume ran to the end, ignoring what was planted
    for key in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        os.environ.pop(key, None)
    shutil.rmtree(tmp_path / "lightning_logs", ignore_errors=True)


# ------------------------------------------------ arguments the file chooses for what it names
def _quiet(**kwargs) -> NNHandler:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return NNHandler.load(**kwargs)


def _train_once(h: NNHandler) -> None:
    x = torch.randn(16, 8)
    h.set_train_loader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    h.train(1, progress_bar=False)


def test_a_file_chosen_loss_function_gets_no_file_chosen_arguments(base, tmp_path):
    ckpt, _ = base
    canary = tmp_path / "CALLED"
    evil = dict(ckpt)
    evil["loss_fn"] = {MARK: "ref", "path": "safety_parts:marking_loss"}
    evil["loss_fn_kwargs"] = {"path": str(canary)}
    torch.save(evil, tmp_path / "evil.pth")
    with pytest.warns(UserWarning, match=r"Loss not restored.*marking_loss.*\['path'\]"):
        safe = NNHandler.load(str(tmp_path / "evil.pth"))
    assert safe.loss_fn is None and not canary.exists()
    # Passing the function is the user's choice: the stored arguments then apply.
    from safety_parts import marking_loss

    given = NNHandler.load(str(tmp_path / "evil.pth"), loss_fn=marking_loss)
    assert given.loss_fn_kwargs == {"path": str(canary)}
    trusted = _quiet(path=str(tmp_path / "evil.pth"), trust_checkpoint=True)
    _train_once(trusted)
    assert canary.read_text() == "called"
    # torch's own loss functions keep their stored arguments without trust.
    plain = _quiet(path=str(base[1] / "good.pth"))
    assert plain.loss_fn is torch.nn.functional.cross_entropy
    assert plain.loss_fn_kwargs == {"label_smoothing": 0.1}


def test_a_file_rebuilds_no_lightning_callback_and_chooses_no_callback_output(base, tmp_path):
    ckpt, _ = base
    elsewhere = tmp_path / "elsewhere"
    evil = dict(ckpt)
    evil["callback_classes"] = {
        "ModelCheckpoint": "lightning.pytorch.callbacks.model_checkpoint:ModelCheckpoint",
        "TensorBoard": "nn_handler.callbacks.tensorboard:TensorBoardLogger",
        "ModelCheckpoint#1": "nn_handler.callbacks.model_checkpoint:ModelCheckpoint",
    }
    evil["callback_kwargs"] = {
        "ModelCheckpoint": {"dirpath": str(elsewhere)},
        "TensorBoard": {"log_dir": str(elsewhere / "logs")},
        "ModelCheckpoint#1": {"filepath": "ckpts/best.pth"},  # relative, inside: allowed
    }
    evil["callback_states"] = {}
    (tmp_path / "here").mkdir()
    torch.save(evil, tmp_path / "here" / "evil.pth")
    with pytest.warns(UserWarning, match="not restored") as caught:
        safe = NNHandler.load(str(tmp_path / "here" / "evil.pth"))
    message = " ".join(str(w.message) for w in caught)
    assert "an nn_handler callback class" in message and "log_dir" in message
    assert [type(c).__name__ for c in safe.callbacks] == ["ModelCheckpoint"]
    assert safe.callbacks[0].filepath == "ckpts/best.pth"
    trusted = _quiet(path=str(tmp_path / "here" / "evil.pth"), trust_checkpoint=True)
    assert sorted(type(c).__module__ for c in trusted.callbacks) == [
        "nn_handler.callbacks.model_checkpoint",
        "nn_handler.callbacks.tensorboard",
    ]


class Initialized(torch.nn.Module):
    """A layer that calls the function it is built with on its weight (an initializer)."""

    def __init__(self, init=None):
        super().__init__()
        self.linear = torch.nn.Linear(8, 3)
        if init is not None:
            init(self.linear.weight)

    def forward(self, x):
        return self.linear(x)


class Holder(torch.nn.Module):
    """A model whose constructor takes a module instance."""

    def __init__(self, inner=None):
        super().__init__()
        self.inner = inner if inner is not None else Initialized()

    def forward(self, x):
        return self.inner(x)


def write_marker(path, *args):
    """What a planted ``partial`` calls: it writes ``path``."""
    Path(path).write_text("called")


def test_a_partial_inside_a_nested_modules_arguments_needs_trust(tmp_path):
    """model_kwargs -> a module instance -> its arguments -> a partial: two levels down the file
    still chooses no function and no argument, unless trusted."""
    NNHandler(Holder, inner=Initialized()).save(str(tmp_path / "good.pth"))
    ckpt = torch.load(tmp_path / "good.pth", weights_only=True)
    canary = tmp_path / "RAN"
    inner = ckpt["model_kwargs"]["inner"]
    assert inner[MARK] == "module"
    inner["kwargs"]["init"] = {
        MARK: "partial",
        "func": {MARK: "ref", "path": f"{__name__}:write_marker"},
        "args": [str(canary)],
        "kwargs": {},
    }
    torch.save(ckpt, tmp_path / "evil.pth")
    with Watch() as watch:
        refused = _load_quietly(lambda: NNHandler.load(str(tmp_path / "evil.pth")))
    assert watch.events == [] and not canary.exists()
    assert refused is not None and "trust_checkpoint=True" in str(refused)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        NNHandler.load(str(tmp_path / "evil.pth"), trust_checkpoint=True)
    assert canary.read_text() == "called"  # trusting the file is what runs it
