"""Which hooks an object's class overrides: the one test the callback bridge, the manual steps and
the batch-chunking decision share."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["overridden_hooks"]


def overridden_hooks(obj: object, base: type, hooks: Iterable[str]) -> list[str]:
    """The names among ``hooks`` that ``obj``'s class defines differently from ``base``, in the
    order of ``hooks``."""
    cls = type(obj)
    return [h for h in hooks if getattr(cls, h, None) is not getattr(base, h, None)]
