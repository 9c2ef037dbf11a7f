"""A stand-in for the parts of torchvision the original NNHandler's notebooks use (tests only)."""

from . import datasets, transforms, utils

__all__ = ["datasets", "transforms", "utils"]
