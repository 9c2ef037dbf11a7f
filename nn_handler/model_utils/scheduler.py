"""``nn_handler.model_utils.scheduler``: values that change with the epoch (e.g. a loss weight).

Each schedule maps an epoch (an int, from 0) to a float through ``get_value(epoch)``; before
``start_epoch`` an interpolating schedule holds ``start_value``, from ``end_epoch`` on it holds
``end_value``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

__all__ = [
    "Schedule",
    "ConstantSchedule",
    "LinearSchedule",
    "LogLinearSchedule",
    "CosineSchedule",
    "StepSchedule",
    "MultiStepSchedule",
]


class Schedule(ABC):
    """A value per epoch: subclasses implement :meth:`get_value`."""

    @abstractmethod
    def get_value(self, epoch: int) -> float:
        """The value at ``epoch``."""

    def plot(self, epochs: int = 100, title: str = "Schedule") -> Any:
        """Draw the values of epochs ``0 .. epochs - 1`` with matplotlib and return the figure
        (a notebook shows it; a script calls ``plt.show()`` or ``fig.savefig``)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:
            raise ImportError("Schedule.plot needs matplotlib: pip install matplotlib.") from err
        xs = list(range(epochs))
        fig, ax = plt.subplots()
        ax.plot(xs, [self.get_value(e) for e in xs])
        ax.set_title(title)
        ax.set_xlabel("Epoch")
        ax.set_ylabel("Value")
        ax.grid(True)
        return fig


class ConstantSchedule(Schedule):
    """The same ``value`` at every epoch."""

    def __init__(self, value: float):
        self.value = value

    def get_value(self, epoch: int) -> float:
        return self.value


class _Interpolated(Schedule):
    """From ``start_value`` at ``start_epoch`` to ``end_value`` at ``end_epoch``."""

    def __init__(self, start_value: float, end_value: float, start_epoch: int, end_epoch: int):
        if end_epoch < start_epoch:
            raise ValueError(
                f"end_epoch ({end_epoch}) must not be before start_epoch ({start_epoch})."
            )
        self.start_value = start_value
        self.end_value = end_value
        self.start_epoch = start_epoch
        self.end_epoch = end_epoch

    def get_value(self, epoch: int) -> float:
        if epoch < self.start_epoch:
            return self.start_value
        if epoch >= self.end_epoch:
            return self.end_value
        return self._between((epoch - self.start_epoch) / (self.end_epoch - self.start_epoch))

    @abstractmethod
    def _between(self, progress: float) -> float:
        """The value at ``progress`` in ``[0, 1)`` of the way."""


class LinearSchedule(_Interpolated):
    """Straight-line interpolation: ``start + progress * (end - start)``."""

    def _between(self, progress: float) -> float:
        return self.start_value + progress * (self.end_value - self.start_value)


class LogLinearSchedule(_Interpolated):
    """Interpolation of the logarithm (geometric steps); both values must be positive."""

    def __init__(self, start_value: float, end_value: float, start_epoch: int, end_epoch: int):
        if start_value <= 0 or end_value <= 0:
            raise ValueError(
                f"LogLinearSchedule interpolates logarithms: start_value ({start_value}) and "
                f"end_value ({end_value}) must be positive."
            )
        super().__init__(start_value, end_value, start_epoch, end_epoch)

    def _between(self, progress: float) -> float:
        log_start, log_end = math.log(self.start_value), math.log(self.end_value)
        return math.exp(log_start + progress * (log_end - log_start))


class CosineSchedule(_Interpolated):
    """Cosine annealing: ``end + (start - end) * (1 + cos(pi * progress)) / 2``."""

    def _between(self, progress: float) -> float:
        cosine = 1.0 + math.cos(math.pi * progress)
        return self.end_value + 0.5 * (self.start_value - self.end_value) * cosine


class StepSchedule(Schedule):
    """``start_value * gamma ** (epoch // step_size)``."""

    def __init__(self, start_value: float, step_size: int, gamma: float = 0.1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"step_size must be an integer >= 1, got {step_size!r}.")
        self.start_value = start_value
        self.step_size = step_size
        self.gamma = gamma

    def get_value(self, epoch: int) -> float:
        return self.start_value * self.gamma ** (epoch // self.step_size)


class MultiStepSchedule(Schedule):
    """``start_value * gamma ** k``, ``k`` the number of ``milestones`` reached (``<= epoch``)."""

    def __init__(self, start_value: float, milestones: Iterable[int], gamma: float = 0.1):
        self.start_value = start_value
        self.milestones = sorted(milestones)
        self.gamma = gamma

    def get_value(self, epoch: int) -> float:
        reached = sum(1 for milestone in self.milestones if epoch >= milestone)
        return self.start_value * self.gamma**reached
