"""TEMPORARY experiment (removed after the GPU run): the gpu job with nn_handler's per-step
``bool(torch.isfinite(loss))`` host sync stubbed out, to measure what that sync costs."""

from __future__ import annotations

import sys

import nn_handler.adapters.module as module
import torch


class _TorchWithoutFiniteCheck:
    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def isfinite(x):
        return True


module.torch = _TorchWithoutFiniteCheck()

from .bench_gpu import main  # noqa: E402

if __name__ == "__main__":
    main(sys.argv[1:])
