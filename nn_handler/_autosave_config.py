"""The AutoSaver's settings (interval, directory, name pattern, overwrite), validated."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

__all__ = ["AutoSaveConfig", "check_interval", "check_name"]


def check_interval(interval: Any) -> int | None:
    if interval is None or interval == 0:
        return None if interval is None else 0
    if isinstance(interval, bool) or not isinstance(interval, int):
        raise TypeError(f"auto_save interval must be an int or None, got {interval!r}.")
    if interval < -1:
        raise ValueError(
            f"auto_save interval {interval} is invalid: use N > 0 (every N epochs), -1 (after "
            "the last epoch of each train call), or 0/None (off)."
        )
    return interval


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise TypeError(f"auto_save name must be a non-empty format string, got {name!r}.")
    try:
        list(string.Formatter().parse(name))
    except ValueError as err:
        raise ValueError(
            f"auto_save name {name!r} is not a valid format string ({err}); "
            "use e.g. 'model_epoch{epoch:02d}'."
        ) from err
    return name


@dataclass
class AutoSaveConfig:
    """``interval``: None/0 off, N > 0 every N epochs, -1 after each ``train`` call's last epoch."""

    interval: int | None = None
    save_path: str = "."
    name: str = "model_epoch{epoch:02d}"
    overwrite: bool = False
    last_saved: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.interval)

    def state_dict(self) -> dict[str, Any]:
        return {
            "save_interval": self.interval,
            "save_path": self.save_path,
            "save_model_name": self.name,
            "overwrite_last_saved": self.overwrite,
            "last_saved_model": self.last_saved,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.interval = state.get("save_interval")
        self.save_path = state.get("save_path", ".")
        self.name = state.get("save_model_name", "model_epoch{epoch:02d}")
        self.overwrite = bool(state.get("overwrite_last_saved", False))
        self.last_saved = state.get("last_saved_model")
