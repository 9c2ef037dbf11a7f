"""A 2-process torchrun job that auto-saves every epoch for a long time, until it is signalled.

Usage: sigterm_job.py OUT_DIR. Each rank writes its process id to ``OUT_DIR/rank<r>.pid``; rank 1
creates ``OUT_DIR/rank1.ready`` at the end of its second epoch, just before the AutoSaver's
barrier, and the test then sends it SIGTERM.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import TinyNet  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from nn_handler import NNHandler  # noqa: E402
from nn_handler.callbacks import Callback  # noqa: E402


class Announce(Callback):
    """At the end of the second epoch rank 1 says it is there while rank 0 takes 5 s longer, so
    that rank 1 is waiting at the AutoSaver's barrier when the test signals it."""

    def __init__(self, out: Path):
        super().__init__()
        self.out = out

    def on_epoch_end(self, epoch, logs=None):
        if epoch != 1:
            return
        if int(os.environ["RANK"]) == 0:
            time.sleep(5)
        else:
            (self.out / "rank1.ready").touch()


def main() -> None:
    out = Path(sys.argv[1])
    # Every rank's pid, so that the test can end a job that hangs (workers have own sessions).
    (out / f"rank{os.environ['RANK']}.pid").write_text(str(os.getpid()))
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    data = TensorDataset(x, (x[:, 0] > 0).long())
    handler = NNHandler(TinyNet)
    handler.set_train_loader(data, batch_size=4)
    handler.set_optimizer(torch.optim.SGD, lr=0.01)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.auto_save(1, save_path=str(out / "ck"), overwrite=True)
    handler.add_callback(Announce(out))
    handler.train(10_000, progress_bar=False)  # never ends by itself within the test


if __name__ == "__main__":
    main()
