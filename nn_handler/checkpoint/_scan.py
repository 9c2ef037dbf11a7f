"""What a checkpoint file may contain, checked before ``torch.load`` reads it.

``torch.load(weights_only=True)`` accepts whatever torch's own allow-list holds; some of it acts
when unpickled (``torch.distributed.device_mesh.DeviceMesh`` initialises ``torch.distributed``).
A file of ours only ever needs the few globals :func:`~nn_handler.checkpoint.atomic_save` writes:
tensor rebuild functions, storage types, dtypes and a few containers. Every global a file's
pickle names is read with :mod:`pickletools` (nothing is built) and checked against that list.

The zip container is checked too: ``torch.save`` writes stored (uncompressed) entries, so an
entry that inflates, or entries larger than the file itself, can only make a small file allocate
a lot of memory.
"""

from __future__ import annotations

import io
import os
import pickletools
import re
import zipfile
from typing import IO

import torch

__all__ = ["NeedsCode", "NotOurs", "check_file", "globals_in", "allowed_global"]


class NotOurs(ValueError):
    """The file holds something nn_handler's own checkpoints never contain."""


class NeedsCode(NotOurs):
    """The file is a pickle that names code to load (what ``allow_legacy_pickle`` opts in to)."""


def needs_code(path: str, references: str) -> NeedsCode:
    return NeedsCode(
        f"{path!r} is a pickle that needs to run code to load{references}. nn_handler only "
        "reads what its own checkpoints hold (tensors, numbers, strings and containers of them). "
        "If this is a checkpoint written by the original NNHandler and you trust its source, "
        "load it with NNHandler.load(path, allow_legacy_pickle=True) - this runs code from the "
        "file."
    )


# Tensor rebuilding, as torch.save writes it (v2/v3 and parameters, plain or with state).
_REBUILD = frozenset(
    {
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2",
        "torch.nn.parameter.Parameter",
        "torch.Tensor",
    }
)
# Containers and values our encoder writes: OrderedDict (state_dicts), set/frozenset, complex,
# bytes (protocol 2 writes them through _codecs.encode), torch.Size and torch.device. torch.save
# pickles with protocol 2, which spells builtins as Python 2's ``__builtin__``.
_BUILTINS = ("set", "frozenset", "complex", "bytearray")
_VALUES = frozenset(
    {
        "collections.OrderedDict",
        "_codecs.encode",
        "torch.Size",
        "torch.device",
        *(f"{module}.{name}" for module in ("builtins", "__builtin__") for name in _BUILTINS),
    }
)
_TORCH_NAME = re.compile(r"^torch\.(?P<name>[A-Za-z0-9_]+)$")
# The magic number that opens torch's legacy (pre-zip) format: more pickles follow it.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def allowed_global(name: str) -> bool:
    """Whether ``"module.Name"`` is a global an nn_handler checkpoint can hold."""
    if name in _REBUILD or name in _VALUES:
        return True
    found = _TORCH_NAME.match(name)
    if found is None:
        return False
    value = getattr(torch, found["name"], None)
    # dtypes (torch.float32) and storage classes (torch.FloatStorage, torch.UntypedStorage).
    return isinstance(value, torch.dtype) or (
        isinstance(value, type) and found["name"].endswith("Storage")
    )


_STRINGS: tuple[str, ...] = (
    "SHORT_BINUNICODE",
    "BINUNICODE",
    "BINUNICODE8",
    "UNICODE",
    "STRING",
    "BINSTRING",
)
_STRINGS += ("SHORT_BINSTRING",)
_PUTS = ("PUT", "BINPUT", "LONG_BINPUT")
_GETS = ("GET", "BINGET", "LONG_BINGET")


def globals_in(stream: IO[bytes]) -> tuple[list[str], object]:
    """The globals one pickle on ``stream`` names, and its value when it is a bare int.

    Raises:
        NotOurs: the pickle names a global in a way that cannot be read without running it
            (a ``STACK_GLOBAL`` whose names are computed, the copyreg extension registry).
        ValueError: not a readable pickle.
    """
    names: list[str] = []
    memo: dict[object, object] = {}  # keyed by the pickle's memo indices
    recent: list[object] = []  # values the last opcodes pushed, as far as they are strings
    value: object = None
    unreadable = ""  # raised once the whole pickle parsed (junk bytes are a damaged file)
    for op, arg, _ in pickletools.genops(stream):
        kind = op.name
        if kind in ("GLOBAL", "INST"):
            module, _, name = str(arg).partition(" ")
            names.append(f"{module}.{name}")
            recent = []
        elif kind == "STACK_GLOBAL":
            if len(recent) < 2 or not all(isinstance(v, str) for v in recent[-2:]):
                unreadable = unreadable or "a global whose name is computed while unpickling"
            else:
                names.append(f"{recent[-2]}.{recent[-1]}")
            recent = []
        elif kind.startswith("EXT"):
            unreadable = unreadable or "a global of the copyreg extension registry"
        elif kind in _STRINGS:
            recent.append(arg)
        elif kind == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
        elif kind in _PUTS:
            memo[arg] = recent[-1] if recent else None
        elif kind in _GETS:
            recent.append(memo.get(arg))
        elif kind not in ("PROTO", "FRAME", "STOP"):
            recent = []
        if kind in ("BININT", "BININT1", "BININT2", "LONG1", "LONG4", "INT", "LONG"):
            value = arg
    if unreadable:
        raise NotOurs(unreadable)
    return names, value


def _refuse(path: str, what: str) -> NotOurs:
    return NotOurs(
        f"{path!r} holds {what}, which nn_handler's checkpoints never contain: it is refused "
        "before anything in it is built. If you trust this file, NNHandler.load(path, "
        "trust_checkpoint=True) reads what torch.load(weights_only=True) accepts."
    )


def _check_names(path: str, names: list[str]) -> None:
    refused = list(dict.fromkeys(n for n in names if not allowed_global(n)))  # file's order
    if refused:
        raise needs_code(path, f" (it references {', '.join(refused)})")


def _check_zip(path: str) -> None:
    size = os.path.getsize(path)
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
        packed = [e.filename for e in entries if e.compress_type != zipfile.ZIP_STORED]
        if packed:
            raise _refuse(
                path,
                f"compressed zip entries ({', '.join(packed[:3])}; torch.save writes stored "
                "entries, and a compressed one can inflate to far more memory than the file "
                "takes)",
            )
        claimed = sum(e.file_size for e in entries)
        if claimed > size or any(e.file_size != e.compress_size for e in entries):
            raise _refuse(path, f"zip entries claiming {claimed} bytes in a {size}-byte file")
        for entry in entries:
            if entry.filename.endswith("data.pkl"):
                with archive.open(entry) as stream:
                    try:
                        # The zip entry is buffered, not raw (as typeshed asks): readinto is enough.
                        buffered = io.BufferedReader(stream)  # type: ignore[type-var]
                        names, _ = globals_in(buffered)
                    except NotOurs as err:
                        raise needs_code(path, f" ({err})") from None
                _check_names(path, names)


def _check_legacy(path: str) -> None:
    with open(path, "rb") as stream:
        names, value = globals_in(stream)
        if value == _LEGACY_MAGIC:
            # torch's legacy format: protocol, system info, the object, then its storage keys.
            for _ in range(4):
                more, _ = globals_in(stream)
                names += more
    _check_names(path, names)


def check_file(path: str) -> None:
    """Refuse a file that holds anything an nn_handler checkpoint never holds.

    Raises:
        NotOurs: compressed or oversized zip entries (the message names the file).
        NeedsCode: a pickle global outside the list (the message names the file and the
            reference).
    """
    try:
        if zipfile.is_zipfile(path):
            _check_zip(path)
            return
    except NotOurs:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as err:
        # A container this reader cannot follow is not read at all: another reader (torch's)
        # might still find records in it that were never checked.
        text = str(err).strip().splitlines()
        raise NotOurs(
            f"{path!r} is truncated or corrupted and cannot be read as a checkpoint "
            f"({type(err).__name__}: {text[0] if text else ''})."
        ) from None
    try:
        _check_legacy(path)
    except NeedsCode:
        raise
    except NotOurs as err:
        raise needs_code(path, f" ({err})") from None
    except (ValueError, EOFError):
        return  # not a pickle: torch.load says what it is
