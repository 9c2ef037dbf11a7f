"""Names of the atomic writer's temporary files, and removal of those a killed writer left behind.

A save writes ``.<name>.<host>-<pid>.<random>.tmp`` beside its target and renames it over the
target. A writer killed before the rename (SIGKILL, power loss) leaves that file; the next save
into the same directory removes it when it is certainly abandoned:

- its writer ran on this machine (same host tag) and that process no longer exists, or
- it has not been modified for :data:`STALE_AFTER_S` seconds (a live writer writes continuously;
  this also covers writers on other machines sharing the directory).

Only regular files whose name matches the pattern exactly are candidates: nothing else is touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import stat
import time

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
        if not stat.S_ISREG(info.st_mode):
            continue
        pid = int(match["pid"])
        dead_here = match["host"] == host and pid != os.getpid() and not _process_exists(pid)
        if dead_here or now - info.st_mtime > STALE_AFTER_S:
            with contextlib.suppress(OSError):
                os.remove(full)
                removed.append(name)
    return removed
