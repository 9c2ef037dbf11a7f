"""Bad input, systematically: hypothesis draws wrong values for every public setter and for the
arguments of ``train``/``auto_save``/``predict``/``sample``/``save``/``load``, and wrong batch
structures for each model type. Only TypeError/ValueError/RuntimeError (FileNotFoundError for a
missing checkpoint) may escape, with a message naming the problem, and never from inside
Lightning. Errors raised by the user's own model or loss (a shape mismatch in ``forward``) pass
through unchanged: they are the user's code, not a misuse of the API.

``MISUSE_CASES`` is the catalogue; ``test_misuse_catalogue_size`` prints how many there are.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from models import AutoEncoder, TinyNet
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from nn_handler import NNHandler
from nn_handler.callbacks import EpochTimer
from nn_handler.generative import VESDE, denoising_score_matching

ALLOWED = (TypeError, ValueError, RuntimeError)
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

X = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] > 0).long()


def handler(model_type: str = "classification", model=TinyNet) -> NNHandler:
    h = NNHandler(model, model_type=model_type)
    h.set_optimizer(torch.optim.SGD, lr=0.1)
    if model_type == "score_based":
        h.set_loss_fn(denoising_score_matching)
        h.set_train_loader(TensorDataset(X), batch_size=8)
    elif model_type == "classification":
        h.set_loss_fn(nn.functional.cross_entropy)
        h.set_train_loader(TensorDataset(X, Y), batch_size=8)
    else:
        h.set_loss_fn(nn.functional.mse_loss)
        h.set_train_loader(
            TensorDataset(X) if model_type == "generative" else TensorDataset(X, X[:, :3]),
            batch_size=8,
        )
    return h


# --------------------------------------------------------------- values
objects = st.sampled_from([object(), TinyNet(), torch.zeros(2), nn.functional.relu, int, str])
junk = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    objects,
)
not_indexable = st.one_of(st.none(), st.integers(), st.floats(), st.just(object()))
non_callable = st.one_of(
    st.none(), st.integers(), st.floats(), st.text(max_size=5), st.lists(st.integers(), max_size=2)
)
not_a_str = st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.integers(), max_size=2))
not_a_path = st.one_of(
    st.none(), st.integers(), st.floats(), st.lists(st.text(max_size=2)), st.just(object())
)
not_a_dict = st.one_of(
    st.integers(), st.text(min_size=1, max_size=3), st.lists(st.integers(), min_size=1, max_size=2)
)
not_bool = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=4))
non_positive_int = st.integers(max_value=0)
non_int = st.one_of(st.floats(), st.text(max_size=4), st.none())
identifiers = st.from_regex(r"[a-z][a-z_]{0,7}", fullmatch=True)
not_a_device = st.from_regex(r"[a-z]{2,8}[0-9]?", fullmatch=True).filter(
    lambda s: not _parses_as_device(s)
)
bad_format = st.sampled_from(["{", "}", "model{", "{epoch", "a}b", "{epoch:02d", "{0"])


def _is_module(value: Any) -> bool:
    return isinstance(value, nn.Module)


def _parses_as_device(text: str) -> bool:
    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        return False
    return True


def _unknown(names: set[str]) -> Any:
    return st.dictionaries(
        identifiers.filter(lambda k: k not in names), junk, min_size=1, max_size=2
    )


class _Bare(Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> torch.Tensor:
        return X[i]


# ------------------------------------------------------------ catalogue
@dataclass(frozen=True)
class Misuse:
    """``call(value)`` with a value drawn from ``values`` must raise one of ``types`` whose message
    matches one of ``words`` (case-insensitive)."""

    name: str
    values: Any
    call: Callable[[Any], Any]
    words: tuple[str, ...]
    types: tuple[type, ...] = ALLOWED


def _train(kwargs):
    return lambda v: handler().train(**{**{"epochs": 1, "progress_bar": False}, **kwargs(v)})


def _setter(attr: str, setup: Callable[[], NNHandler] = handler):
    return lambda v: setattr(setup(), attr, v)


def _fit_on(model_type: str, data: Callable[[], Any], model=TinyNet, **set_up):
    def run(_):
        h = handler(model_type, model)
        for key, value in set_up.items():
            getattr(h, key)(*value)
        h.set_train_loader(data(), batch_size=8)
        h.train(1, progress_bar=False)

    return run


_MODEL_PARAMS = {
    "in_features",
    "hidden",
    "out_features",
    "device",
    "logger_mode",
    "logger_filename",
    "logger_filemode",
    "logger_level",
    "save_model_code",
    "model_type",
    "use_distributed",
    "ddp_kwargs",
    "model_kwargs",
}

MISUSE_CASES = [
    # construction
    Misuse(
        "NNHandler(model_class)",
        st.one_of(junk, st.sampled_from([torch.optim.SGD, int])),
        lambda v: NNHandler(v),
        ("model_class must be an nn.Module subclass",),
    ),
    Misuse(
        "NNHandler(model_type)",
        st.one_of(st.text(max_size=10), st.integers()),
        lambda v: NNHandler(TinyNet, model_type=v),
        ("valid values are",),
    ),
    Misuse(
        "NNHandler(device)",
        not_a_device,
        lambda v: NNHandler(TinyNet, device=v),
        ("invalid device",),
    ),
    Misuse(
        "NNHandler(logger_mode)",
        st.text(min_size=1, max_size=8).filter(
            lambda s: s.lower() not in ("console", "file", "both")
        ),
        lambda v: NNHandler(TinyNet, logger_mode=v),
        ("valid values are",),
    ),
    Misuse(
        "NNHandler(use_distributed)",
        st.one_of(st.text(max_size=4), st.floats()),
        lambda v: NNHandler(TinyNet, use_distributed=v),
        ("use_distributed",),
    ),
    Misuse(
        "NNHandler(**unknown model kwargs)",
        _unknown(_MODEL_PARAMS),
        lambda v: NNHandler(TinyNet, **v),
        ("Could not build TinyNet",),
    ),
    Misuse(
        "NNHandler(model_kwargs=not a dict)",
        st.one_of(st.integers(), st.text(max_size=3)),
        lambda v: NNHandler(TinyNet, model_kwargs=v),
        ("model_kwargs must be a dict",),
    ),
    Misuse(
        "set_model(model_class)",
        junk,
        lambda v: handler().set_model(v),
        ("model_class must be an nn.Module subclass",),
    ),
    Misuse(
        "NNHandler(ddp_kwargs not a dict)",
        not_a_dict,
        lambda v: NNHandler(TinyNet, ddp_kwargs=v),
        ("ddp_kwargs must be a dict",),
    ),
    # optimisation
    Misuse(
        "set_optimizer(class)",
        st.one_of(junk, st.sampled_from([nn.Linear, VESDE])),
        lambda v: handler().set_optimizer(v),
        ("optimizer_class must be",),
    ),
    Misuse(
        "set_optimizer(lr<0)",
        st.floats(max_value=-1e-6, allow_infinity=False),
        lambda v: handler().set_optimizer(torch.optim.SGD, lr=v),
        ("Could not build SGD", "Invalid learning rate"),
    ),
    Misuse(
        "set_optimizer(**unknown)",
        _unknown(
            {
                "lr",
                "momentum",
                "dampening",
                "weight_decay",
                "nesterov",
                "maximize",
                "foreach",
                "differentiable",
                "fused",
            }
        ),
        lambda v: handler().set_optimizer(torch.optim.SGD, lr=0.1, **v),
        ("Could not build SGD",),
    ),
    Misuse(
        "set_scheduler(class)",
        st.one_of(st.integers(), st.text(max_size=3), objects),
        lambda v: handler().set_scheduler(v),
        ("scheduler_class must be",),
    ),
    Misuse(
        "set_scheduler(missing kwargs)",
        st.sampled_from(
            [
                torch.optim.lr_scheduler.StepLR,
                torch.optim.lr_scheduler.MultiStepLR,
                torch.optim.lr_scheduler.ExponentialLR,
            ]
        ),
        lambda v: handler().set_scheduler(v),
        ("Could not build",),
    ),
    Misuse(
        "set_scheduler before set_optimizer",
        st.just(torch.optim.lr_scheduler.StepLR),
        lambda v: NNHandler(TinyNet).set_scheduler(v, step_size=1),
        ("set_optimizer",),
    ),
    # loss
    Misuse(
        "set_loss_fn(not callable)",
        non_callable,
        lambda v: handler().set_loss_fn(v),
        ("loss_fn must be callable",),
    ),
    Misuse(
        "loss_fn_kwargs = not a dict",
        st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers())),
        _setter("loss_fn_kwargs"),
        ("loss_fn_kwargs must be a dict",),
    ),
    Misuse(
        "pass_epoch_to_loss before set_loss_fn",
        st.booleans(),
        _setter("pass_epoch_to_loss", lambda: NNHandler(TinyNet)),
        ("set_loss_fn",),
    ),
    Misuse(
        "loss_fn_kwargs before set_loss_fn",
        st.just({"a": 1}),
        _setter("loss_fn_kwargs", lambda: NNHandler(TinyNet)),
        ("set_loss_fn",),
    ),
    # data
    Misuse(
        "set_train_loader(not a dataset)",
        not_indexable,
        lambda v: handler().set_train_loader(v),
        ("expects a torch Dataset",),
    ),
    Misuse(
        "set_val_loader(not a dataset)",
        not_indexable,
        lambda v: handler().set_val_loader(v),
        ("expects a torch Dataset",),
    ),
    Misuse(
        "set_train_loader(**unknown loader kwargs)",
        _unknown(
            {
                "batch_size",
                "shuffle",
                "sampler",
                "batch_sampler",
                "num_workers",
                "collate_fn",
                "pin_memory",
                "drop_last",
                "timeout",
                "worker_init_fn",
                "multiprocessing_context",
                "generator",
                "prefetch_factor",
                "persistent_workers",
                "pin_memory_device",
                "in_order",
            }
        ),
        lambda v: handler().set_train_loader(TensorDataset(X, Y), **v),
        ("Invalid DataLoader arguments",),
    ),
    Misuse(
        "set_train_loader(batch_size<=0)",
        non_positive_int,
        lambda v: handler().set_train_loader(TensorDataset(X, Y), batch_size=v),
        ("batch_size",),
    ),
    Misuse(
        "set_val_loader(DataLoader, **kwargs)",
        st.just({"batch_size": 4}),
        lambda v: handler().set_val_loader(DataLoader(TensorDataset(X, Y)), **v),
        ("got a DataLoader and loader kwargs",),
    ),
    # metrics and callbacks
    Misuse(
        "add_metric(name)",
        st.one_of(not_a_str, st.just("")),
        lambda v: handler().add_metric(v, lambda o, t: 0.0),
        ("metric name",),
    ),
    Misuse(
        "add_metric(fn)",
        non_callable,
        lambda v: handler().add_metric("m", v),
        ("must be a callable",),
    ),
    Misuse(
        "add_callback(not a callback)",
        junk,
        lambda v: handler().add_callback(v),
        ("add_callback expects",),
    ),
    Misuse(
        "remove_callback(unknown)",
        st.one_of(junk, st.just(EpochTimer())),
        lambda v: handler().remove_callback(v),
        ("is not among this handler's callbacks",),
    ),
    # auto-save
    Misuse(
        "auto_save(interval<-1)",
        st.integers(max_value=-2),
        lambda v: handler().auto_save(v),
        ("interval",),
    ),
    Misuse(
        "auto_save(interval not int)",
        st.one_of(
            st.floats().filter(bool),
            st.text(min_size=1, max_size=3),
            st.lists(st.integers(), min_size=1),
        ),
        lambda v: handler().auto_save(v),
        ("interval",),
    ),
    Misuse(
        "auto_save(name not a str)",
        st.one_of(not_a_str, st.just("")),
        lambda v: handler().auto_save(1, name=v),
        ("format string",),
    ),
    Misuse(
        "auto_save(name bad format)",
        bad_format,
        lambda v: handler().auto_save(1, name=v),
        ("format string",),
    ),
    Misuse("save_interval =", st.integers(max_value=-2), _setter("save_interval"), ("interval",)),
    Misuse("save_model_name =", bad_format, _setter("save_model_name"), ("format string",)),
    Misuse(
        "save_path =",
        st.one_of(st.none(), st.integers(), st.floats()),
        _setter("save_path"),
        ("save_path must be a path",),
    ),
    Misuse(
        "overwrite_last_saved =", not_bool, _setter("overwrite_last_saved"), ("must be a bool",)
    ),
    Misuse(
        "seed =",
        st.one_of(
            st.integers(max_value=-1),
            st.integers(min_value=2**32),
            st.text(max_size=3),
            st.floats(),
        ),
        _setter("seed"),
        ("seed must be an int",),
    ),
    # train
    Misuse(
        "train before configuration",
        st.sets(st.sampled_from(["optimizer", "loss", "data"]), min_size=1),
        lambda v: _unconfigured(v).train(1, progress_bar=False),
        ("Cannot train: missing",),
    ),
    Misuse(
        "train(epochs)",
        st.one_of(non_positive_int, non_int),
        _train(lambda v: {"epochs": v}),
        ("epochs",),
    ),
    Misuse(
        "train(validate_every)",
        st.one_of(
            st.integers(max_value=-1), st.floats(min_value=0.1), st.text(min_size=1, max_size=3)
        ),
        _train(lambda v: {"validate_every": v}),
        ("validate_every",),
    ),
    Misuse(
        "train(gradient_accumulation_steps)",
        st.one_of(non_positive_int, non_int),
        _train(lambda v: {"gradient_accumulation_steps": v}),
        ("gradient_accumulation_steps",),
    ),
    Misuse(
        "train(gradient_clipping_norm)",
        st.one_of(
            st.floats(max_value=0), st.just(math.inf), st.just(math.nan), st.text(max_size=3)
        ),
        _train(lambda v: {"gradient_clipping_norm": v}),
        ("gradient_clipping_norm",),
    ),
    Misuse(
        "train(ema_decay)",
        st.one_of(
            st.floats(min_value=1.0),
            st.floats(max_value=-1e-9),
            st.text(max_size=3),
            st.just(math.nan),
        ),
        _train(lambda v: {"ema_decay": v}),
        ("ema_decay",),
    ),
    Misuse(
        "train(debug_print_interval)",
        st.one_of(non_positive_int, st.floats(), st.text(max_size=3)),
        _train(lambda v: {"debug_print_interval": v}),
        ("debug_print_interval",),
    ),
    Misuse(
        "train(seed)",
        st.one_of(st.integers(max_value=-1), st.text(max_size=3)),
        _train(lambda v: {"seed": v}),
        ("seed must be an int",),
    ),
    Misuse(
        "train(trainer_kwargs unknown)",
        _unknown(set()),
        _train(lambda v: {"trainer_kwargs": v}),
        ("trainer_kwargs has", "does not take"),
    ),
    Misuse(
        "train(trainer_kwargs owned)",
        st.sampled_from(["max_epochs", "callbacks"]),
        _train(lambda v: {"trainer_kwargs": {v: 1}}),
        ("set by NNHandler.train",),
    ),
    Misuse(
        "train(trainer_kwargs not a dict)",
        not_a_dict,
        _train(lambda v: {"trainer_kwargs": v}),
        ("trainer_kwargs must be a dict",),
    ),
    # batches, per model type
    Misuse(
        "classification batch = bare tensor",
        st.just(_Bare),
        _fit_on("classification", lambda: _Bare()),
        ("classification batch must be",),
    ),
    Misuse(
        "classification batch = 1-tuple",
        st.integers(1, 3),
        _fit_on("classification", lambda: TensorDataset(X)),
        ("classification batch must",),
    ),
    Misuse(
        "regression batch = bare tensor",
        st.just(_Bare),
        _fit_on("regression", lambda: _Bare()),
        ("regression batch must be",),
    ),
    Misuse(
        "generative batch of the wrong width",
        st.just(5),
        _fit_on("generative", lambda: TensorDataset(torch.randn(16, 5)), AutoEncoder),
        ("shapes cannot be multiplied",),
    ),  # the user's model raises: passed through as is
    Misuse(
        "score_based without an SDE",
        st.just(None),
        lambda v: handler("score_based").train(1, progress_bar=False),
        ("without an SDE",),
    ),
    Misuse(
        "loss returns a vector",
        st.integers(1, 3),
        lambda v: _with_loss(lambda o, t: (o - o).sum(1) * v),
        ("must be a scalar",),
    ),
    Misuse(
        "loss returns a non-tensor",
        st.one_of(st.none(), st.text(max_size=3)),
        lambda v: _with_loss(lambda o, t: v),
        ("must return a scalar tensor",),
    ),
    # inference and generation
    Misuse(
        "predict(not a loader)",
        not_indexable,
        lambda v: handler().predict(v),
        ("predict expects a DataLoader",),
    ),
    Misuse(
        "sample() without an SDE",
        st.integers(1, 5),
        lambda v: handler().sample((2, 8), v),
        ("needs an SDE",),
    ),
    Misuse(
        "sample(shape)",
        st.one_of(st.integers(), st.lists(st.integers(max_value=0), min_size=1, max_size=3)),
        lambda v: _with_sde().sample(v, 2, bar=False),
        ("shape must",),
    ),
    Misuse(
        "sample(steps)",
        st.one_of(non_positive_int, st.floats(), st.text(max_size=2)),
        lambda v: _with_sde().sample((2, 8), v, bar=False),
        ("steps",),
    ),
    Misuse(
        "get_samples() without a sampler",
        st.integers(1, 5),
        lambda v: handler().get_samples(v),
        ("No sampler is set",),
    ),
    Misuse(
        "set_sde(not a class)",
        junk,
        lambda v: handler("score_based").set_sde(v),
        ("set_sde expects", "not usable as an SDE"),
    ),
    Misuse(
        "sde = not an SDE",
        junk.filter(lambda v: v is not None),
        _setter("sde", lambda: handler("score_based")),
        ("not usable as an SDE", "expects an SDE object"),
    ),
    Misuse(
        "set_sampler(not a class)",
        junk,
        lambda v: handler().set_sampler(v),
        ("set_sampler expects", "is not a Sampler"),
    ),
    Misuse(
        "sampler = not a Sampler",
        junk.filter(lambda v: v is not None),
        _setter("sampler"),
        ("is not a Sampler", "expects a Sampler object"),
    ),
    Misuse(
        "keep_eval_on_module(not a module)",
        junk.filter(lambda v: not _is_module(v)),
        lambda v: handler().keep_eval_on_module(v),
        ("expects an nn.Module",),
    ),
    Misuse(
        "freeze_module(not a module)",
        junk.filter(lambda v: not _is_module(v)),
        lambda v: handler().freeze_module(v),
        ("expects an nn.Module",),
    ),
    # checkpoints
    Misuse("save(not a path)", not_a_path, lambda v: handler().save(v), ("needs a file path",)),
    Misuse(
        "load(missing file)",
        identifiers,
        lambda v: NNHandler.load(f"{v}.pth"),
        ("not found",),
        (FileNotFoundError,),
    ),
    Misuse(
        "load(not a checkpoint)",
        st.binary(max_size=64),
        lambda v: _load_bytes(v),
        ("cannot be read as a checkpoint", "not an NNHandler checkpoint"),
    ),
    Misuse(
        "load(a tensor file)",
        st.integers(1, 4),
        lambda v: _load_object(torch.zeros(v)),
        ("not an NNHandler checkpoint",),
    ),
    Misuse(
        "load(a state_dict)",
        st.just(None),
        lambda v: _load_object(TinyNet().state_dict()),
        ("bare model state_dict", "initialize_from_checkpoint"),
    ),
    Misuse(
        "load(another model's checkpoint, strict)",
        st.integers(2, 6),
        lambda v: _load_other_model(v),
        ("do not fit",),
    ),
    Misuse(
        "initialize_from_checkpoint(model_class)",
        junk,
        lambda v: NNHandler.initialize_from_checkpoint("x.pth", v),
        ("model_class must be",),
    ),
]


def _unconfigured(skip: set[str]) -> NNHandler:
    h = NNHandler(TinyNet)
    if "optimizer" not in skip:
        h.set_optimizer(torch.optim.SGD, lr=0.1)
    if "loss" not in skip:
        h.set_loss_fn(nn.functional.cross_entropy)
    if "data" not in skip:
        h.set_train_loader(TensorDataset(X, Y), batch_size=8)
    return h


def _with_loss(loss) -> None:
    h = handler()
    h.set_loss_fn(loss)
    h.train(1, progress_bar=False)


def _with_sde() -> NNHandler:
    h = handler("score_based")
    h.set_sde(VESDE, sigma_min=0.01, sigma_max=1.0)
    return h


def _load_bytes(data: bytes) -> None:
    with open("junk.pth", "wb") as handle:
        handle.write(data)
    NNHandler.load("junk.pth")


def _load_object(obj: Any) -> None:
    torch.save(obj, "obj.pth")
    NNHandler.load("obj.pth")


def _load_other_model(hidden: int) -> None:
    NNHandler(TinyNet, hidden=hidden).save("other.pth")
    ckpt = torch.load("other.pth", weights_only=True)
    ckpt["model_kwargs"] = {"hidden": 16}
    torch.save(ckpt, "other.pth")
    NNHandler.load("other.pth", strict_load=True)


def _innermost(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return frames[-1].filename if frames else ""


def check_clear(case: Misuse, value: Any) -> None:
    with pytest.raises(case.types) as info:
        case.call(value)
    message = str(info.value)
    assert any(w.lower() in message.lower() for w in case.words), (case.name, value, message)
    # Nothing escapes from Lightning's internals: errors are raised (or re-raised) before it runs.
    assert "/lightning/" not in _innermost(info.value), (case.name, value, message)


@pytest.mark.parametrize("case", MISUSE_CASES, ids=[c.name for c in MISUSE_CASES])
@SETTINGS
@given(data=st.data())
def test_misuse_gets_a_clear_error(case, data):
    check_clear(case, data.draw(case.values, label=case.name))


def test_misuse_catalogue_size(capsys):
    names = {c.name for c in MISUSE_CASES}
    assert len(names) == len(MISUSE_CASES) >= 60
    with capsys.disabled():
        print(f"\n[reliability] distinct misuse cases covered: {len(names)}")
