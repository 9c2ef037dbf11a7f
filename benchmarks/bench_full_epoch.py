"""Job 3 — a full epoch: validation, an accuracy metric, a checkpoint and TensorBoard every epoch.

Target: nn_handler <= 1.15x the raw loop doing the same work by hand. The raw loop validates,
computes accuracy on the device, writes TensorBoard scalars with ``SummaryWriter`` and saves the
model and optimizer state atomically (temp file, fsync, rename) every epoch; plain Lightning uses
``self.log(on_step=True, on_epoch=True)``, a torchmetrics accuracy, its ``TensorBoardLogger`` and a
``ModelCheckpoint(every_n_epochs=1, save_top_k=-1)``; nn_handler uses ``add_metric``,
``auto_save(1, ...)`` and its ``TensorBoardLogger`` callback.

``python -m benchmarks.bench_full_epoch [--reps N] [--epochs E] [--steps-per-execution K]
[--also-k1]``
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import tempfile
from typing import Any

import torch
from torch.utils.data import DataLoader

from ._common import (
    MLP,
    TINY,
    EpochClock,
    LitClassifier,
    Report,
    accuracy,
    alternate,
    atomic_torch_save,
    base_parser,
    bench_env,
    make_handler,
    plain_trainer,
    raw_train,
    step_samples,
    synthetic,
)
from ._steps import add_handler_arguments, handler_options

TARGET = 1.15


def _available() -> dict[str, str | None]:
    """Why each optional part cannot run yet (None when it can)."""
    out: dict[str, str | None] = {"autosave": None, "tensorboard": None}
    if importlib.util.find_spec("nn_handler.adapters.hooks.autosaver") is None:
        out["autosave"] = "nn_handler.adapters.hooks.autosaver is not importable yet"
    try:
        from nn_handler.callbacks import TensorBoardLogger  # noqa: F401
    except ImportError as err:
        out["tensorboard"] = f"nn_handler.callbacks.TensorBoardLogger is not importable ({err})"
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--val-samples", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64)
    add_handler_arguments(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.val_samples, args.reps, args.epochs = 256, 128, 1, 2
    with bench_env():
        return _run(args)


def _run(args: Any) -> dict[str, Any]:
    missing = _available()
    save, tb = missing["autosave"] is None, missing["tensorboard"] is None
    train = synthetic(args.samples, TINY[0], TINY[-1], seed=0)
    val = synthetic(args.val_samples, TINY[0], TINY[-1], seed=1)
    steps = math.ceil(len(train) / args.batch)
    parts = (
        ["validation", "accuracy"]
        + (["checkpoint"] if save else [])
        + (["TensorBoard"] if tb else [])
    )
    report = Report(
        "full_epoch",
        f"MLP {'-'.join(map(str, TINY))}, batch {args.batch}, {len(train)} train + {len(val)} "
        f"val samples ({steps} steps/epoch), every epoch: {', '.join(parts)}; nn_handler "
        f"steps_per_execution={args.steps_per_execution}",
        args.json,
    )
    for part, why in missing.items():
        if why:
            report.note(f"{part} left out of all three ways: {why}")

    def loader(ds: Any, shuffle: bool) -> DataLoader:
        return DataLoader(ds, batch_size=args.batch, shuffle=shuffle)

    def raw() -> dict[str, list[float]]:
        from torch.utils.tensorboard import SummaryWriter

        out = tempfile.mkdtemp(prefix="bench_raw_")
        torch.manual_seed(0)
        model = MLP(TINY)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        writer = SummaryWriter(f"{out}/tb") if tb else None

        def epoch_end(epoch: int, values: dict[str, float]) -> None:
            if writer is not None:
                for key, value in values.items():
                    writer.add_scalar(key, value, epoch + 1)
            if save:
                state = {
                    "model_state_dict": model.state_dict(),
                    "optimizer_state_dict": opt.state_dict(),
                    "epoch": epoch + 1,
                }
                atomic_torch_save(state, f"{out}/model_epoch{epoch + 1:02d}.pth")

        try:
            stamps = raw_train(
                model,
                opt,
                loader(train, True),
                args.epochs,
                val_loader=loader(val, False),
                epoch_end=epoch_end,
            )
            return step_samples(stamps, steps)
        finally:
            if writer is not None:
                writer.close()
            shutil.rmtree(out, ignore_errors=True)

    def lightning() -> dict[str, list[float]]:
        from lightning.pytorch.callbacks import ModelCheckpoint
        from lightning.pytorch.loggers import TensorBoardLogger

        out = tempfile.mkdtemp(prefix="bench_pl_")
        torch.manual_seed(0)
        module = LitClassifier(TINY, with_accuracy=True)
        clock = EpochClock()
        callbacks: list[Any] = [clock]
        if save:
            callbacks.append(ModelCheckpoint(dirpath=out, every_n_epochs=1, save_top_k=-1))
        trainer = plain_trainer(
            args.epochs,
            callbacks,
            logger=TensorBoardLogger(out) if tb else False,
            enable_checkpointing=save,
            default_root_dir=out,
        )
        try:
            trainer.fit(module, loader(train, True), loader(val, False))
            return step_samples(clock.stamps, steps)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def handler(k: str | int = args.steps_per_execution) -> dict[str, list[float]]:
        out = tempfile.mkdtemp(prefix="bench_nn_")
        h = make_handler(TINY, train, {"batch_size": args.batch, "shuffle": True})
        h.set_val_loader(val, batch_size=args.batch)
        h.add_metric("accuracy", accuracy)
        if save:
            h.auto_save(1, save_path=out, name="model_epoch{epoch:02d}")
        if tb:
            from nn_handler.callbacks import TensorBoardLogger

            h.add_callback(TensorBoardLogger(log_dir=f"{out}/tb"))
        clock = EpochClock()
        h.add_callback(clock)
        try:
            h.train(args.epochs, progress_bar=False, **handler_options(k))
            return step_samples(clock.stamps, steps)
        finally:
            shutil.rmtree(out, ignore_errors=True)

    ways = {"raw": raw, "lightning": lightning, "nn_handler": handler}
    if args.also_k1:
        ways["nn_handler_k1"] = lambda: handler(1)
    medians = report.times(alternate(ways, args.reps))
    report.standard_ratios(medians, TARGET)
    if args.also_k1:
        w, c = medians["wall"], medians["cpu"]
        report.ratio(
            "nn_handler_k1/raw", w["nn_handler_k1"] / w["raw"], c["nn_handler_k1"] / c["raw"]
        )
    return report.finish()


if __name__ == "__main__":
    main()
