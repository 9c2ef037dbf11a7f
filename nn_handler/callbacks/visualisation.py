"""``nn_handler.callbacks.visualisation`` of the original's module map: prediction visualizers
(re-exports)."""

from .._ops.missing import missing_names
from .visualizers import BasePredictionVisualizer, ImagePredictionVisualizer

__all__ = ["BasePredictionVisualizer", "ImagePredictionVisualizer"]

__getattr__ = missing_names(
    __name__,
    {
        "ImageReconstruction": "use ImagePredictionVisualizer (input / target / prediction "
        "image grids every N epochs), or subclass BasePredictionVisualizer.",
    },
)
