"""Native callbacks: the :class:`Callback` base class and the built-ins."""

from .base import Callback
from .early_stopping import EarlyStopping
from .epoch_timer import EpochTimer
from .garbage import CudaGarbageCollector, SimpleGarbageCollector
from .lr_monitor import LearningRateMonitor
from .model_checkpoint import ModelCheckpoint
from .param_norm import ParameterNormMonitor
from .param_scheduler import ParamScheduler
from .progress import ProgressMonitor
from .tensorboard import TensorBoardLogger
from .visualizers import BasePredictionVisualizer, ImagePredictionVisualizer
from .wandb_logger import WandbLogger

__all__ = [
    "Callback",
    "ModelCheckpoint",
    "EarlyStopping",
    "LearningRateMonitor",
    "TensorBoardLogger",
    "EpochTimer",
    "WandbLogger",
    "SimpleGarbageCollector",
    "CudaGarbageCollector",
    "BasePredictionVisualizer",
    "ImagePredictionVisualizer",
    "ParamScheduler",
    "ParameterNormMonitor",
    "ProgressMonitor",
]
