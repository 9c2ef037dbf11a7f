"""``ModelCheckpoint``: save the handler (or the model's weights) when a value improves."""

from __future__ import annotations

import os
import warnings
from typing import Any

from .._env.write_guard import checked_destination
from ._common import Monitor, MonitoredValue, atomic_torch_save, bare_module, is_rank_zero
from .base import Callback

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(MonitoredValue, Callback):
    """Save a checkpoint at the end of an epoch, every epoch or only when ``monitor`` improves.

    Args:
        filepath: file name template formatted with the epoch ``logs`` (e.g.
            ``"ckpt/best_{epoch:02d}_{val_loss:.3f}"``); ``.pth`` is appended when absent. A bare
            name (``"best"``) saves in the working directory; a directory (``"."``, ``"out/"``, or
            an existing folder) saves ``best_model.pth`` (``save_best_only``) or
            ``model_epoch{epoch:02d}.pth`` inside it.
        monitor: the ``logs`` key compared between epochs (``"val_loss"``, ``"val_accuracy"``…).
        mode: ``"min"`` or ``"max"``: whether smaller or larger values are better.
        save_best_only: save only when ``monitor`` improves on the best value so far; else every
            epoch.
        save_weights_only: write only the bare model's ``state_dict`` instead of the complete
            handler checkpoint (``handler.save``).
        verbose: 1 prints a line on each save, 2 also when the value did not improve.

    Epochs whose monitored ``val_*`` value is NaN (validation did not run) are skipped. Under DDP
    the decision is the same on every rank (the logs are aggregated); rank 0 writes.
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str] = ".",
        monitor: str = "val_loss",
        mode: str = "min",
        save_best_only: bool = True,
        save_weights_only: bool = False,
        verbose: int = 0,
    ):
        super().__init__()
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(
                f"ModelCheckpoint: filepath must be a str, got {type(filepath).__name__}."
            )
        self.filepath = os.fspath(filepath)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.verbose = int(verbose)
        self._monitor = Monitor("ModelCheckpoint", monitor, mode)
        self.best_path: str | None = None
        self.last_path: str | None = None
        self._warned_format = False

    # ---------------------------------------------------------------- paths
    def _template(self) -> str:
        path = self.filepath
        if path in ("", ".") or path.endswith(("/", os.sep)) or os.path.isdir(path):
            name = "best_model" if self.save_best_only else "model_epoch{epoch:02d}"
            path = os.path.join(path or ".", name)
        return path

    def format_path(self, logs: dict[str, Any]) -> str:
        """The file this epoch's ``logs`` would be saved to."""
        template = self._template()
        try:
            path = template.format(**logs)
        except (KeyError, IndexError, ValueError) as err:
            fallback = os.path.join(os.path.dirname(template), "model_epoch{epoch:02d}")
            if not self._warned_format:
                self._warned_format = True
                warnings.warn(
                    f"ModelCheckpoint: cannot format filepath {self.filepath!r} with the logs "
                    f"({type(err).__name__}: {err}); saving as {fallback!r} instead. Use keys "
                    f"from the logs: {', '.join(logs)}.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            path = fallback.format(epoch=logs.get("epoch", 0))
        return path if path.endswith(".pth") else path + ".pth"

    # ---------------------------------------------------------------- hooks
    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = dict(logs or {})
        logs.setdefault("epoch", epoch + 1)
        path = checked_destination(
            self.format_path(logs), self.write_roots, "ModelCheckpoint's checkpoint"
        )
        if not self.save_best_only:
            self._say(1, f"Epoch {logs['epoch']}: saving model to {path}")
            self._save(path)
            return
        value = self._monitor.current(logs)
        if value is None:
            return
        if self._monitor.improved(value):
            previous = self._monitor.best
            self._monitor.best = value
            self._say(
                1,
                f"Epoch {logs['epoch']}: {self.monitor} improved from {previous:.5f} to "
                f"{value:.5f}, saving model to {path}",
            )
            self.best_path = path
            self._save(path)
        else:
            message = f"{self.monitor} did not improve from {self.best:.5f}"
            self._say(2, f"Epoch {logs['epoch']}: {message}")

    def _say(self, level: int, message: str) -> None:
        logger = getattr(self.handler, "logger", None)
        if logger is not None:
            logger.info("ModelCheckpoint: %s", message)
        if self.verbose >= level and is_rank_zero(self.handler):
            print(message)

    def _save(self, path: str) -> None:
        path = checked_destination(path, self.write_roots, "ModelCheckpoint's checkpoint")
        self.last_path = path
        if self.save_weights_only:
            if is_rank_zero(self.handler):
                atomic_torch_save(bare_module(self.handler).state_dict(), path)
            return
        if self.handler is None:
            raise RuntimeError("ModelCheckpoint has no handler: add it with handler.add_callback.")
        directory = os.path.dirname(path)
        if directory and is_rank_zero(self.handler):
            os.makedirs(directory, exist_ok=True)
        # Every rank calls save: the handler has rank 0 write while the others wait.
        self.handler.save(path)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "best": float(self.best),
            "best_path": self.best_path,
            "last_path": self.last_path,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = (state_dict.get("monitor", self.monitor), state_dict.get("mode", self.mode))
        if saved != (self.monitor, self.mode):
            warnings.warn(
                f"ModelCheckpoint: the saved state monitors {saved[0]!r} ({saved[1]}) "
                f"but this callback monitors {self.monitor!r} ({self.mode}); "
                "the saved best value is not restored.",
                RuntimeWarning,
                stacklevel=2,
            )
        else:
            best = state_dict.get("best")
            self._monitor.best = float(best) if best is not None else self._monitor.best
        self.best_path = state_dict.get("best_path", self.best_path)
        self.last_path = state_dict.get("last_path", self.last_path)
