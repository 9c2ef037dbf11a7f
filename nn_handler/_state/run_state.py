"""What training produced: one mutable object with ``state_dict()`` / ``load_state_dict()``.

The :class:`Setup` says what the user configured; a :class:`RunState` holds
what the runs made of it: the history, the optimizer-step counter, the stop flag callbacks set,
the EMA weights, the AMP scaler, and the auto-saver's bookkeeping. It changes through its own
methods, so a worker process can send it back to the main process as one object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .._env import storage as _storage
from .._ops.ema import ExponentialMovingAverage
from ..history import History

__all__ = ["RunState", "SaverBookkeeping", "file_identity"]


def file_identity(path: str) -> tuple[Any, ...] | None:
    """The identity of the file now at ``path`` (see :func:`nn_handler._env.storage.identity`: local
    ``(device, inode, size, mtime_ns)``, a remote store's size and write marks), or None.

    Two writes of one name are two identities: an atomic write replaces the inode, a rewrite in
    place changes the size or the modification time, a new upload gets a new ETag or time.
    """
    return _storage.identity(path)


@dataclass
class SaverBookkeeping:
    """The auto-saves written by this process: the only files the AutoSaver may delete.

    A file is ours to delete only while it is the very file we wrote: its identity
    (:func:`file_identity`) is recorded right after our write and must still match when we
    delete. Another process's rewrite of the same name (two runs auto-saving into one folder)
    has another identity and survives. A path recorded without an identity (written by another
    rank, or handed over by an older worker) is never deleted.

    Never restored from a file: what a checkpoint claims to have written is not ours to delete.
    It travels whole only between a worker process and its parent (``RunState.worker_state``).
    """

    last_saved: str | None = None
    written: set[str] = field(default_factory=set)
    identities: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def record(self, path: str) -> None:
        """``path`` is (about to be) our latest auto-save; :meth:`stamp` it once written."""
        self.last_saved = path
        self.written.add(_storage.location(path))
        self.identities.pop(_storage.location(path), None)

    def stamp(self, path: str) -> None:
        """Remember the identity of the file just written at ``path`` (after :meth:`record`)."""
        identity = file_identity(path)
        if identity is not None:
            self.identities[_storage.location(path)] = identity

    def forget(self, path: str) -> None:
        self.written.discard(_storage.location(path))
        self.identities.pop(_storage.location(path), None)
        if self.last_saved == path:
            self.last_saved = None

    def wrote(self, path: str) -> bool:
        return _storage.location(path) in self.written

    def may_delete(self, previous: str, new: str, save_path: str) -> bool:
        """Whether replacing ``previous`` by ``new`` may remove ``previous``: only a different
        file inside ``save_path`` that is still the very file this process wrote."""
        where = _storage.location(previous)  # one name per place: file:// URLs are local paths
        inside = _storage.folder_of(where) == _storage.location(save_path)
        different = where != _storage.location(new)
        recorded = self.identities.get(where)
        same_file = recorded is not None and file_identity(where) == recorded
        return inside and different and self.wrote(previous) and same_file

    def reset(self) -> None:
        """A new auto-save configuration starts a new series: nothing earlier is replaced."""
        self.last_saved = None

    def state(self) -> dict[str, Any]:
        """Plain data for :meth:`load_state`."""
        return {
            "last_saved": self.last_saved,
            "written": sorted(self.written),
            "identities": {path: list(i) for path, i in self.identities.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Become what :meth:`state` described; a state without identities deletes nothing."""
        self.last_saved = state["last_saved"]
        self.written = set(state["written"])
        self.identities = {
            path: tuple(i)
            for path, i in (state.get("identities") or {}).items()
            if path in self.written
        }


class RunState:
    """The state one or more ``train()`` calls leave behind (see the module docstring).

    Every field is read through a property and changed only through a method below, so the
    ways a run state can change are listed here (an assignment such as ``state.ema = x`` raises
    ``AttributeError``).

    Attributes:
        history: per-epoch losses and metrics.
        global_step: optimizer steps taken so far, across ``train()`` calls.
        stop_requested: set by a callback (``handler._stop_training = True``) to end training
            after the current epoch.
        ema: the exponential moving average of the weights, or ``None``.
        ema_decay: the decay ``ema`` averages with (0.0 without one).
        grad_scaler: the CUDA AMP ``GradScaler`` kept across ``train()`` calls, or ``None``.
        saver: which auto-saves this process wrote.
        loader_rng: generator states of the loaders, read from a checkpoint and given to the
            loaders at the next ``train()``.
        loaded_loader_kwargs: the loader arguments a loaded checkpoint recorded (datasets are
            not stored; this tells the user how the run read them).
        datamodule_state: a loaded checkpoint's data-module ``state_dict``, given to the data
            module of the next ``set_datamodule``.
        resume_point: read from a checkpoint written inside an epoch: Lightning's fit-loop state
            (``fit_loop``) and the epoch's partial sums (``train_stats``), handed to the next
            ``train()``, which continues that epoch.
    """

    __slots__ = (
        "_history",
        "_global_step",
        "_stop_requested",
        "_ema",
        "_ema_decay",
        "_grad_scaler",
        "_saver",
        "_loader_rng",
        "_loaded_loader_kwargs",
        "_resume_point",
        "_datamodule_state",
    )

    def __init__(self) -> None:
        self._history = History()
        self._global_step = 0
        self._stop_requested = False
        self._ema: ExponentialMovingAverage | None = None
        self._ema_decay = 0.0
        self._grad_scaler: torch.amp.GradScaler | None = None
        self._saver = SaverBookkeeping()
        self._loader_rng: dict[str, Any] | None = None
        self._loaded_loader_kwargs: dict[str, Any] = {}
        self._resume_point: dict[str, Any] | None = None
        self._datamodule_state: dict[str, Any] | None = None

    # ------------------------------------------------------------- reading
    @property
    def history(self) -> History:
        return self._history

    @property
    def global_step(self) -> int:
        return self._global_step

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    @property
    def ema(self) -> ExponentialMovingAverage | None:
        return self._ema

    @property
    def ema_decay(self) -> float:
        return self._ema_decay

    @property
    def grad_scaler(self) -> torch.amp.GradScaler | None:
        return self._grad_scaler

    @property
    def saver(self) -> SaverBookkeeping:
        return self._saver

    @property
    def loader_rng(self) -> dict[str, Any] | None:
        return self._loader_rng

    @property
    def loaded_loader_kwargs(self) -> dict[str, Any]:
        return self._loaded_loader_kwargs

    @property
    def resume_point(self) -> dict[str, Any] | None:
        return self._resume_point

    @property
    def datamodule_state(self) -> dict[str, Any] | None:
        return self._datamodule_state

    @property
    def epochs_done(self) -> int:
        return self._history.epochs_done

    # ------------------------------------------------------------- changes
    def record_epoch(self, logs: dict[str, Any], metric_names: list[str]) -> None:
        self._history.record(logs, metric_names)

    def record_global_step(self, steps: int) -> None:
        """Optimizer steps taken so far (Lightning's ``trainer.global_step``)."""
        self._global_step = int(steps)

    def request_stop(self) -> None:
        """End training after the current epoch (``handler._stop_training = True``)."""
        self._stop_requested = True

    def clear_stop(self) -> None:
        """A new run starts: no stop requested."""
        self._stop_requested = False

    def ensure_ema(self, module: torch.nn.Module, decay: float, device: Any) -> None:
        """Create (or keep) the exponential moving average of ``module``'s weights on ``device``.

        A decay of 0.0 creates none (an existing one only follows ``device``); another decay
        than the current one starts a new average.
        """
        if decay == 0.0:
            if self._ema is not None:
                self._ema.to(device)
            return
        if self._ema is None or self._ema_decay != decay:
            self._ema = ExponentialMovingAverage(module, decay)
            self._ema_decay = float(decay)
        self._ema.to(device)

    def drop_ema(self) -> None:
        """No average any more (a new model; an EMA state that did not fit the model)."""
        self._ema, self._ema_decay = None, 0.0

    def ensure_grad_scaler(
        self, device: torch.device, use_amp: bool = True
    ) -> torch.amp.GradScaler | None:
        """The CUDA AMP scaler, created once and kept across ``train()`` calls; ``None`` unless
        ``use_amp`` on a CUDA ``device``."""
        if not (use_amp and device.type == "cuda"):
            return None
        if self._grad_scaler is None:
            self._grad_scaler = torch.amp.GradScaler("cuda")
        return self._grad_scaler

    def set_loaded_loaders(self, loader_kwargs: dict[str, Any], rng: dict[str, Any]) -> None:
        """What a loaded checkpoint says about the loaders: their arguments (by role) and the
        generator states the next ``train()`` hands them."""
        self._loaded_loader_kwargs = dict(loader_kwargs)
        self._loader_rng = dict(rng)

    def set_resume_point(self, point: dict[str, Any] | None) -> None:
        """A loaded checkpoint's inside-an-epoch resume point (or ``None``), for the next
        ``train()``."""
        self._resume_point = point

    def set_datamodule_state(self, state: dict[str, Any] | None) -> None:
        """A loaded checkpoint's data-module state (or ``None``), for the next
        ``set_datamodule``."""
        self._datamodule_state = state

    def take_loader_rng(self) -> dict[str, Any]:
        """The pending loader generator states, handed out once."""
        pending, self._loader_rng = self._loader_rng or {}, None
        return pending

    def take_resume_point(self) -> dict[str, Any] | None:
        """The pending inside-an-epoch resume point, handed out once."""
        pending, self._resume_point = self._resume_point, None
        return pending

    def take_datamodule_state(self) -> dict[str, Any] | None:
        """The pending data-module state, handed out once."""
        pending, self._datamodule_state = self._datamodule_state, None
        return pending

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Checkpoint entries: history keys, step counter, EMA and scaler states."""
        out: dict[str, Any] = dict(self._history.state_dict())
        out["handler_global_step"] = int(self._global_step)
        out["ema_state_dict"] = self._ema.state_dict() if self._ema is not None else None
        out["ema_decay"] = float(self._ema_decay) if self._ema is not None else 0.0
        scaler = self._grad_scaler
        out["grad_scaler_state_dict"] = scaler.state_dict() if scaler is not None else None
        return out

    def worker_state(self) -> dict[str, Any]:
        """Everything a ``train()`` changes here, for a worker process to send back whole.

        :meth:`state_dict` plus what a checkpoint leaves out: the stop flag and the files the
        auto-saver wrote (the main process may delete them later, as if it had written them).
        """
        out = self.state_dict()
        out["stop_requested"] = bool(self._stop_requested)
        out["saver"] = self._saver.state()
        return out

    def load_worker_state(self, state: dict[str, Any]) -> None:
        """Become what :meth:`worker_state` described (the EMA and scaler exist already).

        Raises:
            RuntimeError: the worker kept an EMA or scaler that this process does not have.
        """
        self._history.load_state_dict(state)
        self._global_step = int(state["handler_global_step"])
        self._stop_requested = bool(state["stop_requested"])
        targets = (
            ("ema", "ema_state_dict", self._ema),
            ("grad_scaler", "grad_scaler_state_dict", self._grad_scaler),
        )
        for name, key, target in targets:
            if state.get(key) is None:
                continue
            if target is None:
                raise RuntimeError(
                    f"A worker process sent back {key} but this process has no {name}."
                )
            target.load_state_dict(state[key])
        self._saver.load_state(state["saver"])

    def load_history(self, ckpt: dict[str, Any]) -> None:
        """History and step counter from a checkpoint (Lightning's ``global_step`` wins)."""
        self._history.load_state_dict(ckpt)
        step = ckpt.get("global_step", ckpt.get("handler_global_step", 0))
        self._global_step = int(step or 0)
