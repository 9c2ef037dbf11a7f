"""The rest of the original's code surface: ``nn_handler.utils``' names, ``Scaler``,
``import_with_fallback`` and ``model_utils.scheduler``'s epoch schedules."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys

import pytest
import torch
from torch import nn

import nn_handler.utils as utils
from nn_handler.model_utils.scheduler import (
    ConstantSchedule,
    CosineSchedule,
    LinearSchedule,
    LogLinearSchedule,
    MultiStepSchedule,
    Schedule,
    StepSchedule,
)
from nn_handler.utils import dummy_classes
from nn_handler.utils.import_utils import import_with_fallback
from nn_handler.utils.transforms import Scaler


# ---------------------------------------------------------------------- utils' names
def test_utils_exports_the_originals_names_as_the_one_implementation():
    from nn_handler import enums
    from nn_handler._env import devices as _devices
    from nn_handler.utils import ddp

    for name in ("initialize_ddp", "on_rank", "parallelize_on_gpus", "parallel_on_all_devices"):
        assert getattr(utils, name) is getattr(ddp, name)
    for name in ("aggregate_loss", "aggregate_metrics", "_should_use_distributed"):
        assert getattr(utils, name) is getattr(ddp, name)
    assert utils._initialize_distributed is ddp._initialize_distributed
    assert utils._resolve_device is _devices.resolve_device
    assert utils.ModelType is enums.ModelType and utils.LoggingMode is enums.LoggingMode
    assert utils.DataLoaderType.__name__ == "DataLoaderType"
    assert utils.Scaler is Scaler and utils.import_with_fallback is import_with_fallback
    for name in ("parallel_on_all_devices", "import_with_fallback", "Scaler", "DataLoaderType"):
        assert name in utils.__all__


def test_amp_and_ema_names_are_torchs_and_torch_emas_or_the_stand_ins():
    assert utils.GradScaler is torch.amp.GradScaler and utils.autocast is torch.amp.autocast
    assert utils._amp_available is True
    if importlib.util.find_spec("torch_ema") is not None:
        import torch_ema

        assert utils.ExponentialMovingAverage is torch_ema.ExponentialMovingAverage
        assert utils._ema_available is True
    else:
        assert utils.ExponentialMovingAverage is dummy_classes.ExponentialMovingAverage
        assert utils._ema_available is False
    with pytest.raises(AttributeError, match="no_such_name"):
        utils.no_such_name  # noqa: B018


def test_importing_nn_handler_does_not_import_torch_ema():
    code = "import sys, nn_handler, nn_handler.utils; print('torch_ema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------- import_with_fallback
def test_import_with_fallback_takes_the_real_module_when_it_imports():
    (scaler, autocast), found = import_with_fallback("torch.amp", ["GradScaler", "autocast"])
    assert (scaler, autocast, found) == (torch.amp.GradScaler, torch.amp.autocast, True)


def test_import_with_fallback_takes_the_stand_ins_when_the_module_is_missing():
    (ema, scaler), found = import_with_fallback(
        "no_such_module_for_nn_handler", ["ExponentialMovingAverage", "GradScaler"]
    )
    assert found is False
    assert (ema, scaler) == (dummy_classes.ExponentialMovingAverage, dummy_classes.GradScaler)
    (model_type,), found = import_with_fallback("no_such_module_either", ["ModelType"], "enums")
    assert model_type is utils.ModelType and found is False


def test_import_with_fallback_refuses_a_bare_string_and_reports_a_missing_name():
    with pytest.raises(TypeError, match=r"\['GradScaler'\]"):
        import_with_fallback("torch.amp", "GradScaler")
    with pytest.raises(AttributeError, match="NoSuchClass"):
        import_with_fallback("torch.amp", ["NoSuchClass"])


# ------------------------------------------------------------------------------ Scaler
def test_scaler_standardises_and_its_inverse_undoes_it():
    x = torch.tensor([[2.0, 6.0, -2.0]])
    forward = Scaler(2.0, 4.0)
    assert forward(x).tolist() == [[0.0, 1.0, -1.0]]
    back = Scaler(2.0, 4.0, inverse=True)
    assert back(torch.tensor([0.0, 1.0, -1.0])).tolist() == [2.0, 6.0, -2.0]
    y = torch.randn(5, 3)
    assert torch.allclose(back(forward(y)), y)


def test_scaler_is_a_module_without_state_and_broadcasts_per_channel():
    mean = torch.tensor([1.0, 10.0]).view(1, 2, 1, 1)
    std = torch.tensor([2.0, 5.0]).view(1, 2, 1, 1)
    model = nn.Sequential(Scaler(mean, std), nn.Identity())
    x = torch.stack([torch.full((3, 3), 5.0), torch.full((3, 3), 20.0)]).unsqueeze(0)
    out = model(x)
    assert out[0, 0].unique().tolist() == [2.0] and out[0, 1].unique().tolist() == [2.0]
    assert isinstance(model[0], nn.Module) and model.state_dict() == {}
    assert Scaler(0.0, 1.0, False).inverse is False


# --------------------------------------------------------------------------- schedules
def test_schedules_by_hand():
    assert ConstantSchedule(3.0).get_value(0) == 3.0 == ConstantSchedule(3.0).get_value(999)

    linear = LinearSchedule(1.0, 0.0, 10, 20)
    assert [linear.get_value(e) for e in (0, 10, 15, 18, 20, 30)] == pytest.approx(
        [1.0, 1.0, 0.5, 0.2, 0.0, 0.0]
    )
    log_linear = LogLinearSchedule(1.0, 0.01, 0, 10)
    assert [log_linear.get_value(e) for e in (0, 5, 10)] == pytest.approx([1.0, 0.1, 0.01])
    cosine = CosineSchedule(1.0, 0.0, 0, 10)
    # end + (start - end) (1 + cos(pi * 3 / 10)) / 2 at epoch 3
    assert cosine.get_value(3) == pytest.approx(0.5 * (1 + math.cos(0.3 * math.pi)))
    assert [cosine.get_value(e) for e in (0, 5, 10)] == pytest.approx([1.0, 0.5, 0.0])
    step = StepSchedule(1.0, step_size=10, gamma=0.5)
    assert [step.get_value(e) for e in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    multi = MultiStepSchedule(2.0, milestones=[30, 10], gamma=0.1)
    assert multi.milestones == [10, 30]
    assert [multi.get_value(e) for e in (9, 10, 29, 30)] == pytest.approx([2.0, 0.2, 0.2, 0.02])


def test_a_schedule_implements_get_value():
    with pytest.raises(TypeError, match="get_value"):
        Schedule()

    class Squares(Schedule):
        def get_value(self, epoch):
            return float(epoch**2)

    assert Squares().get_value(3) == 9.0


def test_schedule_plot_returns_the_figure_of_its_values():
    pytest.importorskip("matplotlib")
    import matplotlib
    import matplotlib.pyplot

    matplotlib.use("Agg")
    fig = StepSchedule(1.0, 2, 0.5).plot(epochs=5, title="step")
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_xdata()) == [0, 1, 2, 3, 4]
    assert list(line.get_ydata()) == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert fig.axes[0].get_title() == "step"
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: LogLinearSchedule(0.0, 1.0, 0, 10), "must be positive"),
        (lambda: LinearSchedule(1.0, 0.0, 10, 5), "end_epoch"),
        (lambda: CosineSchedule(1.0, 0.0, 10, 5), "end_epoch"),
        (lambda: StepSchedule(1.0, 0), "step_size"),
    ],
)
def test_bad_schedules_are_refused_by_name(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# ---------------------------------------------------------------- make_train_val_indices
def test_train_val_split_by_hand_and_kept_in_its_file(tmp_path):
    import numpy as np

    from nn_handler.dataloaders.split import make_train_val_indices

    perm = np.random.default_rng(7).permutation(10)  # validation: the first round(0.3 * 10)
    train, val = make_train_val_indices(10, 0.3, seed=7)
    assert val.tolist() == sorted(perm[:3].tolist())
    assert train.tolist() == sorted(perm[3:].tolist())

    path = tmp_path / "split"  # no .npz suffix: written at exactly this path
    first = make_train_val_indices(10, 0.3, seed=7, save_path=str(path))
    assert path.is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["split"]
    again = make_train_val_indices(10, 0.5, seed=99, save_path=str(path))  # read back
    assert [a.tolist() for a in again] == [a.tolist() for a in first]
    fresh = make_train_val_indices(10, 0.5, seed=99, save_path=str(path), overwrite=True)
    assert len(fresh[1]) == 5 and len(np.load(path)["val_idx"]) == 5


def test_train_val_split_reads_no_pickle_and_refuses_bad_arguments(tmp_path):
    import numpy as np

    from nn_handler.dataloaders import make_train_val_indices

    path = tmp_path / "split.npz"
    np.savez(path, train_idx=np.array([object()]), val_idx=np.array([1]))
    with pytest.raises(ValueError, match="allow_pickle"):
        make_train_val_indices(10, save_path=str(path))
    with pytest.raises(ValueError, match="val_fraction"):
        make_train_val_indices(10, val_fraction=1.5)
    with pytest.raises(ValueError, match="n_items"):
        make_train_val_indices(-1)
