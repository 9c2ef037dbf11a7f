"""``plot_losses``/``plot_metrics``: the points they draw and the figures they return."""

from __future__ import annotations

import math

import pytest
import torch
from models import TinyNet, accuracy

from nn_handler import NNHandler
from nn_handler._ops.plotting import plot_losses
from nn_handler.history import History

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402


def trained(data, epochs: int, validate_every: int) -> NNHandler:
    torch.manual_seed(0)
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.add_metric("acc", accuracy)
    handler.set_train_loader(data, batch_size=64)
    handler.set_val_loader(data, batch_size=64)
    handler.train(epochs, progress_bar=False, validate_every=validate_every)
    return handler


def curves(fig: Figure) -> dict[str, tuple[list[float], list[float]]]:
    (ax,) = fig.axes
    return {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
        for line in ax.get_lines()
    }


def test_validation_points_sit_at_the_epochs_that_validated(cls_data, tmp_path):
    handler = trained(cls_data, 6, validate_every=2)
    fig = handler.plot_losses(save_path=str(tmp_path / "loss.png"))
    assert isinstance(fig, Figure) and (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    drawn = curves(fig)
    assert drawn["train"] == ([1, 2, 3, 4, 5, 6], handler.train_losses)
    assert drawn["validation"] == ([2, 4, 6], handler.val_losses)

    figures = handler.plot_metrics(save_path_prefix=str(tmp_path / "m"))
    assert list(figures) == ["acc"] and isinstance(figures["acc"], Figure)
    assert curves(figures["acc"])["validation"] == ([2, 4, 6], handler.val_metrics_history["acc"])


def test_a_second_run_with_another_interval_keeps_each_epoch(cls_data):
    handler = trained(cls_data, 2, validate_every=1)
    handler.train(4, progress_bar=False, validate_every=3)  # epochs 3-6, validating at 3 and 6
    assert len(handler.val_losses) == 4
    assert curves(handler.plot_losses())["validation"][0] == [1, 2, 3, 6]


def test_the_epochs_survive_a_checkpoint(cls_data, tmp_path):
    handler = trained(cls_data, 4, validate_every=2)
    handler.save(str(tmp_path / "c.pth"))
    loaded = NNHandler.load(str(tmp_path / "c.pth"))
    assert curves(loaded.plot_losses())["validation"][0] == [2, 4]


def test_histories_without_epochs():
    """Older files: the original's NaN-padded validation history, or ours without the epochs
    (then validate_every spaces the points)."""
    original = History([3.0, 2.0, 1.0], [math.nan, 2.5, math.nan])
    assert curves(plot_losses(original, 0))["validation"] == ([2], [2.5])
    ours = History([3.0, 2.0, 1.0, 0.5], [2.5, 0.7])
    assert curves(plot_losses(ours, 0, validate_every=2))["validation"] == ([2, 4], [2.5, 0.7])
    state = ours.state_dict() | {"val_epochs": [1, 2, 3]}  # does not match the losses: dropped
    restored = History()
    restored.load_state_dict(state)
    assert restored.validation_epochs(2) == [2, 4]


def test_other_ranks_draw_nothing():
    assert plot_losses(History([1.0], [1.0]), rank=1) is None


def test_a_notebook_shows_the_figure_once():
    """`handler.plot_losses()` as a cell's last line (as the original's notebooks end) shows one
    image, not a second one for the returned figure; that figure displays in a later cell."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    cells = [
        "import torch\nfrom nn_handler import NNHandler\n"
        "h = NNHandler(torch.nn.Linear, in_features=2, out_features=1)\nh.plot_losses()",
        "fig = h.plot_losses(True)",
        "fig",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    images = [
        [o.output_type for o in cell.outputs if "image/png" in o.get("data", {})]
        for cell in nb.cells
    ]
    assert images == [["display_data"], ["display_data"], ["execute_result"]]
