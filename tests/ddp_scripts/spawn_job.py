"""One training job under several launchers; a JSON report of what the main process holds after.

Usage: spawn_job.py OUT_DIR MODES, MODES a comma-separated list of
  torchrun                               the script runs under torchrun (rank 0 reports);
  ddp_spawn, ddp_fork, ddp_notebook      a plain ``python`` process; train() is given
                                         ``trainer_kwargs=dict(strategy=MODE, devices=2,
                                         accelerator="cpu")`` and 2 worker processes train;
  subprocess                             ``devices=2`` without a strategy: Lightning runs this
                                         script again as rank 1 (run it alone);
  crash                                  ddp_fork, then a train() whose rank 1 fails.

The job is tests/ddp_scripts/common.py's (same data, seeds, per-rank batch of 8), with a
scheduler, an EMA, an auto-saver, a native callback and a Lightning callback with state: train(4)
stopped after two epochs by a rank-0 callback, then train(1). Each mode writes OUT/<mode>.json.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import PER_RANK_BATCH, build, history  # noqa: E402
from spawn_parts import BatchCounter, Recorder, Stopper  # noqa: E402

from nn_handler import NNHandler  # noqa: E402
from nn_handler.callbacks import ProgressMonitor  # noqa: E402

EMA_DECAY = 0.9


def _flat(value):
    if isinstance(value, torch.Tensor):
        return value.detach().double().reshape(-1).tolist()
    if isinstance(value, dict):
        return {str(k): _flat(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_flat(v) for v in value]
    return value


def state_report(handler: NNHandler) -> dict:
    """What a train() leaves in a handler, as JSON."""
    optimizer = handler.optimizer.state_dict()
    return {
        "history": history(handler),
        "global_step": handler.run_state.global_step,
        "epochs_done": handler.run_state.epochs_done,
        "ema": _flat(handler.ema.state_dict()),
        "optimizer_state": _flat(optimizer["state"]),
        "param_groups": [
            {k: v for k, v in g.items() if k != "params"} for g in optimizer["param_groups"]
        ],
        "scheduler": _flat(handler.scheduler.state_dict()) if handler.scheduler else None,
        "weights": _flat(handler.module.state_dict()),
    }


def log_to_file(handler: NNHandler, path: Path) -> None:
    """The handler's log records to ``path`` on rank 0, as ``logger_mode="file"`` would."""
    logger = handler.logger
    if handler._rank != 0:
        return
    for old in list(logger.handlers):
        logger.removeHandler(old)
    file = logging.FileHandler(path, mode="w")
    file.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(file)
    logger.setLevel(logging.INFO)
    logger.disabled = False


def run(out: Path, mode: str) -> dict:
    distributed = mode == "torchrun"
    handler = build(use_distributed=distributed, batch_size=PER_RANK_BATCH)
    log_to_file(handler, out / f"{mode}.log")
    if handler._rank == 0:
        print(f"== {mode}", flush=True)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.8)
    saves = out / f"{mode}_autosave"
    handler.auto_save(1, save_path=str(saves), name="auto_{epoch:02d}", overwrite=True)
    stopper, recorder, counter = (
        Stopper(),
        Recorder(str(out / f"{mode}_epochs.txt")),
        BatchCounter(),
    )
    for callback in (stopper, recorder, counter, ProgressMonitor()):
        handler.add_callback(callback)
    kwargs = {}
    if mode.startswith("ddp_"):
        kwargs = {"strategy": mode, "devices": 2, "accelerator": "cpu"}
    elif mode == "subprocess":
        kwargs = {"devices": 2, "accelerator": "cpu"}
    handler.train(4, progress_bar=False, ema_decay=EMA_DECAY, trainer_kwargs=kwargs)
    after_first = {
        "epochs_done": handler.run_state.epochs_done,
        "step": handler.run_state.global_step,
    }
    handler.remove_callback(stopper)
    handler.train(1, progress_bar=False, ema_decay=EMA_DECAY, trainer_kwargs=kwargs)

    report = state_report(handler)
    saver = handler.run_state.saver
    report.update(
        place=[handler._rank, handler._world_size, handler._distributed],
        after_first=after_first,
        stopper=stopper.state_dict(),
        recorder=recorder.state_dict(),
        counter=counter.state_dict(),
        saver={
            "last_saved": os.path.basename(saver.last_saved or ""),
            "written": sorted(os.path.basename(p) for p in saver.written),
            "files": sorted(os.listdir(saves)) if handler._rank == 0 else None,
        },
        epoch_lines=(out / f"{mode}_epochs.txt").read_text().splitlines()
        if handler._rank == 0
        else None,
        log_lines=(out / f"{mode}.log").read_text().splitlines() if handler._rank == 0 else None,
    )
    path = out / f"{mode}.pth"
    handler.save(str(path))
    loaded = NNHandler.load(str(path), use_distributed=False, skip_callbacks=True)
    report["loaded"] = state_report(loaded)
    return report


def crash_on_rank_one(outputs, targets):
    """The loss, until rank 1 raises in its second batch."""
    crash_on_rank_one.calls += 1
    if torch.distributed.get_rank() == 1 and crash_on_rank_one.calls == 2:
        raise ZeroDivisionError("rank 1 fails on purpose")
    return torch.nn.functional.cross_entropy(outputs, targets)


def crash(out: Path) -> dict:
    """ddp_fork: train(1), then a train(2) whose rank 1 fails; the handler before and after."""
    kwargs = {"strategy": "ddp_fork", "devices": 2, "accelerator": "cpu"}
    handler = build(use_distributed=False, batch_size=PER_RANK_BATCH)
    handler.train(1, progress_bar=False, ema_decay=EMA_DECAY, trainer_kwargs=kwargs)
    before = state_report(handler)
    crash_on_rank_one.calls = 0
    handler.set_loss_fn(crash_on_rank_one)
    try:
        handler.train(2, progress_bar=False, ema_decay=EMA_DECAY, trainer_kwargs=kwargs)
        raised = None
    except Exception as err:  # noqa: BLE001 - reported
        raised = f"{type(err).__name__}: {err}"
    return {"before": before, "after": state_report(handler), "raised": raised, "place": [0]}


def main() -> None:
    out, modes = Path(sys.argv[1]), sys.argv[2].split(",")
    out.mkdir(parents=True, exist_ok=True)
    for mode in modes:
        report = crash(out) if mode == "crash" else run(out, mode)
        rank = report["place"][0]
        if rank == 0:
            (out / f"{mode}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
