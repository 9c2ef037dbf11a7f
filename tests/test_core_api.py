"""Construction, properties, configuration methods, inference utilities and misuse errors."""

from __future__ import annotations

import logging

import pytest
import torch
from models import AutoEncoder, TinyNet, accuracy
from torch import nn

import nn_handler
from nn_handler import LoggingMode, ModelType, NNHandler


def configured(data, **kwargs):
    torch.manual_seed(0)
    handler = NNHandler(TinyNet, **kwargs)
    handler.set_optimizer(torch.optim.Adam, lr=0.01)
    handler.set_loss_fn(nn.functional.cross_entropy)
    handler.set_train_loader(data, batch_size=32)
    return handler


def test_both_model_kwargs_spellings():
    a = NNHandler(TinyNet, hidden=5)
    b = NNHandler(TinyNet, model_kwargs={"hidden": 5})
    assert a.model_kwargs == b.model_kwargs == {"hidden": 5}
    assert a.module.body[0].out_features == b.module.body[0].out_features == 5


def test_model_type_as_enum_or_any_case_string():
    assert NNHandler(TinyNet, model_type="Regression").model_type is ModelType.REGRESSION
    assert NNHandler(TinyNet, model_type=ModelType.GENERATIVE).model_type is ModelType.GENERATIVE
    assert NNHandler(TinyNet, model_type="SCORE_BASED").model_type is ModelType.SCORE_BASED
    with pytest.raises(ValueError, match="valid values are 'classification', 'regression'"):
        NNHandler(TinyNet, model_type="segmentation")


def test_enums_reachable_from_the_class():
    assert NNHandler.ModelType is ModelType
    assert NNHandler.LoggingMode is LoggingMode


def test_model_class_must_be_a_module_class():
    with pytest.raises(TypeError, match="nn.Module subclass"):
        NNHandler(TinyNet())
    with pytest.raises(TypeError, match="nn.Module subclass"):
        NNHandler(dict)
    with pytest.raises(TypeError, match="Could not build TinyNet"):
        NNHandler(TinyNet, widht=3)


def test_single_process_rank_properties():
    handler = NNHandler(TinyNet)
    assert (handler._rank, handler._local_rank, handler._world_size) == (0, 0, 1)
    assert handler._distributed is False
    assert handler._stop_training is False


def test_use_distributed_true_outside_a_job_fails_clearly():
    with pytest.raises(RuntimeError, match="use_distributed=True"):
        NNHandler(TinyNet, use_distributed=True)


def test_device_handling():
    assert NNHandler(TinyNet, device=torch.device("cpu")).device == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="CUDA is not available"):
            handler = NNHandler(TinyNet, device="cuda")
        assert handler.device.type == "cpu"
    with pytest.raises(ValueError, match="Invalid device"):
        NNHandler(TinyNet, device="gpu0")


def test_logging_modes(tmp_path, capsys):
    log_file = tmp_path / "h.log"
    NNHandler(TinyNet, logger_mode=LoggingMode.FILE, logger_filename=str(log_file))
    assert "NNHandler ready" in log_file.read_text()
    NNHandler(TinyNet, logger_mode="console")
    assert "NNHandler ready" in capsys.readouterr().out
    NNHandler(TinyNet, logger_mode=None)
    assert capsys.readouterr().out == ""
    both = tmp_path / "both.log"
    handler = NNHandler(TinyNet, logger_mode="both", logger_filename=str(both))
    assert "NNHandler ready" in both.read_text() and "NNHandler ready" in capsys.readouterr().out
    assert isinstance(handler.logger, logging.Logger)


def test_set_model_rebuilds_the_optimizer_with_same_class_and_kwargs():
    handler = NNHandler(TinyNet)
    handler.set_optimizer(torch.optim.SGD, lr=0.3, momentum=0.5)
    old = handler.optimizer
    handler.set_model(TinyNet, hidden=7)
    assert handler.optimizer is not old
    assert isinstance(handler.optimizer, torch.optim.SGD)
    assert handler.optimizer.param_groups[0]["lr"] == 0.3
    params = {id(p) for p in handler.module.parameters()}
    assert {id(p) for p in handler.optimizer.param_groups[0]["params"]} == params


def test_optimizer_and_scheduler_validation():
    handler = NNHandler(TinyNet)
    with pytest.raises(TypeError, match="torch.optim.Optimizer subclass"):
        handler.set_optimizer(nn.Linear)
    with pytest.raises(RuntimeError, match="before set_scheduler"):
        handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    with pytest.raises(TypeError, match="lr_scheduler class"):
        handler.set_scheduler(torch.optim.SGD)
    with pytest.raises(TypeError, match="Could not build StepLR"):
        handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_sise=1)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1)
    assert isinstance(handler.scheduler, torch.optim.lr_scheduler.StepLR)
    handler.set_scheduler(None)
    assert handler.scheduler is None


def test_loss_properties():
    handler = NNHandler(TinyNet)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        handler.set_loss_fn("mse")
    handler.set_loss_fn(nn.functional.cross_entropy, label_smoothing=0.1)
    assert handler.loss_fn is nn.functional.cross_entropy
    assert handler.loss_fn_kwargs == {"label_smoothing": 0.1}
    handler.loss_fn_kwargs = {"label_smoothing": 0.2}
    assert handler.loss_fn_kwargs == {"label_smoothing": 0.2}
    with pytest.raises(TypeError, match="must be a dict"):
        handler.loss_fn_kwargs = [1]
    assert handler.pass_epoch_to_loss is False


def test_loader_validation(cls_data):
    handler = NNHandler(TinyNet)
    with pytest.raises(TypeError, match="Invalid DataLoader arguments for the train loader"):
        handler.set_train_loader(cls_data, batchsize=3)
    with pytest.raises(TypeError, match="expects a torch Dataset"):
        handler.set_val_loader(42)
    handler.set_train_loader(cls_data, batch_size=10, shuffle=True)
    assert handler.train_loader.batch_size == 10
    assert handler.val_loader is None


def test_metric_validation():
    handler = NNHandler(TinyNet)
    with pytest.raises(TypeError, match="must be a callable"):
        handler.add_metric("acc", 3)
    with pytest.raises(ValueError, match="must not start with 'val_'"):
        handler.add_metric("val_acc", accuracy)
    with pytest.raises(ValueError, match="reserved"):
        handler.add_metric("loss", accuracy)
    handler.add_metric("acc", accuracy)
    assert list(handler.metrics) == ["acc"]
    handler.clear_metrics()
    assert handler.metrics == {}


def test_callbacks_are_validated_and_bound():
    handler = NNHandler(TinyNet)
    cb = nn_handler.Callback()
    handler.add_callback(cb)
    assert cb.handler is handler and handler.callbacks == [cb]
    with pytest.raises(TypeError, match="add_callback expects"):
        handler.add_callback(object())
    handler.remove_callback(cb)
    assert handler.callbacks == []
    with pytest.raises(ValueError, match="not among this handler's callbacks"):
        handler.remove_callback(cb)
    handler.add_callback(cb)
    handler.clear_callbacks()
    assert handler.callbacks == []


def test_auto_save_settings_are_validated():
    handler = NNHandler(TinyNet)
    with pytest.raises(ValueError, match="interval -2 is invalid"):
        handler.auto_save(-2)
    with pytest.raises(ValueError, match="not a valid format string"):
        handler.auto_save(1, name="model_{epoch")
    with pytest.raises(TypeError, match="non-empty format string"):
        handler.auto_save(1, name=3)
    handler.auto_save(2, save_path="ckpts", name="m{epoch}", overwrite=True)
    assert (handler.save_interval, handler.save_path, handler.save_model_name) == (
        2,
        "ckpts",
        "m{epoch}",
    )
    assert handler.overwrite_last_saved is True
    with pytest.raises(TypeError, match="must be a bool"):
        handler.overwrite_last_saved = "yes"
    handler.save_interval = -1
    assert handler.save_interval == -1


def test_seed_property_reseeds_everything():
    handler = NNHandler(TinyNet)
    handler.seed = 123
    a = torch.rand(3)
    handler.seed = 123
    assert torch.equal(a, torch.rand(3)) and handler.seed == 123
    with pytest.raises(ValueError, match="seed must be an int"):
        handler.seed = -1


def test_two_handlers_share_no_state(cls_data):
    a, b = configured(cls_data), configured(cls_data)
    a.add_metric("acc", accuracy)
    a.add_callback(nn_handler.Callback())
    a.keep_eval_on_module(a.module.body[0])
    a.train(1, progress_bar=False)
    assert b.train_losses == [] and b.metrics == {} and b.callbacks == []
    assert b.setup.eval_modules == ()
    assert a.logger is not b.logger


def test_history_properties_return_copies(cls_data):
    handler = configured(cls_data)
    handler.train(1, progress_bar=False)
    handler.train_losses.append(99.0)
    assert len(handler.train_losses) == 1


def test_predict_call_and_eval(cls_data):
    handler = configured(cls_data)
    handler.train(1, progress_bar=False)
    loader = torch.utils.data.DataLoader(cls_data, batch_size=50)
    outputs = handler.predict(loader)
    assert [o.shape for o in outputs] == [(50, 3), (50, 3), (50, 3), (42, 3)]
    x = cls_data.tensors[0]
    handler.eval()
    assert not handler.module.training
    with torch.no_grad():
        assert torch.allclose(torch.cat(outputs), handler(x))
    handler.eval(activate=False, log=False)
    assert handler.module.training
    bare = handler.predict(torch.utils.data.DataLoader(x, batch_size=64))
    assert torch.allclose(torch.cat(bare), torch.cat(outputs))


def test_freeze_and_count_parameters():
    handler = NNHandler(TinyNet, hidden=4)  # 8*4+4 + 4*3+3 = 51
    assert handler.count_parameters() == 51
    handler.freeze_module(handler.module.body[0], verbose=True)
    assert handler.count_parameters() == 15
    assert handler.count_parameters(trainable_only=False) == 51
    with pytest.raises(TypeError, match="expects an nn.Module"):
        handler.freeze_module("body")


def test_print_and_str_also_after_compile(cls_data):
    handler = configured(cls_data)
    text = handler.print(show_model_structure=True)
    assert "TinyNet" in text and "Linear(in_features=8" in text
    assert str(handler).startswith("NNHandler")
    handler.compile_model()
    assert "TinyNet" in handler.print()
    assert handler.model is not handler.module


def test_attribute_fall_through_to_the_model():
    handler = NNHandler(AutoEncoder, latent=5)
    assert handler.latent_dim == 5
    with pytest.raises(AttributeError, match="Neither NNHandler nor its model"):
        _ = handler.no_such_attribute


def test_plots_are_written(cls_data, tmp_path):
    pytest.importorskip("matplotlib")
    handler = configured(cls_data)
    handler.add_metric("acc", accuracy)
    handler.set_val_loader(cls_data, batch_size=64)
    handler.train(2, progress_bar=False)
    handler.plot_losses(save_path=str(tmp_path / "loss.png"))
    handler.plot_metrics(log_y_scale=True, save_path_prefix=str(tmp_path / "m"))
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "m_metric_acc.png").read_bytes()[:4] == b"\x89PNG"
