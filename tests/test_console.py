"""What ``train()`` shows: one ``Epochs`` bar with the epoch summary, and one log line per epoch.

The bar is Lightning's tqdm progress bar (``adapters/hooks/progress_bar.py``) writing to stderr, as
the original's tqdm did; the line goes through the handler's logger. Output is captured at the
file-descriptor level, so anything Lightning itself prints would show up here too.
"""

from __future__ import annotations

import logging
import re

import pytest
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from models import TinyNet, accuracy

from nn_handler import LoggingMode, NNHandler, ProgressMonitor

# The rate reads "2.5epoch/s", or "1.2s/epoch" when an epoch takes more than a second.
_FRAME = re.compile(
    r"Epochs:\s+\d+%\|[^|]*\| (\d+)/(\d+) \[[^,\]]*(?:, [^,\]]*(?:epoch/s|s/epoch))?(.*)\]$"
)


# The original's record: [LEVEL|YYYY-mm-dd HH:MM:SS|logger.function:line] message
_RECORD = re.compile(r"\[([A-Z]+)\|(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\|([\w.]+):(\d+)\] (.*)")


def records(text: str, level: str | None = "INFO") -> list[str]:
    """The messages of the log records in ``text`` (of ``level``; every one when None), each
    line checked to be a whole record."""
    out = []
    for line in text.splitlines():
        match = _RECORD.fullmatch(line)
        assert match, f"not a log record: {line!r}"
        if level is None or match.group(1) == level:
            out.append(match.group(5))
    return out


def make_handler(data, **kwargs) -> NNHandler:
    torch.manual_seed(0)
    handler = NNHandler(TinyNet, **kwargs)
    handler.set_optimizer(torch.optim.SGD, lr=0.1)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.add_metric("acc", accuracy)
    handler.set_train_loader(data, batch_size=12)
    handler.set_val_loader(data, batch_size=24)
    return handler


def frames(text: str) -> list[str]:
    """Every state a bar was drawn in (tqdm redraws a line with ``\\r``)."""
    return [f.strip() for f in re.split(r"[\r\n]", text) if f.strip()]


def epoch_frames(text: str) -> dict[str, str]:
    """``"n/total" -> postfix`` of the last drawing of the Epochs bar at each count."""
    out = {}
    for frame in frames(text):
        match = _FRAME.match(frame)
        if match:
            n, total, postfix = match.groups()
            out[f"{n}/{total}"] = postfix.removeprefix(", ")
    return out


def summary(handler: NNHandler, i: int, validated: bool = True, val_i: int | None = None) -> str:
    """The original's epoch summary for 0-based epoch ``i``, written out independently.

    ``val_i`` indexes the validation history (which holds validated epochs only).
    """
    val_i = i if val_i is None else val_i
    text = (
        f"Train Loss: {handler.train_losses[i]:.4e} "
        f"Train Metrics: [acc={handler.train_metrics_history['acc'][i]:.4f}]"
    )
    if validated:
        text += (
            f" | Val Loss: {handler.val_losses[val_i]:.4e} "
            f"Val Metrics: [val_acc={handler.val_metrics_history['acc'][val_i]:.4f}]"
        )
    lr = handler.optimizer.param_groups[0]["lr"]
    return text + f" | LR: {lr:.2e}"


def test_one_epochs_bar_counts_from_one_with_the_epoch_summary(cls_data, capfd):
    handler = make_handler(cls_data)
    handler.train(3)
    first = capfd.readouterr()
    handler.train(1, validate_every=0)  # resumed: counts on; no validation, no Val part
    second = capfd.readouterr()

    assert first.out == "" and second.out == ""  # bars go to stderr, as tqdm's default
    shown = epoch_frames(first.err)
    assert list(shown) == ["0/3", "1/3", "2/3", "3/3"]
    assert shown["0/3"] == ""  # no summary before the first epoch ends
    for epoch in (1, 2, 3):
        assert shown[f"{epoch}/3"] == summary(handler, epoch - 1)
    resumed = epoch_frames(second.err)
    assert list(resumed) == ["3/4", "4/4"]
    assert resumed["4/4"] == summary(handler, 3, validated=False)

    for err in (first.err, second.err):
        assert {f.split(":")[0] for f in frames(err)} == {"Epochs"}  # the only bar
        assert "Validation DataLoader" not in err and "Epoch 0" not in err


def test_epoch_train_and_val_pbar_adds_batch_bars_numbered_from_one(cls_data, capfd):
    handler = make_handler(cls_data)
    handler.train(2, epoch_train_and_val_pbar=True)
    err = capfd.readouterr().err
    names = {f.split(":")[0] for f in frames(err) if ":" in f}
    assert names == {"Epochs", "E1 Train", "E1 Val", "E2 Train", "E2 Val"}
    # Batch bars count batches (192 samples: 16 training and 8 validation batches).
    assert all(" 0/16 " in f or "/16 " in f for f in frames(err) if "Train:" in f)
    assert all("/8 " in f for f in frames(err) if "Val:" in f)
    assert list(epoch_frames(err)) == ["0/2", "1/2", "2/2"]
    assert "Validation DataLoader" not in err


def test_progress_bar_false_prints_nothing(cls_data, capfd):
    handler = make_handler(cls_data)
    handler.train(2, progress_bar=False)
    assert capfd.readouterr() == ("", "")
    assert len(handler.train_losses) == 2


def test_batch_bars_without_the_epoch_bar(cls_data, capfd):
    """The two flags are independent, as the original's train() documents them."""
    handler = make_handler(cls_data)
    handler.train(1, progress_bar=False, epoch_train_and_val_pbar=True)
    out, err = capfd.readouterr()
    assert out == ""
    assert {f.split(":")[0] for f in frames(err) if ":" in f} == {"E1 Train", "E1 Val"}


def test_log_file_gets_the_epoch_line(cls_data, capfd, tmp_path):
    log = tmp_path / "logs" / "train.log"
    log.parent.mkdir()
    handler = make_handler(cls_data, logger_mode=LoggingMode.FILE, logger_filename=str(log))
    handler.train(2, progress_bar=False)
    handler.train(1, progress_bar=False, validate_every=0)
    assert capfd.readouterr() == ("", "")  # FILE mode: nothing on the console

    lines = [m for m in records(log.read_text()) if m.startswith("E")]
    assert len(lines) == 3
    expected = [
        (1, 2, summary(handler, 0)),
        (2, 2, summary(handler, 1)),
        (3, 3, summary(handler, 2, validated=False)),
    ]
    for message, (epoch, total, text) in zip(lines, expected):
        head = re.escape(f"E{epoch}/{total} [")
        assert re.fullmatch(head + r"\d+\.\d\ds\] " + re.escape(text), message), message


def test_console_log_lines_and_the_bar_are_separate(cls_data, capfd):
    handler = make_handler(cls_data, logger_mode="console")
    handler.train(2)
    out, err = capfd.readouterr()
    # stdout holds log records only; the bar is on stderr, without a log record in it.
    epochs = [m for m in records(out) if m.startswith("E")]  # every line is a record
    assert [line.split(" [")[0] for line in epochs] == ["E1/2", "E2/2"]
    assert epochs[1].endswith(summary(handler, 1))
    assert "INFO" not in err and list(epoch_frames(err)) == ["0/2", "1/2", "2/2"]


def test_record_layout_is_the_originals(cls_data, tmp_path):
    log = tmp_path / "train.log"
    handler = make_handler(cls_data, logger_mode="file", logger_filename=str(log))
    handler.train(1, progress_bar=False)
    first, *_, last = log.read_text().splitlines()
    level, when, where, line, message = _RECORD.fullmatch(last).groups()
    assert (level, message.split(" [")[0]) == ("INFO", "E1/1")
    assert where == f"{handler.logger.name}.on_train_epoch_end" and int(line) > 0
    assert _RECORD.fullmatch(first).group(5).startswith("NNHandler ready: TinyNet")


def test_debug_level_adds_the_originals_aggregated_lines(cls_data, tmp_path):
    log = tmp_path / "train.log"
    handler = make_handler(
        cls_data, logger_mode="file", logger_filename=str(log), logger_level=logging.DEBUG
    )
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=1)
    handler.train(3, progress_bar=False, validate_every=2)
    debug = records(log.read_text(), "DEBUG")
    acc, val_acc = handler.train_metrics_history["acc"], handler.val_metrics_history["acc"]
    loss, val_loss = handler.train_losses, handler.val_losses
    assert debug == [
        f"Epoch 1 Train Aggregated: Loss={loss[0]:.4e} Metrics: acc={acc[0]:.4f}",
        "Stepped scheduler StepLR.",  # once, on the first epoch of the run
        f"Epoch 2 Train Aggregated: Loss={loss[1]:.4e} Metrics: acc={acc[1]:.4f}",
        f"Epoch 2 Val Aggregated: Loss={val_loss[0]:.4e} Metrics: acc={val_acc[0]:.4f}",
        f"Epoch 3 Train Aggregated: Loss={loss[2]:.4e} Metrics: acc={acc[2]:.4f}",
    ]
    info = records(log.read_text(), "INFO")
    assert [m.split(" [")[0] for m in info if m.startswith("E")] == ["E1/3", "E2/3", "E3/3"]


def test_info_level_has_no_debug_lines(cls_data, tmp_path):
    log = tmp_path / "train.log"
    handler = make_handler(cls_data, logger_mode="file", logger_filename=str(log))
    handler.train(1, progress_bar=False)
    assert records(log.read_text(), "DEBUG") == [] and "Aggregated" not in log.read_text()


def test_a_users_own_lightning_progress_bar_is_used_instead(cls_data, capfd):
    handler = make_handler(cls_data)
    handler.add_callback(TQDMProgressBar())
    handler.train(1)
    handler.train(1, progress_bar=False)  # Lightning refuses the flag off with a bar given
    out, err = capfd.readouterr()
    assert "Epochs:" not in out + err
    assert len(handler.train_losses) == 2


def test_progress_monitor_prints_the_same_line(cls_data, capfd, tmp_path):
    log = tmp_path / "train.log"
    handler = make_handler(cls_data, logger_mode="file", logger_filename=str(log))
    handler.add_callback(ProgressMonitor())
    handler.train(2, validate_every=2, progress_bar=False)
    printed = capfd.readouterr().out.splitlines()
    logged = [m for m in records(log.read_text()) if m.startswith("E")]
    assert printed == logged and len(printed) == 2
    assert printed[0].endswith(summary(handler, 0, validated=False))
    assert printed[1].endswith(summary(handler, 1, val_i=0))


@pytest.mark.parametrize("precision", [2, 6])
def test_progress_monitor_precision(precision):
    monitor = ProgressMonitor(precision=precision)
    monitor.on_train_begin({"total_epochs": 4})
    logs = {"loss": 0.123456789, "acc": 0.5, "val_loss": float("nan"), "val_acc": float("nan")}
    line = monitor.format_line(2, {**logs, "epoch_time": 1.5, "lr": 0.01})
    p = precision
    expected = f"E3/4 [1.50s] Train Loss: {0.123456789:.{p}e} Train Metrics: [acc={0.5:.{p}f}]"
    assert line == expected + " | LR: 1.00e-02"


def test_a_handlers_log_file_closes_with_the_handler(cls_data, tmp_path):
    """Each handler has its own logger: when the handler is gone, so are its open log file and
    its logger (a notebook making many handlers does not pile up open files)."""
    import gc
    import os

    log = tmp_path / "train.log"
    handler = make_handler(cls_data, logger_mode="file", logger_filename=str(log))
    name = handler.logger.name

    def open_on_log() -> int:
        fds = os.listdir("/proc/self/fd")
        return sum(os.path.realpath(f"/proc/self/fd/{fd}") == str(log) for fd in fds)

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to see open files")
    assert open_on_log() == 1 and name in logging.Logger.manager.loggerDict
    del handler
    gc.collect()
    assert open_on_log() == 0 and name not in logging.Logger.manager.loggerDict
    assert "NNHandler ready" in log.read_text()  # what was written stays
