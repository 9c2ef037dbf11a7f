"""Placeholders a setup holds for objects that only exist once the setup is built."""

from __future__ import annotations

__all__ = ["OWN_MODULE"]


class _OwnModule:
    """Stands for "the handler's own model" in a component's keyword arguments.

    ``set_sampler(MySampler, model=handler.module)`` stores this placeholder, so a checkpoint
    records "the handler's model" rather than a copy of it, and the sampler rebuilt by
    ``NNHandler.load`` receives the loaded handler's module.
    """

    _instance: _OwnModule | None = None

    def __new__(cls) -> _OwnModule:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<the handler's own module>"

    def __reduce__(self) -> str:
        return "OWN_MODULE"


OWN_MODULE = _OwnModule()
