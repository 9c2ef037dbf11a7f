"""Callbacks of spawn_job.py, in a module of their own so checkpoints can name them."""

from __future__ import annotations

import lightning as L
from common import StopOnRankZero

from nn_handler.callbacks import Callback


class Stopper(StopOnRankZero):
    """common.py's rank-0 stopper, counting the stops it asked for."""

    def __init__(self):
        super().__init__()
        self.stops = 0

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self.stops += int(self.handler._stop_training)

    def state_dict(self):
        return {"stops": self.stops}

    def load_state_dict(self, state):
        self.stops = state["stops"]


class Recorder(Callback):
    """Records each epoch and the handler's place as the callback sees it; rank 0 writes a line."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.epochs: list[int] = []
        self.places: list[list] = []

    def on_epoch_end(self, epoch, logs=None):
        h = self.handler
        self.epochs.append(int(logs["epoch"]))
        self.places.append([h._rank, h._world_size, h._distributed])
        if h._rank == 0:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(f"rank {h._rank} of {h._world_size}: epoch {logs['epoch']}\n")

    def state_dict(self):
        return {"epochs": list(self.epochs), "places": [list(p) for p in self.places]}

    def load_state_dict(self, state):
        self.epochs, self.places = list(state["epochs"]), [list(p) for p in state["places"]]


class BatchCounter(L.Callback):
    """A Lightning callback with state: training batches seen on its rank."""

    def __init__(self):
        self.batches = 0

    def on_train_batch_end(self, *args, **kwargs):
        self.batches += 1

    def state_dict(self):
        return {"batches": self.batches}

    def load_state_dict(self, state_dict):
        self.batches = state_dict["batches"]
