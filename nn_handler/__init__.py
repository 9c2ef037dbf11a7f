"""nn_handler: a drop-in NNHandler training API for PyTorch, running on PyTorch Lightning."""

from ._safe_modules import register_safe_modules
from ._version import __version__
from .callbacks import *  # noqa: F403 - every callback is public at the top level
from .callbacks import __all__ as _callbacks_all
from .enums import LoggingMode, ModelType
from .generative import VESDE, VPSDE, denoising_score_matching
from .handler import NNHandler
from .logger import initialize_logger
from .sampler import Sampler
from .utils import DataLoaderType, initialize_ddp, on_rank, parallelize_on_gpus

__all__ = [
    "NNHandler",
    "Sampler",
    "ModelType",
    "LoggingMode",
    "DataLoaderType",
    "initialize_ddp",
    "on_rank",
    "parallelize_on_gpus",
    "initialize_logger",
    "VESDE",
    "VPSDE",
    "denoising_score_matching",
    "register_safe_modules",
    "__version__",
    *_callbacks_all,
]
