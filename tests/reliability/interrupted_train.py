"""A training that waits to be interrupted: the test sends SIGINT or SIGTERM once OUT/marker exists.

Usage: ``python interrupted_train.py OUT``. TinyNet with Adam, 4 steps per epoch, 5 epochs asked.
After step MARK_STEP a Lightning callback writes OUT/marker and waits (up to 60 s) for a signal,
so the signal always lands at the same step. What the script sees goes to OUT/seen.json:

- ``except KeyboardInterrupt``: save ``OUT/interrupted.pth``, train one more epoch in the same
  process, save ``OUT/after.pth``, exit 0.
- any other exception (SIGTERM gives ``SystemExit``): recorded, then re-raised.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402
from models import TinyNet  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from nn_handler import NNHandler  # noqa: E402

MARK_STEP = 6  # the 2nd step of the 2nd epoch
STEPS_PER_EPOCH = 4


class WaitForSignal(Callback):
    def __init__(self, out: Path):
        self.out = out

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step != MARK_STEP:
            return
        tmp = self.out / "marker.tmp"
        tmp.write_text(str(trainer.global_step))
        tmp.rename(self.out / "marker")
        deadline = time.monotonic() + 60
        # SIGINT raises KeyboardInterrupt inside sleep; SIGTERM only sets Lightning's flag.
        while time.monotonic() < deadline and not trainer.received_sigterm:
            time.sleep(0.02)


def adam_steps(handler: NNHandler) -> list[int]:
    return sorted({int(s["step"]) for s in handler.optimizer.state_dict()["state"].values()})


def main(out: Path) -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16 * STEPS_PER_EPOCH, 8, generator=g)
    data = TensorDataset(x, (x[:, 0] > 0).long())
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.Adam, lr=1e-2)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.set_train_loader(data, batch_size=16, shuffle=True)
    waiter = WaitForSignal(out)
    handler.add_callback(waiter)
    seen: dict = {}
    try:
        handler.train(5, seed=0, progress_bar=False)
    except KeyboardInterrupt:
        seen.update(
            caught="KeyboardInterrupt",
            sigint_handler_restored=signal.getsignal(signal.SIGINT) is signal.default_int_handler,
            epochs_done=len(handler.train_losses),
            adam_steps=adam_steps(handler),
            device=str(next(handler.module.parameters()).device),
        )
        handler.remove_callback(waiter)  # defined in __main__: not for the checkpoint
        handler.save(str(out / "interrupted.pth"))
        handler.train(1, progress_bar=False)
        handler.save(str(out / "after.pth"))
        seen.update(adam_steps_after=adam_steps(handler))
    except BaseException as err:
        seen.update(caught=type(err).__name__, code=getattr(err, "code", None))
        raise
    finally:
        (out / "seen.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
