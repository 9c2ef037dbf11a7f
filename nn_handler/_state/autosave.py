"""The AutoSaver's settings (interval, directory, name pattern, overwrite, step interval),
validated."""

from __future__ import annotations

import dataclasses
import os
import string
from dataclasses import dataclass
from typing import Any

from .._env import storage as _storage
from .._env.write_guard import WriteRoots, roots_for_checkpoint

__all__ = [
    "AutoSaveSettings",
    "check_interval",
    "check_name",
    "check_save_path",
    "check_step_interval",
    "check_step_name",
    "settings_for_resume",
    "write_location_refused",
]

DEFAULT_NAME = "model_epoch{epoch:02d}"
DEFAULT_STEP_NAME = "model_step{step:08d}"


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
    """A file-name pattern: a format string that names a file inside ``save_path``."""
    if not isinstance(name, str) or not name:
        raise TypeError(f"auto_save name must be a non-empty format string, got {name!r}.")
    try:
        literal = "".join(text for text, *_ in string.Formatter().parse(name))
    except ValueError as err:
        raise ValueError(
            f"auto_save name {name!r} is not a valid format string ({err}); "
            "use e.g. 'model_epoch{epoch:02d}'."
        ) from err
    if (
        "/" in literal
        or os.sep in literal
        or (os.altsep and os.altsep in literal)
        or (literal.strip(". ") == "" and "{" not in name)
    ):
        raise ValueError(
            f"auto_save name {name!r} must be a file name, not a path: put the directory in "
            "save_path (auto_save(interval, save_path='runs/a', name='model_epoch{epoch:02d}'))."
        )
    return name


def check_step_interval(every: Any) -> int | None:
    """``every_n_train_steps``: ``None``/0 (off) or N > 0 (after every N optimizer steps)."""
    if every is None or (every == 0 and not isinstance(every, bool)):
        return None
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ValueError(
            f"auto_save every_n_train_steps must be a positive int (or None: off), got {every!r}."
        )
    return every


def check_step_name(step_name: Any, name: str) -> str:
    """The mid-epoch files' name pattern: a file name with a ``{step}`` field, unlike ``name``.

    The ``{step}`` field (the global optimizer step) and a pattern other than the epoch files'
    keep the two series from naming the same file.
    """
    step_name = check_name(step_name)
    fields = {field for _, field, _, _ in string.Formatter().parse(step_name) if field}
    if "step" not in fields or step_name == name:
        raise ValueError(
            f"auto_save step_name {step_name!r} must contain a {{step}} field and differ from the "
            f"epoch files' name {name!r}, e.g. {DEFAULT_STEP_NAME!r}."
        )
    return step_name


def check_save_path(value: Any) -> str:
    if not isinstance(value, (str, bytes)) and not hasattr(value, "__fspath__"):
        raise TypeError(f"save_path must be a path, got {type(value).__name__}.")
    path = os.fspath(value)
    return path.decode() if isinstance(path, bytes) else path


@dataclass(frozen=True)
class AutoSaveSettings:
    """``interval``: None/0 off, N > 0 every N epochs, -1 after each ``train`` call's last epoch.

    ``write_roots``: ``None`` for settings the user gave; for settings a checkpoint brought back,
    the folders the AutoSaver may write in, checked at each write (``_write_guard``).
    ``every_n_train_steps``: also every N optimizer steps, inside epochs, as ``step_name``.
    """

    interval: int | None = None
    save_path: str = "."
    name: str = DEFAULT_NAME
    overwrite: bool = False
    every_n_train_steps: int | None = None
    step_name: str = DEFAULT_STEP_NAME
    write_roots: WriteRoots | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def checked(
        cls,
        interval: Any,
        save_path: Any = ".",
        name: Any = DEFAULT_NAME,
        overwrite: Any = False,
        every_n_train_steps: Any = None,
        step_name: Any = DEFAULT_STEP_NAME,
    ) -> AutoSaveSettings:
        """Settings from user input, each value validated."""
        if not isinstance(overwrite, bool):
            raise TypeError(f"overwrite must be a bool, got {overwrite!r}.")
        name = check_name(name)
        return cls(
            interval=check_interval(interval),
            save_path=check_save_path(save_path),
            name=name,
            overwrite=overwrite,
            every_n_train_steps=check_step_interval(every_n_train_steps),
            step_name=check_step_name(step_name, name),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.interval) or bool(self.every_n_train_steps)

    def state_dict(self, last_saved: str | None = None) -> dict[str, Any]:
        return {
            "save_interval": self.interval,
            "save_path": self.save_path,
            "save_model_name": self.name,
            "overwrite_last_saved": self.overwrite,
            "last_saved_model": last_saved,
            "save_every_n_train_steps": self.every_n_train_steps,
            "save_step_model_name": self.step_name,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> AutoSaveSettings:
        """Settings read from a file, validated as user input is.

        Raises:
            TypeError, ValueError: a value that ``auto_save`` would refuse.
        """
        return cls.checked(
            state.get("save_interval"),
            state.get("save_path", "."),
            state.get("save_model_name", DEFAULT_NAME),
            bool(state.get("overwrite_last_saved", False)),
            state.get("save_every_n_train_steps"),
            state.get("save_step_model_name", DEFAULT_STEP_NAME),
        )


def settings_for_resume(state: object, checkpoint_file: str) -> tuple[AutoSaveSettings, str | None]:
    """The auto-save settings a loaded checkpoint may bring back, and why not when refused.

    A file may not choose where we write: its settings are used only when they are valid and
    its ``save_path`` is the directory the checkpoint itself was loaded from (the documented
    resume recipe: load the last auto-save, train on, saving beside it) or a relative path that
    stays inside the working directory (no ``..``). An absolute path elsewhere is refused.
    """
    if not state:
        return AutoSaveSettings(), None
    if not isinstance(state, dict):
        return AutoSaveSettings(), f"they are a {type(state).__name__}, not a dict"
    if not state.get("save_interval") and not state.get("save_every_n_train_steps"):
        return AutoSaveSettings(), None
    try:
        settings = AutoSaveSettings.from_state_dict(state)
    except (TypeError, ValueError) as err:
        return AutoSaveSettings(), f"its auto-save settings are invalid ({err})"
    refused = write_location_refused(settings.save_path, checkpoint_file)
    if refused:
        return AutoSaveSettings(), f"its auto-save directory {refused}"
    return dataclasses.replace(settings, write_roots=roots_for_checkpoint(checkpoint_file)), None


def write_location_refused(path: str, checkpoint_file: str) -> str | None:
    """Why a loaded checkpoint may not choose ``path`` as a place to write (``None`` if it may).

    It may choose the directory it was loaded from (or a path in it) and relative paths that stay
    inside the working directory (no ``..``); anything else is the file's choice of where we
    write, and refused.
    """
    target, source = _storage.local_path(path), _storage.local_path(checkpoint_file)
    if target is None or source is None:  # a URL on another file system than the local one
        return _storage.location_refused(path, checkpoint_file)
    path, checkpoint_file = target, source  # file:// URLs as the local paths they are
    here = os.path.realpath(os.path.dirname(os.path.abspath(checkpoint_file)))
    there = os.path.realpath(os.path.abspath(path))
    relative = not os.path.isabs(path) and ".." not in _parts(path)
    if relative or there == here or there.startswith(here + os.sep):
        return None
    return (
        f"{path!r} is neither in the directory the checkpoint was loaded from ({here!r}) nor "
        "inside the working directory"
    )


def _parts(path: str) -> list[str]:
    return path.replace(os.sep, "/").replace(os.altsep or "/", "/").split("/")
