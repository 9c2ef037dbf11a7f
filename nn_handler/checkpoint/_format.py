"""The checkpoint format's constants, a leaf every reader and writer imports (nothing else of
the package)."""

from __future__ import annotations

__all__ = ["FORMAT_VERSION", "MANIFEST"]

#: The newest ``checkpoint_format`` this version writes and reads.
FORMAT_VERSION = 1

#: The manifest of a multi-file checkpoint (a directory with one ``<key>.pth`` per key).
MANIFEST = "nn_handler_checkpoint.json"
