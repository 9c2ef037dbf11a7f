"""``ParamScheduler``: set a model attribute or an optimizer value from a schedule of the epoch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._common import bare_module, is_rank_zero
from .base import Callback

__all__ = ["ParamScheduler"]

_TARGETS = ("auto", "module", "optimizer")


class ParamScheduler(Callback):
    """At the start of every epoch, set ``parameter_name`` to ``schedule(epoch)``.

    Args:
        parameter_name: a model attribute (e.g. ``"noise"``, ``"dropout_p"``) or an optimizer
            param-group key (e.g. ``"lr"``, ``"momentum"``, ``"weight_decay"``).
        schedule: a callable ``f(epoch) -> value`` or an object with ``get_value(epoch)``;
            ``epoch`` is 0-based and counts across ``train()`` calls.
        verbose: 1 prints each new value (rank 0).
        target: ``"module"`` (set the attribute on the bare model), ``"optimizer"`` (set the key in
            every param group) or ``"auto"``: the model attribute when the model has one, else the
            optimizer key.

    The value applied at each epoch is kept in ``values`` (``(epoch, value)`` pairs), and for an
    optimizer key the epoch's ``logs`` show the scheduled rate (``lr``) as used.
    """

    def __init__(
        self,
        parameter_name: str,
        schedule: Callable[[int], Any] | Any,
        verbose: int = 0,
        target: str = "auto",
    ):
        super().__init__()
        if not isinstance(parameter_name, str) or not parameter_name:
            given = repr(parameter_name)
            raise ValueError(f"ParamScheduler: parameter_name must be a str, got {given}.")
        if not (callable(schedule) or callable(getattr(schedule, "get_value", None))):
            raise TypeError(
                "ParamScheduler: schedule must be a callable f(epoch) or have a get_value(epoch) "
                f"method, got {type(schedule).__name__}."
            )
        if target not in _TARGETS:
            raise ValueError(f"ParamScheduler: target must be one of {_TARGETS}, got {target!r}.")
        self.parameter_name = parameter_name
        self.schedule = schedule
        self.verbose = int(verbose)
        self.target = target
        self.values: list[tuple[int, Any]] = []

    def value_at(self, epoch: int) -> Any:
        """The scheduled value for the 0-based ``epoch``."""
        getter = getattr(self.schedule, "get_value", None)
        return getter(epoch) if callable(getter) else self.schedule(epoch)

    def _resolve(self) -> str:
        module = bare_module(self.handler)
        optimizer = getattr(self.handler, "optimizer", None)
        on_module = hasattr(module, self.parameter_name)
        on_optimizer = optimizer is not None and all(
            self.parameter_name in g for g in optimizer.param_groups
        )
        if self.target == "module" or (self.target == "auto" and on_module):
            if not on_module:
                raise AttributeError(
                    f"ParamScheduler: the model has no attribute {self.parameter_name!r}."
                )
            return "module"
        if not on_optimizer:
            raise AttributeError(
                f"ParamScheduler: {self.parameter_name!r} is neither an attribute of the model nor "
                "a key of the optimizer's param groups (e.g. 'lr', 'momentum', 'weight_decay')."
            )
        return "optimizer"

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        where = self._resolve()
        value = self.value_at(epoch)
        if where == "module":
            setattr(bare_module(self.handler), self.parameter_name, value)
        else:
            optimizer = getattr(self.handler, "optimizer", None)
            assert optimizer is not None  # _resolve chose "optimizer": there is one
            for group in optimizer.param_groups:
                group[self.parameter_name] = value
        self.values.append((epoch, value))
        message = f"Epoch {epoch + 1}: set {self.parameter_name!r} to {value}"
        logger = getattr(self.handler, "logger", None)
        if logger is not None:
            logger.info("ParamScheduler: %s", message)
        if self.verbose > 0 and is_rank_zero(self.handler):
            print(message)

    def state_dict(self) -> dict[str, Any]:
        return {"values": [list(v) for v in self.values]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.values = [(int(e), v) for e, v in state_dict.get("values", [])]
