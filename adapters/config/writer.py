"""A handler's setup → the Lightning CLI YAML (``nn-handler fit --config``) rebuilding it.

The config is one more reader of the :class:`Setup`: every field writes its
own entries (see ``_setup_fields``), keyed by their place in the config
(``model.loss``, ``trainer.accumulate_grad_batches``, ``data.train_dataset``...). What cannot be
written (a lambda, a class from ``__main__``, a TensorDataset of in-memory tensors, a frozen
submodule, ...) is reported: an error by default, or a warning and a ``null`` placeholder with
``strict=False``. Nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

import yaml

from ..._codecs.config_values import ConfigExportError, Report
from ..._env.atomic import atomic_write
from ..._state.runtime import Runtime
from ..._state.setup import Setup
from ..._state.train_options import TrainOptions
from ..fit.trainer_factory import accelerator_for, check_trainer_kwargs

__all__ = ["ConfigExportError", "build_config", "write_config"]

_DATAMODULE_PATH = "nn_handler.adapters.datamodule.HandlerDataModule"


def _options(setup: Setup, train_args: dict[str, Any]) -> TrainOptions:
    """The last ``train()``'s options with ``train_args`` (``train()``'s names) replacing some."""
    # Not dataclasses.asdict: it deep-copies trainer_kwargs (loggers, callbacks) for nothing.
    current = {f.name: getattr(setup.training, f.name) for f in dataclasses.fields(TrainOptions)}
    unknown = set(train_args) - set(current)
    if unknown:
        raise TypeError(
            f"export_config got {sorted(unknown)}, which train() does not take "
            f"(train arguments: epochs, seed, {', '.join(sorted(current))})."
        )
    current.update({k: v for k, v in train_args.items() if v is not None or k in _NULLABLE})
    current["validate_every"] = current["validate_every"] or 0
    return TrainOptions.checked(**current)


_NULLABLE = {"gradient_clipping_norm", "debug_print_interval"}


def _report_model_state(runtime: Runtime, report: Report) -> None:
    """Model-side settings the config has no key for."""
    if any(not p.requires_grad for p in runtime.module.parameters()):
        report.add("model", "freeze_module(...) (frozen parameters) cannot be written in a config")


def build_config(
    setup: Setup, runtime: Runtime, epochs: int = 1, seed: int | None = None, **train_args: Any
) -> tuple[dict[str, Any], list[str]]:
    """The CLI config for this setup trained as ``train(epochs, ...)``, and the problems found.

    ``train_args`` are :meth:`NNHandler.train`'s arguments; those not given are the last
    ``train()``'s. ``seed`` (default: the handler's) is both ``seed_everything`` (seeds before
    the model is built) and ``model.seed`` (seeds again right before training, as
    ``train(seed=...)`` does).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}.")
    options = _options(setup, train_args)
    check_trainer_kwargs(options.trainer_kwargs)
    seed = setup.seed if seed is None else seed
    setup = setup.replace(training=options, seed=seed)
    report = Report()
    entries = setup.to_config(report)
    _report_model_state(runtime, report)

    accelerator, devices = accelerator_for(runtime.device)
    amp = options.use_amp and runtime.device.type == "cuda"  # as train(): AMP needs CUDA
    trainer: dict[str, Any] = {
        "accelerator": accelerator,
        "devices": devices,
        "max_epochs": int(epochs),
        "precision": "16-mixed" if amp else "32-true",
        # train() never runs Lightning's sanity check (it would also draw random numbers).
        "num_sanity_val_steps": 0,
        "enable_model_summary": False,
    }
    model: dict[str, Any] = {}
    data: dict[str, Any] = {}
    for key, value in entries.items():
        section, _, name = key.partition(".")
        {"trainer": trainer, "model": model, "data": data}[section][name] = value
    config = {
        "seed_everything": seed if seed is not None else True,
        "trainer": trainer,
        "model": model,
        "data": {"class_path": _DATAMODULE_PATH, "init_args": data},
    }
    return config, report.problems


def write_config(
    setup: Setup, runtime: Runtime, path: str, strict: bool = True, **train_args: Any
) -> None:
    """Write :func:`build_config`'s YAML to ``path`` (atomically).

    Raises:
        ConfigExportError: something cannot be written by import path (``strict=True``); with
            ``strict=False`` a warning lists it and the YAML holds ``null`` in its place.
    """
    config, problems = build_config(setup, runtime, **train_args)
    if problems and strict:
        raise ConfigExportError(problems)
    header = [
        f"# Lightning CLI config written by NNHandler.export_config for {setup.model.name}.",
        f"# Run it with:  nn-handler fit --config {os.path.basename(os.fspath(path))}",
    ]
    if problems:
        warnings.warn(
            str(ConfigExportError(problems)).splitlines()[0] + " " + "; ".join(problems),
            UserWarning,
            stacklevel=3,
        )
        header.append("# NOT WRITABLE (null below; fill in by hand):")
        header.extend(f"#   {p}" for p in problems)
    text = "\n".join(header) + "\n" + yaml.safe_dump(config, sort_keys=False)
    atomic_write(os.fspath(path), lambda f: f.write(text.encode("utf-8")), what="config")
