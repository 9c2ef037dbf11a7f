"""The ``nn-handler`` command: Lightning's CLI over an NNHandler setup described in YAML.

``nn-handler fit --config run.yaml`` (or ``python -m nn_handler fit ...``) builds the same
handler a Python script would (model class by import path, loss, metrics, optimizer, scheduler,
native callbacks, auto-save) and fits it with a ``lightning.Trainer`` configured by the
``trainer:`` section. Subcommands: ``fit``, ``validate``, ``test``, ``predict``.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ModelSummary
from lightning.pytorch.cli import LightningCLI, LRSchedulerCallable, OptimizerCallable
from torch import nn

from .._env.atomic import atomic_save
from .._state.setup import Setup
from ..callbacks.base import Callback
from ..checkpoint._scan import check_file
from ..generative.sde import SDE
from ..handler import NNHandler
from ..sampler import Sampler
from .config.auto_save import AutoSave
from .config.errors import ConciseArgumentParser, exit_on_key_problems
from .config.imports import cwd_on_path, exit_on_import_problems
from .config.keys import option_names
from .config.report import HandlerModelSummary, fit_report
from .datamodule import HandlerDataModule
from .export import ExportedHandlerModule

_DATAMODULE_PATH = f"{HandlerDataModule.__module__}.{HandlerDataModule.__qualname__}"

__all__ = [
    "AutoSave",
    "setup_from_arguments",
    "HandlerCLIModule",
    "HandlerDataModule",
    "NNHandlerCLI",
    "PredictionWriter",
    "main",
]


def setup_from_arguments(arguments: dict[str, Any], trainer: Any = None) -> Setup:
    """The :class:`Setup` that :class:`HandlerCLIModule`'s arguments describe.

    The same reader as for every config: each setup field reads its own ``model.<name>`` keys;
    with ``trainer``, the training options are read from the Trainer too.
    """
    args: dict[str, Any] = {f"model.{k}": v for k, v in arguments.items()}
    if trainer is not None:
        args["trainer"] = trainer
    return Setup.from_config(args)


def _build_handler(arguments: dict[str, Any]) -> Any:
    """The NNHandler these CLI arguments describe."""
    # Lightning places and distributes the model; the handler must not start DDP itself.
    return NNHandler.from_setup(setup_from_arguments(arguments), use_distributed=False)


class HandlerCLIModule(ExportedHandlerModule):
    """An NNHandler described by plain arguments, so the Lightning CLI can build it from YAML.

    It builds an :class:`~nn_handler.NNHandler` with exactly these settings (available as
    ``module.handler``) and runs it as :meth:`NNHandler.to_lightning_module` does, so training
    is the same as ``handler.train``. Arguments mirror the handler's configuration methods.

    Args:
        model: the model class with its init args (``class_path``/``init_args`` in YAML).
        loss: a loss function by import path, or a loss class with init args.
        model_type: how batches are read (``classification``, ``regression``, ``generative``,
            ``score_based``).
        optimizer: optimizer class with init args (the model's parameters are added).
        scheduler: LR scheduler class with init args, stepped once per epoch, or ``None``.
        loss_kwargs: keyword arguments given to the loss on every call.
        pass_epoch_to_loss: also pass ``epoch=`` to the loss.
        metrics: ``name -> fn(outputs, targets)`` (import path) or a torchmetrics class.
        callbacks: native ``nn_handler`` callbacks (Lightning callbacks go in
            ``trainer.callbacks``).
        auto_save: the AutoSaver's settings, or ``None`` for no auto-save.
        save_on_last_epoch: the AutoSaver also saves after the last epoch.
        ema_decay: keep an exponential moving average of the weights (0 disables).
        seed: seed every generator right before training, as ``train(seed=...)`` does.
        debug_print_interval: log the batch loss every N training batches.
        save_model_code: keep the model's source text in checkpoints.
        sde: an ``nn_handler.generative.sde.SDE`` subclass with init args (score-based models).
        sampler: a :class:`~nn_handler.Sampler` class with init args.
        ddp_kwargs: options for the DDP strategy of a handler rebuilt from this setup.
        epoch_train_and_val_pbar: show per-batch train/validation bars under the epoch bar.
        use_amp: mixed precision with gradient scaling on CUDA (the Trainer's ``precision``
            decides what runs; this records the setting for checkpoints).
        steps_per_execution: batches per training step in ``handler.train()`` (``"auto"`` or
            an int; recorded for checkpoints: the CLI's Trainer runs this module one batch per
            step, with the Trainer's accumulation and clipping).
    """

    def __init__(
        self,
        model: Callable[[], nn.Module],
        loss: Callable,
        model_type: Literal["classification", "regression", "generative", "score_based"] = (
            "classification"
        ),
        optimizer: OptimizerCallable = torch.optim.Adam,
        scheduler: LRSchedulerCallable | None = None,
        loss_kwargs: dict[str, Any] | None = None,
        pass_epoch_to_loss: bool = False,
        metrics: dict[str, Callable] | None = None,
        callbacks: list[Callback] | None = None,
        auto_save: AutoSave | None = None,
        save_on_last_epoch: bool = True,
        ema_decay: float = 0.0,
        seed: int | None = None,
        debug_print_interval: int | None = None,
        save_model_code: bool = False,
        sde: Callable[[], SDE] | None = None,
        sampler: Callable[[], Sampler] | None = None,
        ddp_kwargs: dict[str, Any] | None = None,
        epoch_train_and_val_pbar: bool = False,
        use_amp: bool = False,
        steps_per_execution: int | Literal["auto"] = "auto",
    ):
        arguments = {
            name: value
            for name, value in locals().items()
            if name in inspect.signature(HandlerCLIModule.__init__).parameters and name != "self"
        }
        handler = _build_handler(arguments)
        super().__init__(handler, debug_print_interval, save_on_last_epoch)
        self.arguments = arguments
        self.train_seed = seed

    def on_fit_start(self) -> None:
        if self.train_seed is not None:
            self.handler.seed = self.train_seed
        super().on_fit_start()


class PredictionWriter(BasePredictionWriter):
    """Saves the outputs of ``predict`` to ``path`` (``torch.save``; tensors concatenated).

    Args:
        path: the output file, a local path or an fsspec URL (its directory is created).
    """

    def __init__(self, path: str = "predictions.pt"):
        super().__init__(write_interval="epoch")
        self.path = path

    def write_on_epoch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        predictions: Any,  # a Sequence; replaced by one tensor when they all are
        batch_indices: Sequence[Any],
    ) -> None:
        if predictions and isinstance(predictions[0], list):  # several predict dataloaders
            predictions = [p for group in predictions for p in group]
        if predictions and all(isinstance(p, torch.Tensor) for p in predictions):
            predictions = torch.cat([p.detach().cpu() for p in predictions])
        if trainer.is_global_zero:  # atomic; a local path or an fsspec URL
            atomic_save(predictions, self.path)


class NNHandlerCLI(LightningCLI):
    """``LightningCLI`` over :class:`HandlerCLIModule` and any LightningDataModule."""

    def __init__(self, args: Any = None, run: bool = True, **kwargs: Any):
        kwargs.setdefault("model_class", HandlerCLIModule)
        kwargs.setdefault("datamodule_class", L.LightningDataModule)
        kwargs.setdefault("subclass_mode_data", True)
        # The optimizer and scheduler live under ``model:``, as on the handler.
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault(
            "trainer_defaults",
            {
                # train() never runs a sanity check; off, seeded runs also stay identical.
                "num_sanity_val_steps": 0,
                # The handler logs once per epoch; Lightning's default of 50 only warns that
                # short epochs log nothing per step (nothing is logged per step anyway).
                "log_every_n_steps": 1,
            },
        )
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        # Errors are the message alone (and a suggestion), not the 66-line usage first.
        kwargs.setdefault("parser_class", ConciseArgumentParser)
        # Also under ``python -m nn_handler``, whose argv[0] is ``__main__.py``.
        kwargs.setdefault("parser_kwargs", {"prog": "nn-handler"})
        super().__init__(args=args, run=run, **kwargs)

    def parse_arguments(self, parser: Any, args: Any) -> None:
        # Before jsonargparse: a class the config names but Python cannot import, then a key
        # nothing takes, is said first, by name, file and line.
        argv = sys.argv[1:] if args is None else args
        if isinstance(argv, (list, tuple)):
            argv = [str(a) for a in argv]
            exit_on_import_problems(argv)
            command = next((a for a in argv if a in self.subcommands()), None)
            # The subcommand's parser, which LightningCLI keeps by name, knows its options.
            options = parser if command is None else self._subcommand_parsers[command]
            exit_on_key_problems(argv, options, command or "nn-handler")
            if isinstance(parser, ConciseArgumentParser):
                parser.known_options = frozenset(option_names(options))
        super().parse_arguments(parser, args)

    def _parse_ckpt_path(self) -> None:
        # LightningCLI would torch.load ``--ckpt_path`` here and let its ``hyper_parameters``
        # replace the config's model (a class path the file chose, imported and built). A
        # checkpoint is data: the config (code the user runs) says what is built; the file is
        # checked before anything reads it, and Lightning reads it again only to resume.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and os.path.isfile(ckpt_path):
            check_file(os.fspath(ckpt_path))

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        # Lightning's default summary (added when the config names none) shows the generated
        # module's internals; the handler's shows the user's model.
        trainer.callbacks = [  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
            HandlerModelSummary() if type(c) is ModelSummary and not _configured(c, self) else c
            for c in trainer.callbacks  # type: ignore[attr-defined]  # Lightning: undeclared Trainer attribute
        ]
        return trainer

    def after_fit(self) -> None:
        """Print the last epoch's summary and where the files went (global rank 0)."""
        if self.trainer.is_global_zero:
            for line in fit_report(self.trainer, self.model):
                print(line, flush=True)

    def add_arguments_to_parser(self, parser: Any) -> None:
        # ``data:`` may omit ``class_path``: HandlerDataModule is the default.
        parser.set_defaults({"data": {"class_path": _DATAMODULE_PATH}})


def _configured(callback: Any, cli: NNHandlerCLI) -> bool:
    """Whether ``callback`` is one the config's ``trainer.callbacks`` named (not a default)."""
    trainer = cli._get(cli.config_init, "trainer", default={})
    named = trainer.get("callbacks") or []
    return any(c is callback for c in (named if isinstance(named, list) else [named]))


def main(args: Any = None) -> None:
    """Entry point of the ``nn-handler`` console script and ``python -m nn_handler``.

    The current directory comes first on ``sys.path``, as with ``python -m``, so the modules
    a config names are found next to it.
    """
    cwd_on_path()
    # Lightning's own deprecation notice about torch's pytree API says nothing to a user.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    NNHandlerCLI(args=args)
