"""``nn_handler.callbacks.monitor`` of the original's module map: callbacks that watch training.

Re-exports; each class lives in its own module of this package.
"""

from .early_stopping import EarlyStopping
from .epoch_timer import EpochTimer
from .lr_monitor import LearningRateMonitor
from .param_norm import ParameterNormMonitor
from .progress import ProgressMonitor
from .tensorboard import TensorBoardLogger
from .wandb_logger import WandbLogger

__all__ = [
    "EarlyStopping",
    "EpochTimer",
    "LearningRateMonitor",
    "ParameterNormMonitor",
    "ProgressMonitor",
    "TensorBoardLogger",
    "WandbLogger",
]
