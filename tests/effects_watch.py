"""Watching what a block of code *does*: files, modules, sockets, torch.distributed.

Audit hooks see only what raises an audit event (``importlib.import_module`` raises none, a
native TCP store binds without one). :class:`Effects` compares states before and after instead:

- every file and directory under the watched roots (path, inode, size, modification time): a
  write, a deletion or a rename outside the sandbox shows up;
- modules newly in ``sys.modules``;
- TCP ports newly listening (``/proc/net/tcp*``, which also sees native binds) and Python
  ``socket.bind`` calls (audit event);
- ``torch.distributed.is_initialized()``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch.distributed as dist

__all__ = ["Effects", "listening_ports", "tree"]

_BINDS: list[tuple] = []
_ARMED = [False]


def _hook(event: str, args: tuple) -> None:
    if _ARMED[0] and event == "socket.bind":
        _BINDS.append(args)


sys.addaudithook(_hook)  # process-wide and permanent: it records only while armed


def tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """``relative path -> (inode, size, mtime_ns)`` of everything under ``root``."""
    out: dict[str, tuple[int, int, int]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(folder, name)
            try:
                info = os.lstat(full)
            except OSError:
                continue
            out[os.path.relpath(full, root)] = (info.st_ino, info.st_size, info.st_mtime_ns)
    return out


def _own_sockets() -> set[str]:
    """Inodes of the sockets this process holds open."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[len("socket:[") : -1])
    return out


def listening_ports() -> set[int]:
    """TCP ports this process listens on, from the kernel's tables (native binds included;
    other processes on the machine are not counted)."""
    ports: set[int] = set()
    mine = _own_sockets()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[3] == "0A" and fields[9] in mine:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


class Effects:
    """Records what the ``with`` block changed outside ``roots``' current contents.

    After the block: ``files`` (paths added, removed or changed under the roots), ``modules``
    (new in ``sys.modules``), ``ports`` (newly listening), ``binds`` (``socket.bind`` calls) and
    ``distributed`` (``torch.distributed`` initialised by the block).
    """

    def __init__(self, *roots: Path) -> None:
        self.roots = roots

    def __enter__(self) -> Effects:
        self._trees = [tree(r) for r in self.roots]
        self._modules = set(sys.modules)
        self._ports = listening_ports()
        self._dist = dist.is_available() and dist.is_initialized()
        _BINDS.clear()
        _ARMED[0] = True
        return self

    def __exit__(self, *exc: object) -> None:
        _ARMED[0] = False
        self.binds = list(_BINDS)
        self.files = []
        for root, before in zip(self.roots, self._trees):
            after = tree(root)
            for path in sorted(set(before) | set(after)):
                if before.get(path) != after.get(path):
                    self.files.append(str(root / path))
        self.modules = sorted(set(sys.modules) - self._modules)
        self.ports = sorted(listening_ports() - self._ports)
        self.distributed = (dist.is_available() and dist.is_initialized()) and not self._dist

    def problems(self, forbidden_modules: tuple[str, ...] = ()) -> list[str]:
        """What the block did that a load must not do (empty: nothing)."""
        out = [f"file changed: {f}" for f in self.files]
        out += [
            f"module imported: {m}"
            for m in self.modules
            if any(m == f or m.startswith(f + ".") for f in forbidden_modules)
        ]
        out += [f"port listening: {p}" for p in self.ports]
        out += [f"socket.bind{b}" for b in self.binds]
        if self.distributed:
            out.append("torch.distributed initialised")
        return out
