"""Names of the atomic writer's temporary files, and removal of those a killed writer left behind.

A save writes ``.<name>.<host>-<pid>.<random>.tmp`` beside its target and renames it over the
target. A writer killed before the rename (SIGKILL, power loss) leaves that file; the next save
into the same directory removes it when it is certainly abandoned:

- its writer ran on this machine (same host tag) and that process no longer exists, or
- it has not been modified for :data:`STALE_AFTER_S` seconds (a live writer writes continuously;
  this also covers writers on other machines sharing the directory).

Only regular files whose name matches the pattern exactly are candidates, and directories of
that name (a multi-file save's staging directory) that hold nothing but such a save's files:
regular ``*.pth`` files, the manifest and temporary files. Nothing else is touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import stat
import time

from ..checkpoint._format import MANIFEST

__all__ = ["STALE_AFTER_S", "temp_prefix", "remove_stale_temp_files"]

#: A temporary file untouched for this long is abandoned, whoever wrote it.
STALE_AFTER_S = 15 * 60

_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)\.[a-z0-9_]{8}\.tmp$")


def _host_tag() -> str:
    return hashlib.blake2s(socket.gethostname().encode(), digest_size=4).hexdigest()


def temp_prefix(path: str) -> str:
    """``tempfile.mkstemp`` prefix for a temporary file of ``path`` written by this process
    (mkstemp adds 8 random characters and the ``.tmp`` suffix)."""
    return f".{os.path.basename(path)}.{_host_tag()}-{os.getpid()}."


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def remove_stale_temp_files(directory: str) -> list[str]:
    """Remove the abandoned temporary files of the atomic writer in ``directory``.

    Never raises: a file that cannot be inspected or removed is left where it is.

    Returns:
        The names removed.
    """
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    host, now, removed = _host_tag(), time.time(), []
    for name in names:
        match = _NAME.match(name)
        if match is None:
            continue
        full = os.path.join(directory, name)
        try:
            info = os.lstat(full)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode):
            newest = _staging_mtime(full)
            if newest is None:
                continue  # not a staging directory of ours: never touched
        elif stat.S_ISREG(info.st_mode):
            newest = info.st_mtime
        else:
            continue
        pid = int(match["pid"])
        dead_here = match["host"] == host and pid != os.getpid() and not _process_exists(pid)
        if dead_here or now - newest > STALE_AFTER_S:
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree(full)
                else:
                    os.remove(full)
                removed.append(name)
    return removed


def _staging_mtime(directory: str) -> float | None:
    """The newest modification time in a multi-file save's staging directory, or ``None`` when
    ``directory`` holds anything such a save does not write (then it is not ours)."""
    try:
        newest = os.lstat(directory).st_mtime
        for entry in os.scandir(directory):
            ours = entry.name == MANIFEST or entry.name.endswith(".pth") or _NAME.match(entry.name)
            if not ours or not entry.is_file(follow_symlinks=False):
                return None
            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    except OSError:
        return None
    return newest
