"""Prediction visualizers: draw the model's outputs on a fixed batch every N epochs."""

from __future__ import annotations

import abc
import os
import warnings
from collections.abc import Callable
from typing import Any

import torch

from .._env.write_guard import checked_destination
from ._common import bare_module, is_rank_zero, positive_int
from .base import Callback

__all__ = ["BasePredictionVisualizer", "ImagePredictionVisualizer"]


def _split(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, (list, tuple)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def _head(value: Any, n: int, device: torch.device | None) -> Any:
    if isinstance(value, torch.Tensor):
        value = value[:n]
        return value.to(device) if device is not None else value
    return value


class BasePredictionVisualizer(Callback, abc.ABC):
    """Every ``log_freq_epoch`` epochs, predict on a fixed batch and draw it.

    Subclasses implement ``_visualize_batch(inputs, targets, predictions, epoch)``; tensors arrive
    on the CPU as float32, ``epoch`` is 1-based. Runs on rank 0 only, under ``torch.no_grad`` with
    the model in eval mode (each submodule's mode is restored afterwards).

    Args:
        log_freq_epoch: visualize every N epochs.
        num_samples: how many samples of the batch to show.
        save_dir: where image files go (created, with its parents, before the first
            visualization); None writes nothing.
        val_loader: a loader whose first batch is used (taken once, then kept).
        use_fixed_batch: use ``fixed_batch`` instead of a loader.
        fixed_batch: ``inputs`` or ``(inputs, targets, ...)``.
        get_predictions_fn: ``f(model, inputs) -> predictions``; default ``model(inputs)``
            with the bare model.

    With neither a loader nor a fixed batch, the handler's validation loader is used.
    """

    @staticmethod
    def default_prediction_fn(model: Callable[..., Any], model_inputs: Any, **kwargs: Any) -> Any:
        return model(model_inputs, **kwargs)

    def __init__(
        self,
        log_freq_epoch: int = 5,
        num_samples: int = 8,
        save_dir: str | None = "./viz_predictions",
        val_loader: Any = None,
        use_fixed_batch: bool = False,
        fixed_batch: Any = None,
        get_predictions_fn: Callable[..., Any] | None = None,
    ):
        super().__init__()
        positive_int(type(self).__name__, "log_freq_epoch", log_freq_epoch)
        positive_int(type(self).__name__, "num_samples", num_samples)
        if use_fixed_batch and fixed_batch is None:
            raise ValueError("use_fixed_batch=True needs fixed_batch=(inputs, targets) or inputs.")
        self.log_freq_epoch = log_freq_epoch
        self.num_samples = num_samples
        self.save_dir = os.fspath(save_dir) if save_dir is not None else None
        self.val_loader = val_loader
        self.use_fixed_batch = use_fixed_batch
        self.get_predictions_fn = get_predictions_fn or self.default_prediction_fn
        self._batch = fixed_batch if use_fixed_batch else None
        self._warned_no_data = False
        self.saved_files: list[str] = []

    def _fixed_batch(self) -> Any:
        if self._batch is None:
            loader = self.val_loader or getattr(self.handler, "val_loader", None)
            if loader is None:
                if not self._warned_no_data:
                    self._warned_no_data = True
                    warnings.warn(
                        f"{type(self).__name__}: no batch to visualize; pass val_loader= or "
                        "fixed_batch= (with use_fixed_batch=True), or set a validation loader.",
                        RuntimeWarning,
                        stacklevel=3,
                    )
                return None
            self._batch = next(iter(loader))
        return self._batch

    def predict_batch(self) -> tuple[torch.Tensor, Any, Any] | None:
        """``(inputs, targets, predictions)`` for the fixed batch, on the CPU."""
        batch = self._fixed_batch()
        if batch is None:
            return None
        model = bare_module(self.handler)
        device = next(model.parameters(), torch.empty(0)).device
        inputs, targets = _split(batch)
        inputs = _head(inputs, self.num_samples, device)
        targets = _head(targets, self.num_samples, None)
        modes = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            with torch.no_grad():
                predictions = self.get_predictions_fn(model, inputs)
        finally:
            for module, mode in modes:
                module.training = mode
        return _cpu(inputs), _cpu(targets), _cpu(predictions)

    @abc.abstractmethod
    def _visualize_batch(self, inputs: Any, targets: Any, predictions: Any, epoch: int) -> None:
        """Draw (and usually save) one visualization; ``epoch`` is 1-based."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1) % self.log_freq_epoch or not is_rank_zero(self.handler):
            return
        result = self.predict_batch()
        if result is not None:
            if self.save_dir:
                save_dir = checked_destination(self.save_dir, self.write_roots, "images")
                os.makedirs(save_dir, exist_ok=True)
            self._visualize_batch(*result, epoch + 1)


def _cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float32)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], torch.Tensor):
        return _cpu(value[0])  # models returning (output, extra...): show the first
    return value


def _as_image(t: torch.Tensor) -> torch.Tensor:
    """(C, H, W) → (H, W[, C]) for imshow; RGB values are clipped to [0, 1]."""
    if t.ndim == 3 and t.shape[0] in (1, 3, 4):
        t = t.permute(1, 2, 0)
        if t.shape[-1] == 1:
            return t[..., 0]
        return t.clamp(0.0, 1.0)
    return t


class ImagePredictionVisualizer(BasePredictionVisualizer):
    """Save a PNG grid of input / target / prediction images every ``log_freq_epoch`` epochs.

    Files are ``<save_dir>/epoch_<NNNN>_predictions.png`` (1-based epoch). Images are ``(C, H, W)``
    (C = 1, 3 or 4) or ``(H, W)`` tensors; 1-D samples are drawn as curves. Takes every argument of
    :class:`BasePredictionVisualizer` plus:

    Args:
        show: also show the figure with ``matplotlib.pyplot`` (interactive sessions).
        clear_cell: in a notebook, replace the previous figure (needs IPython).
        vertical: one row per sample (default: one column per sample).
    """

    def __init__(
        self,
        log_freq_epoch: int = 5,
        num_samples: int = 8,
        save_dir: str | None = "./viz_predictions",
        val_loader: Any = None,
        use_fixed_batch: bool = False,
        fixed_batch: Any = None,
        get_predictions_fn: Callable[..., Any] | None = None,
        show: bool = False,
        clear_cell: bool = False,
        vertical: bool = False,
    ):
        super().__init__(
            log_freq_epoch=log_freq_epoch,
            num_samples=num_samples,
            save_dir=save_dir,
            val_loader=val_loader,
            use_fixed_batch=use_fixed_batch,
            fixed_batch=fixed_batch,
            get_predictions_fn=get_predictions_fn,
        )
        try:
            import matplotlib  # noqa: F401
        except ImportError as err:
            raise ImportError(
                "ImagePredictionVisualizer needs matplotlib: pip install matplotlib"
            ) from err
        if clear_cell:
            try:
                import IPython  # noqa: F401
            except ImportError as err:
                raise ImportError("clear_cell=True needs IPython: pip install ipython") from err
        self.show = show
        self.clear_cell = clear_cell
        self.vertical = vertical

    def make_figure(self, inputs: Any, targets: Any, predictions: Any, epoch: int) -> Any:
        """The ``matplotlib.figure.Figure`` of one grid."""
        columns = [("Input", inputs)]
        if isinstance(targets, torch.Tensor) and targets.shape[1:] == predictions.shape[1:]:
            columns.append(("Target", targets))
        columns.append(("Prediction", predictions))
        n = min(self.num_samples, int(predictions.shape[0]))
        rows, cols = (n, len(columns)) if self.vertical else (len(columns), n)
        size = (2.2 * cols, 2.2 * rows)
        if self.show:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=size)
        else:
            # A bare Figure: no pyplot state, no GUI backend, safe in scripts and threads.
            from matplotlib.figure import Figure

            fig = Figure(figsize=size)
        axes = fig.subplots(rows, cols, squeeze=False)
        for i in range(n):
            for j, (title, data) in enumerate(columns):
                ax = axes[i][j] if self.vertical else axes[j][i]
                sample = data[i]
                if sample.ndim <= 1:
                    ax.plot(sample.reshape(-1).numpy())
                else:
                    image = _as_image(sample)
                    ax.imshow(image.numpy(), cmap="gray" if image.ndim == 2 else None)
                    ax.axis("off")
                ax.set_title(f"{title} {i}", fontsize=8)
        fig.suptitle(f"Predictions - epoch {epoch}")
        fig.tight_layout()
        return fig

    def _visualize_batch(self, inputs: Any, targets: Any, predictions: Any, epoch: int) -> None:
        fig = self.make_figure(inputs, targets, predictions, epoch)
        if self.save_dir:
            path = os.path.join(self.save_dir, f"epoch_{epoch:04d}_predictions.png")
            fig.savefig(checked_destination(path, self.write_roots, "an image"))
            self.saved_files.append(path)
        if self.clear_cell:
            from IPython.display import clear_output, display

            clear_output(wait=True)
            display(fig)
        if self.show:
            import matplotlib.pyplot as plt

            plt.show(block=False)
