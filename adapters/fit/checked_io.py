"""Lightning's checkpoint reader, with nn_handler's content check before ``torch.load``.

``Trainer.fit(module, ckpt_path=...)`` reads the file with Lightning's ``CheckpointIO``, which
trusts whatever ``torch.load(weights_only=True)`` accepts (a pickled ``DeviceMesh`` starts
``torch.distributed``; a compressed zip inflates). The exported module puts this wrapper around
its Trainer's reader, so a file holding what no checkpoint of ours holds is refused unread.
"""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch.plugins.io import CheckpointIO

from ...checkpoint._scan import check_file

__all__ = ["CheckedIO", "check_reads"]


class CheckedIO(CheckpointIO):
    """Delegates to ``inner``; a local file is checked (``_scan.check_file``) before loading."""

    def __init__(self, inner: CheckpointIO) -> None:
        self.inner = inner

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        self.inner.save_checkpoint(checkpoint, path, storage_options)

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if isinstance(path, (str, os.PathLike)) and os.path.isfile(path):
            check_file(os.fspath(path))
        return self.inner.load_checkpoint(path, *args, **kwargs)

    def remove_checkpoint(self, path: Any) -> None:
        self.inner.remove_checkpoint(path)

    def teardown(self) -> None:
        self.inner.teardown()


def check_reads(strategy: Any) -> None:
    """Wrap ``strategy``'s checkpoint reader in :class:`CheckedIO` (once)."""
    current = strategy.checkpoint_io
    if not isinstance(current, CheckedIO):
        strategy.checkpoint_io = CheckedIO(current)
