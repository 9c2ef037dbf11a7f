"""Chunked steps (``train(steps_per_execution=K)``) and the module's manual optimization.

K batches per Lightning step must change nothing but speed: the same history, the same weights
bit for bit, the same step counts, the same native-callback calls as one batch per step, and
both equal to what Lightning's automatic optimization computed before (the exported module still
trains that way, so it is the reference).
"""

from __future__ import annotations

import math
import os
import signal

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import Logger
from models import AutoEncoder, TinyNet, accuracy
from nn_handler.adapters.fit.null_profiler import NullProfiler
from nn_handler.adapters.steps.chunked_module import ChunkedHandlerModule
from nn_handler.adapters.steps.module import HandlerModule
from nn_handler.adapters.steps.steps_per_execution import AUTO_BATCHES
from torch import nn
from torch.utils.data import IterableDataset, TensorDataset

from nn_handler import VESDE, Callback, NNHandler, denoising_score_matching

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings(
        "ignore:The `srun` command is available",
        "ignore:.*isinstance\\(treespec, LeafSpec\\)",
        "ignore:Be aware that when using `ckpt_path`",
    ),
]

N, BATCH, VAL_BATCH = 100, 8, 16  # 13 training batches (the last one of 4), 7 validation batches
TRAIN_BATCHES, VAL_BATCHES = math.ceil(N / BATCH), math.ceil(N / VAL_BATCH)


class Score(nn.Module):
    """A small score model ``s(t, x)``."""

    def __init__(self, dim: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim + 1, 16), nn.Tanh(), nn.Linear(16, dim))

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([t[:, None], x], dim=1))


class BatchCounter(Callback):
    """A native callback recording every batch hook with its logs."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("train_begin", batch, logs["size"]))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("train_end", batch, logs["size"], logs["loss"]))

    def on_val_batch_begin(self, batch, logs=None):
        self.calls.append(("val_begin", batch, logs["size"]))

    def on_val_batch_end(self, batch, logs=None):
        self.calls.append(("val_end", batch, logs["size"], logs["val_loss"]))


class ModuleProbe(L.Callback):
    """Which module class ran, with how many batches per step, and the Trainer's profiler."""

    def on_train_start(self, trainer, pl_module):
        self.module_class = type(pl_module)
        self.batches = getattr(pl_module, "steps_per_execution", 1)
        self.profiler = trainer.profiler
        self.automatic = pl_module.automatic_optimization


def _data(kind: str):
    g = torch.Generator().manual_seed(0)
    if kind == "score_based":
        return TensorDataset(torch.randn(N, 2, generator=g) * 0.5 + 1.0)
    x = torch.randn(N, 8, generator=g)
    if kind == "classification":
        return TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long())
    if kind == "regression":
        return TensorDataset(x, x[:, :1] * 0.7 - x[:, 1:2])
    return TensorDataset(x)


def _mae(outputs, targets):
    return (outputs - targets).abs().mean()


def make(kind: str = "classification", native=None, model=None, **loader):
    torch.manual_seed(0)
    if kind == "classification":
        h = NNHandler(TinyNet)
        h.set_loss_fn(nn.functional.cross_entropy)
        h.add_metric("accuracy", accuracy)
    elif kind == "regression":
        if model is None:
            h = NNHandler(TinyNet, model_type="regression", out_features=1)
        else:
            h = NNHandler(model, model_type="regression")
        h.set_loss_fn(nn.functional.mse_loss)
        h.add_metric("mae", _mae)
    elif kind == "generative":
        h = NNHandler(AutoEncoder, model_type="generative")
        h.set_loss_fn(nn.functional.mse_loss)
    else:
        h = NNHandler(Score, model_type="score_based")
        h.set_sde(VESDE, sigma_min=0.01, sigma_max=5.0)
        h.set_loss_fn(denoising_score_matching)
    h.set_optimizer(torch.optim.Adam, lr=1e-2)
    h.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.8)
    data = _data(kind)
    h.set_train_loader(data, batch_size=BATCH, shuffle=True, **loader)
    h.set_val_loader(data, batch_size=VAL_BATCH)
    if native is not None:
        h.add_callback(native)
    return h


def _history(h):
    return (h.train_losses, h.val_losses, h.train_metrics_history, h.val_metrics_history)


def _states(h):
    out = dict(h.module.state_dict())
    if h.ema is not None:
        out.update({f"ema.{k}": v for k, v in h.ema.state_dict().items()})
    return out


def assert_same_run(a, b):
    assert _history(a) == _history(b)
    sa, sb = _states(a), _states(b)
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert a.run_state.global_step == b.run_state.global_step
    assert a.optimizer.param_groups[0]["lr"] == b.optimizer.param_groups[0]["lr"]


TRAIN = dict(
    progress_bar=False,
    gradient_accumulation_steps=3,
    gradient_clipping_norm=0.05,
    ema_decay=0.9,
    seed=3,
)


# ------------------------------------------------------------------ K = 16 equals K = 1
@pytest.mark.parametrize("kind", ["classification", "regression", "generative", "score_based"])
def test_sixteen_batches_per_step_equal_one_batch_per_step(kind):
    runs = {}
    for k in (1, 5, 16):
        counter, probe = BatchCounter(), ModuleProbe()
        h = make(kind, counter)
        h.add_callback(probe)
        h.train(3, steps_per_execution=k, **TRAIN)
        runs[k] = (h, counter, probe)
    one, counter_one, probe_one = runs[1]
    calls_one = counter_one.calls
    assert probe_one.module_class is HandlerModule and probe_one.automatic is False
    for k in (5, 16):
        h, counter, probe = runs[k]
        assert probe.module_class is ChunkedHandlerModule and probe.batches == k
        assert_same_run(h, one)
        assert counter.calls == calls_one
    # Every batch reached the native callback, in order, with its own loss.
    train_ends = [c for c in calls_one if c[0] == "train_end"]
    assert [c[1] for c in train_ends] == list(range(TRAIN_BATCHES)) * 3
    assert [c[2] for c in train_ends[:TRAIN_BATCHES]] == [BATCH] * (TRAIN_BATCHES - 1) + [4]
    assert len({c[3] for c in train_ends}) > TRAIN_BATCHES  # losses differ batch to batch
    val_ends = [c for c in calls_one if c[0] == "val_end"]
    assert [c[1] for c in val_ends] == list(range(VAL_BATCHES)) * 3
    # 13 batches in windows of 3: 5 optimizer steps per epoch (the last window has one batch).
    assert one.run_state.global_step == 3 * math.ceil(TRAIN_BATCHES / 3)
    assert int(one.ema.n_averaged) == one.run_state.global_step
    assert len(one.train_losses) == 3 and all(math.isfinite(v) for v in one.train_losses)


def test_auto_runs_sixteen_and_equals_one():
    probe = ModuleProbe()
    auto = make()
    auto.add_callback(probe)
    auto.train(2, **TRAIN)
    assert probe.module_class is ChunkedHandlerModule and probe.batches == AUTO_BATCHES == 16
    assert isinstance(probe.profiler, NullProfiler)
    one = make()
    one.train(2, steps_per_execution=1, **TRAIN)
    assert_same_run(auto, one)


def test_two_train_calls_equal_one_call_at_sixteen():
    whole = make()
    whole.train(4, steps_per_execution=16, **TRAIN)
    halves = make()
    halves.train(2, steps_per_execution=16, **TRAIN)
    halves.train(2, steps_per_execution=16, **{**TRAIN, "seed": None})
    # The second call continues epochs, steps and the generators (seeded once, as in one run).
    assert halves.run_state.global_step == whole.run_state.global_step == 4 * 5
    assert_same_run(halves, whole)


# ------------------------------------------------- manual optimization = automatic (before)
def _automatic(
    kind: str,
    epochs: int,
    accumulate: int,
    clip: float | None,
    model=None,
    prepare=None,
    **trainer_args,
):
    """The same training through the exported module: Lightning's automatic optimization, with
    accumulation and clipping done by the Trainer, as ``train()`` did before."""
    from nn_handler._env.seeding import seed_everything

    h = make(kind, model=model)
    if prepare is not None:
        prepare(h)
    module = h.to_lightning_module()
    seed_everything(TRAIN["seed"])
    trainer = L.Trainer(
        max_epochs=epochs,
        accumulate_grad_batches=accumulate,
        gradient_clip_val=clip,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **trainer_args,
    )
    assert module.automatic_optimization
    trainer.fit(module, datamodule=h.to_datamodule())
    return h


@pytest.mark.parametrize("accumulate, clip", [(1, None), (3, 0.05), (4, 0.5)])
@pytest.mark.parametrize("k", [1, 16])
def test_manual_optimization_equals_lightnings_automatic(accumulate, clip, k):
    reference = _automatic("classification", 3, accumulate, clip)
    h = make("classification")
    h.train(
        3,
        steps_per_execution=k,
        progress_bar=False,
        gradient_accumulation_steps=accumulate,
        gradient_clipping_norm=clip,
        seed=TRAIN["seed"],
    )
    assert_same_run(h, reference)


class _LinearFn(torch.autograd.Function):
    """``x @ w.T`` with a backward written in Python: its ops would autocast if backward ran
    inside the autocast region."""

    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x.mm(w.t())

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        return grad.mm(w), grad.t().mm(x)


class PythonBackwardNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(8, 16)
        self.w = nn.Parameter(torch.randn(1, 16) * 0.3)

    def forward(self, x):
        h = torch.tanh(self.hidden(x)).float()
        with torch.autocast("cpu", enabled=False):
            return _LinearFn.apply(h, self.w)


@pytest.mark.parametrize("model", [None, PythonBackwardNet])
def test_amp_with_a_grad_scaler_equals_automatic_on_cpu(model):
    """Mixed precision with a GradScaler (float16 autocast runs on the CPU too): backward and
    the step outside autocast, unscaling before clipping, the scaler's step and update, and its
    state, as Lightning's automatic optimization does them."""
    from lightning.pytorch.plugins import MixedPrecision

    def plugin():
        return MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))

    reference_plugin = plugin()
    reference = _automatic("regression", 2, 2, 0.5, model=model, plugins=[reference_plugin])
    if model is None:
        # float16 overflowed once at the start: the scaler skipped that step, halved its scale.
        assert reference_plugin.scaler.get_scale() == 32768.0
    for k in (1, 16):
        scaler_plugin = plugin()
        h = make("regression", model=model)
        h.train(
            2,
            steps_per_execution=k,
            progress_bar=False,
            gradient_accumulation_steps=2,
            gradient_clipping_norm=0.5,
            seed=TRAIN["seed"],
            trainer_kwargs={"plugins": [scaler_plugin], "precision": None},
        )
        assert_same_run(h, reference)
        assert scaler_plugin.scaler.state_dict() == reference_plugin.scaler.state_dict()


def test_trainer_kwargs_accumulation_and_value_clipping_are_taken_over():
    reference = _automatic("classification", 2, 2, 0.01, gradient_clip_algorithm="value")
    h = make("classification")
    h.train(
        2,
        progress_bar=False,
        seed=TRAIN["seed"],
        trainer_kwargs={
            "accumulate_grad_batches": 2,
            "gradient_clip_val": 0.01,
            "gradient_clip_algorithm": "value",
        },
    )
    assert_same_run(h, reference)


def test_bad_accumulation_or_clipping_in_trainer_kwargs_is_named():
    h = make()
    with pytest.raises(ValueError, match="accumulate_grad_batches must be a positive int"):
        h.train(1, progress_bar=False, trainer_kwargs={"accumulate_grad_batches": 0})
    with pytest.raises(ValueError, match="gradient_clip_algorithm must be 'norm' or 'value'"):
        h.train(1, progress_bar=False, trainer_kwargs={"gradient_clip_algorithm": "max"})


class NaNOnce(nn.Module):
    """A loss that is NaN for the batch whose first target is the marker class 9."""

    def forward(self, outputs, targets):
        loss = nn.functional.cross_entropy(outputs, targets.clamp(max=2))
        return loss * float("nan") if int(targets[0]) == 9 else loss


@pytest.mark.parametrize("batch", [4, 5, 12])  # a window's first, middle and last batch
def test_a_non_finite_batch_is_skipped_alike(batch):
    """SPEC §3.4: one warning, no backward for that batch; the window still steps."""

    def run(k):
        h = make()
        x, y = _data("classification").tensors
        y = y.clone()
        y[batch * BATCH] = 9
        h.set_loss_fn(NaNOnce())
        h.set_train_loader(TensorDataset(x, y), batch_size=BATCH)
        with pytest.warns(RuntimeWarning, match="Non-finite training loss") as caught:
            h.train(2, steps_per_execution=k, **TRAIN)
        assert sum("Non-finite" in str(w.message) for w in caught) == 1
        return h

    one, sixteen = run(1), run(16)
    assert_same_run(one, sixteen)
    assert one.run_state.global_step == 2 * 5  # a skipped batch's window still counts its step


# ------------------------------------------------------------- hooks, counts, stopping
class StepHooks(L.Callback):
    """Overrides Lightning's backward and optimizer-step hooks: they must run per batch/step."""

    def __init__(self):
        self.backward = self.before_step = 0

    def on_after_backward(self, trainer, pl_module):
        self.backward += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.before_step += 1


@pytest.mark.parametrize("k", [1, 16])
def test_lightning_step_hooks_run_per_batch_and_per_step(k):
    hooks = StepHooks()
    h = make()
    h.add_callback(hooks)
    h.train(2, steps_per_execution=k, **TRAIN)
    assert hooks.backward == 2 * TRAIN_BATCHES
    assert hooks.before_step == h.run_state.global_step == 2 * 5
    plain = make()
    plain.train(2, steps_per_execution=k, **TRAIN)
    assert_same_run(h, plain)  # the hooked path computes the same numbers


class BatchHook(L.Callback):
    def __init__(self):
        self.seen = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen.append(batch_idx)


def test_auto_picks_one_for_a_lightning_batch_hook_and_an_int_is_honoured():
    hook, probe = BatchHook(), ModuleProbe()
    h = make()
    h.add_callback(hook)
    h.add_callback(probe)
    h.train(1, progress_bar=False)
    assert probe.module_class is HandlerModule
    assert hook.seen == list(range(TRAIN_BATCHES))
    # Asked for 5: Lightning's batch hooks see one call per chunk (the chunk's last batch).
    hook.seen.clear()
    h.train(1, progress_bar=False, steps_per_execution=5)
    assert probe.batches == 5 and hook.seen == [4, 9, 12]


class Stream(IterableDataset):
    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        for _ in range(4):
            x = torch.randn(8, generator=g)
            yield x, int(x[0] > 0)


@pytest.mark.parametrize(
    "setting, why",
    [
        ({"trainer_kwargs": {"val_check_interval": 3}}, "val_check_interval"),
        ({"trainer_kwargs": {"max_steps": 7}}, "max_steps"),
        ({"loader": Stream()}, "has no length"),
    ],
)
def test_one_batch_per_step_where_chunks_cannot_be_exact(setting, why):
    kwargs = setting.get("trainer_kwargs", {})
    for asked in ("auto", 8):
        probe = ModuleProbe()
        h = make()
        h.add_callback(probe)
        if "loader" in setting:
            h.set_train_loader(setting["loader"], batch_size=2)
        if asked == "auto":  # quietly one
            h.train(1, progress_bar=False, trainer_kwargs=kwargs)
        else:
            with pytest.warns(UserWarning, match=f"steps_per_execution=8 runs as 1 .*{why}"):
                h.train(1, progress_bar=False, trainer_kwargs=kwargs, steps_per_execution=8)
        assert probe.module_class is HandlerModule


@pytest.mark.parametrize("value", [0, -2, True, 2.5, "fast", None])
def test_bad_steps_per_execution_is_refused(value):
    h = make()
    with pytest.raises(ValueError, match='steps_per_execution must be "auto" or a positive int'):
        h.train(1, progress_bar=False, steps_per_execution=value)
    assert h.train_losses == []


class StopTraining(Callback):
    """Asks to stop from a batch hook (epoch 2, batch 3): training ends after that epoch."""

    def on_train_batch_end(self, batch, logs=None):
        if len(self.handler.train_losses) == 1 and batch == 3:
            self.handler._stop_training = True


def test_stopping_is_the_same_at_sixteen():
    from lightning.pytorch.callbacks import EarlyStopping

    runs = []
    for k in (1, 16):
        h = make()
        h.add_callback(StopTraining())
        h.train(5, steps_per_execution=k, **TRAIN)
        early = make()
        # val_loss never improves by 10: Lightning's EarlyStopping ends epoch 2.
        early.add_callback(EarlyStopping("val_loss", min_delta=10.0, patience=1))
        early.train(5, steps_per_execution=k, **TRAIN)
        runs.append((h, early))
    for a, b in zip(*runs):
        assert_same_run(a, b)
    assert len(runs[0][0].train_losses) == 2 and len(runs[0][1].train_losses) == 2


class StopAfterBackward(L.Callback):
    """Sets ``trainer.should_stop`` from a per-batch hook, in the middle of epoch 2."""

    def __init__(self):
        self.backward = 0

    def on_after_backward(self, trainer, pl_module):
        self.backward += 1
        if self.backward == TRAIN_BATCHES + 4:
            trainer.should_stop = True


def test_a_stop_inside_a_chunk_ends_the_epoch_after_that_batch():
    runs = []
    for k in (1, 16):
        h = make()
        h.add_callback(StopAfterBackward())
        h.train(4, steps_per_execution=k, **TRAIN)
        runs.append(h)
    assert_same_run(*runs)
    # Epoch 2 ended after its batch 3: one full window of 3 stepped, the started one did not.
    assert len(runs[0].train_losses) == 2 and runs[0].run_state.global_step == 5 + 1


class InterruptAt(Callback):
    """A native batch hook that interrupts in the middle of a chunk."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how

    def on_train_batch_end(self, batch, logs=None):
        if len(self.handler.train_losses) == 1 and batch == 7:
            if self.how == "ctrl-c":
                raise KeyboardInterrupt
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("how, raised", [("ctrl-c", KeyboardInterrupt), ("sigterm", SystemExit)])
def test_an_interrupt_inside_a_chunk_leaves_the_per_batch_state(how, raised):
    runs = []
    for k in (1, 16):
        h = make()
        h.add_callback(InterruptAt(how))
        with pytest.raises(raised):
            h.train(3, steps_per_execution=k, **TRAIN)
        runs.append(h)
    one, sixteen = runs
    # ctrl-c: batches 0..7 of epoch 2 ran (windows 0-2, 3-5 stepped); SIGTERM is seen after
    # batch 7 as well (Lightning stops after that batch).
    assert one.run_state.global_step == sixteen.run_state.global_step == 5 + 2
    assert_same_run(one, sixteen)


# ------------------------------------------------------------------ loggers, bars, resume
class SpyLogger(Logger):
    def __init__(self):
        super().__init__()
        self.writes = []

    @property
    def name(self):
        return "spy"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.writes.append((step, dict(metrics)))


@pytest.mark.parametrize("k", [1, 16])
def test_one_logger_write_per_epoch_at_the_optimizer_step(k):
    spy = SpyLogger()
    h = make()
    h.train(3, steps_per_execution=k, trainer_kwargs={"logger": spy}, **TRAIN)
    assert [step for step, _ in spy.writes] == [5, 10, 15]
    for epoch, (_, metrics) in enumerate(spy.writes):
        assert metrics["loss"] == pytest.approx(h.train_losses[epoch], abs=1e-12)
        assert metrics["val_loss"] == pytest.approx(h.val_losses[epoch], abs=1e-12)
        assert metrics["val_accuracy"] == pytest.approx(h.val_metrics_history["accuracy"][epoch])
        assert metrics["epoch"] == epoch and "lr" in metrics


def test_batch_bars_count_every_batch_at_sixteen(monkeypatch):
    from nn_handler.adapters.hooks.progress_bar import EpochProgressBar

    closed = []
    close = EpochProgressBar._close_batch_bar

    def record(self):
        if self._batch_bar is not None:
            closed.append((self._batch_bar.desc, self._batch_bar.n, self._batch_bar.total))
        close(self)

    monkeypatch.setattr(EpochProgressBar, "_close_batch_bar", record)
    counts = {}
    for k in (1, 16):
        closed.clear()
        h = make()
        h.train(2, steps_per_execution=k, epoch_train_and_val_pbar=True, progress_bar=False)
        counts[k] = list(closed)
    assert (
        counts[16]
        == counts[1]
        == [
            ("E1 Train", TRAIN_BATCHES, TRAIN_BATCHES),
            ("E1 Val", VAL_BATCHES, VAL_BATCHES),
            ("E2 Train", TRAIN_BATCHES, TRAIN_BATCHES),
            ("E2 Val", VAL_BATCHES, VAL_BATCHES),
        ]
    )


def test_resume_from_an_auto_save_equals_one_run_at_sixteen():
    whole = make()
    whole.train(4, steps_per_execution=16, **TRAIN)
    first = make()
    first.auto_save(1, save_path="auto", name="e{epoch:02d}")
    first.train(4, steps_per_execution=16, **TRAIN)
    assert_same_run(first, whole)
    torch.manual_seed(123)  # load restores the generators
    resumed = NNHandler.load("auto/e02.pth")
    data = _data("classification")
    resumed.set_train_loader(data, batch_size=BATCH, shuffle=True)
    resumed.set_val_loader(data, batch_size=VAL_BATCH)
    resumed.auto_save(None)
    resumed.train(2, steps_per_execution=16, **{**TRAIN, "seed": None})
    assert_same_run(resumed, whole)


def test_an_auto_save_at_sixteen_resumes_a_lightning_fit():
    """The file's loop state counts the optimizer steps for both kinds of module."""
    first = make()
    first.auto_save(2, save_path="auto", name="e{epoch:02d}")
    first.train(2, steps_per_execution=16, **TRAIN)
    loops = torch.load("auto/e02.pth", weights_only=False)["loops"]["fit_loop"]
    manual = loops["epoch_loop.manual_optimization.optim_step_progress"]["total"]["completed"]
    auto = loops["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"]
    assert manual == auto["total"]["completed"] == 10
    assert loops["epoch_loop.batch_progress"]["total"]["completed"] == 2 * TRAIN_BATCHES

    seen = {}

    class Probe(L.Callback):
        def on_train_start(self, trainer, pl_module):
            seen["start"] = (trainer.current_epoch, trainer.global_step)

    h = make()
    trainer = L.Trainer(
        max_epochs=3,
        accumulate_grad_batches=3,
        gradient_clip_val=0.05,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[Probe()],
    )
    trainer.fit(h.to_lightning_module(), datamodule=h.to_datamodule(), ckpt_path="auto/e02.pth")
    assert seen["start"] == (2, 10)
    assert trainer.global_step == 15 and len(h.train_losses) == 3


def test_a_users_profiler_is_kept():
    from lightning.pytorch.profilers import SimpleProfiler

    probe = ModuleProbe()
    h = make()
    h.add_callback(probe)
    h.train(1, progress_bar=False, trainer_kwargs={"profiler": SimpleProfiler()})
    assert type(probe.profiler) is SimpleProfiler


def test_a_chunked_module_can_log_from_a_callback():
    """``self.log`` needs a batch size with the dataloader_iter step form; it is supplied."""

    class Logs(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            pl_module.log("per_chunk", 1.0, on_step=False, on_epoch=True)

    spy = SpyLogger()
    h = make()
    h.add_callback(Logs())
    h.train(1, progress_bar=False, steps_per_execution=4, trainer_kwargs={"logger": spy})
    assert any("per_chunk" in metrics for _, metrics in spy.writes)


def test_the_null_profiler_hands_out_one_context():
    profiler = NullProfiler()
    assert profiler.profile("a") is profiler.profile("b")
    with profiler.profile("a"), profiler.profile("b"):
        pass


def _cpu_amp():
    from lightning.pytorch.plugins import MixedPrecision

    return MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu"))


@pytest.mark.parametrize("hooked", [False, True])
def test_a_non_finite_batch_under_a_grad_scaler_is_skipped_alike(hooked):
    """The marked batch ends a window: with a GradScaler that step is skipped (no unscale, no
    step, no update), counted, followed by the EMA update, and preceded by the hooks."""

    def prepare(h):
        x, y = _data("classification").tensors
        y = y.clone()
        y[5 * BATCH] = 9  # batch 5: the last of the window 3-5
        h.set_loss_fn(NaNOnce())
        h.set_train_loader(TensorDataset(x, y), batch_size=BATCH)
        if hooked:
            h.add_callback(StepHooks())

    reference_plugin = _cpu_amp()
    with pytest.warns(RuntimeWarning, match="Non-finite training loss"):
        reference = _automatic(
            "classification", 2, 3, 0.5, prepare=prepare, plugins=[reference_plugin]
        )
    for k in (1, 16):
        plugin = _cpu_amp()
        h = make()
        prepare(h)
        with pytest.warns(RuntimeWarning, match="Non-finite training loss"):
            h.train(
                2,
                steps_per_execution=k,
                progress_bar=False,
                gradient_accumulation_steps=3,
                gradient_clipping_norm=0.5,
                seed=TRAIN["seed"],
                trainer_kwargs={"plugins": [plugin], "precision": None},
            )
        assert_same_run(h, reference)
        assert plugin.scaler.state_dict() == reference_plugin.scaler.state_dict()
        if hooked:
            assert h.callbacks[0].before_step == reference.callbacks[0].before_step == 2 * 5


# ---------------------------------------- what Lightning's callbacks see of chunked steps
class ValidationCount(L.Callback):
    """Lightning's own count of the batches of each validation run."""

    def __init__(self):
        self.counts = []

    def on_validation_epoch_end(self, trainer, pl_module):
        self.counts.append(trainer.fit_loop.epoch_loop.val_loop.batch_progress.current.completed)


@pytest.mark.parametrize("k", [1, 16])
def test_lightning_counts_every_validation_batch_once(k):
    count, probe = ValidationCount(), ModuleProbe()
    h = make()
    h.add_callback(count)
    h.add_callback(probe)
    h.train(2, steps_per_execution=k, progress_bar=False)
    assert probe.batches == k
    assert count.counts == [VAL_BATCHES, VAL_BATCHES]


@pytest.mark.parametrize("k", ["auto", 1, 16])
@pytest.mark.filterwarnings("ignore:Using ModelCheckpoint with manual optimization")
@pytest.mark.filterwarnings("ignore:steps_per_execution=16 runs as 1 batch per step")
def test_step_based_model_checkpoints_land_every_n_steps(k):
    """A Lightning ``ModelCheckpoint(every_n_train_steps=5)`` saves at steps 5, 10, ...: "auto"
    and an explicit K keep one batch per step for it (its batch hook decides at each step, and
    its files must hold the loader's position after a whole step)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    h = make()
    h.add_callback(
        ModelCheckpoint(dirpath="steps", filename="{step}", every_n_train_steps=5, save_top_k=-1)
    )
    h.train(2, steps_per_execution=k, progress_bar=False)
    assert h.run_state.global_step == 2 * TRAIN_BATCHES
    assert sorted(os.listdir("steps")) == sorted(f"step={s}.ckpt" for s in range(5, 27, 5))
