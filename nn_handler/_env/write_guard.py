"""Where a writer restored from a checkpoint may write: one check, made at the point of writing.

A checkpoint is data and never chooses a destination. A callback (or auto-save configuration)
rebuilt from a file without ``trust_checkpoint=True`` carries :class:`WriteRoots`: it may write
only inside the folder the checkpoint was loaded from or the working directory (as it is when
the file is written). Everything the user constructs carries ``None``: the user's choice, not
checked.

The check runs on the path the writer is about to use, after its template was formatted, with
``~`` and environment variables expanded (Lightning's loggers expand both) and symlinks
resolved, so a template such as ``"{epoch!s:/>1.0}abs/path"`` — relative before formatting,
absolute after — is refused when it is written, not only when it is loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["DestinationRefused", "WriteRoots", "checked_destination", "roots_for_checkpoint"]


class DestinationRefused(PermissionError):
    """A writer restored from a checkpoint was about to write outside its allowed folders."""


@dataclass(frozen=True)
class WriteRoots:
    """The folders a writer restored from ``checkpoint_dir``'s file may write in.

    Attributes:
        checkpoint_dir: the folder the checkpoint was loaded from (symlinks resolved).
    """

    checkpoint_dir: str

    def folders(self) -> tuple[str, ...]:
        """The checkpoint's folder and the current working directory, symlinks resolved."""
        return (self.checkpoint_dir, os.path.realpath(os.getcwd()))


def roots_for_checkpoint(checkpoint_file: str) -> WriteRoots:
    """The roots of writers rebuilt from ``checkpoint_file``: the folder that holds it (a file, or
    a multi-file checkpoint's directory), as ``write_location_refused`` reads it when loading."""
    folder = os.path.dirname(os.path.abspath(os.fspath(checkpoint_file)))
    return WriteRoots(os.path.realpath(folder))


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def checked_destination(path: str, roots: WriteRoots | None, what: str = "a file") -> str:
    """``path``, once it is known that the writer may use it.

    Args:
        path: the formatted path about to be written (a file or a directory).
        roots: the writer's :class:`WriteRoots`; ``None`` (user-constructed) is not checked.
        what: what is written, for the message (e.g. ``"ModelCheckpoint's checkpoint"``).

    Raises:
        DestinationRefused: ``path`` — taken literally, or with ``~`` and environment variables
            expanded, symlinks resolved either way — leaves every allowed folder.
    """
    path = os.fspath(path)
    if roots is None:
        return path
    folders = roots.folders()
    readings = {path, os.path.expandvars(os.path.expanduser(path))}
    for reading in readings:
        resolved = os.path.realpath(os.path.abspath(reading))
        if not any(_inside(resolved, folder) for folder in folders):
            raise DestinationRefused(
                f"Refused to write {what} to {path!r} (resolves to {resolved!r}): this writer was "
                f"rebuilt from a checkpoint file, which may not choose where files go; it may "
                f"write only inside the checkpoint's folder ({folders[0]!r}) or the working "
                f"directory ({folders[1]!r}). Pass your own callback to "
                "NNHandler.load(path, callbacks=[...]) (or add_callback) to write elsewhere, or "
                "load a file you trust with trust_checkpoint=True."
            )
    return path
