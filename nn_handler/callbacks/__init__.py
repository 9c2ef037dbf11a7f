"""Native callbacks: the :class:`Callback` base class and the built-ins."""

from .base import Callback

__all__ = ["Callback"]
