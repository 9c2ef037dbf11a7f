"""Ctrl-C and SIGTERM during ``train()``, sent to a real training process at a known step."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from launch_env import clean_env

from nn_handler import NNHandler

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parent / "reliability" / "interrupted_train.py"
MARK_STEP, STEPS_PER_EPOCH = 6, 4  # as in interrupted_train.py


def interrupt(out: Path, signum: int) -> tuple[int, dict, str]:
    """Start the training, send ``signum`` once it waits at step MARK_STEP; exit code, seen.json,
    output."""
    env = clean_env()
    env["OMP_NUM_THREADS"] = "1"
    with open(out / "log.txt", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), str(out)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 180
            while not (out / "marker").exists():
                assert proc.poll() is None, (out / "log.txt").read_text()
                assert time.monotonic() < deadline, "the training never reached the marker step"
                time.sleep(0.05)
            proc.send_signal(signum)
            code = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    seen_file = out / "seen.json"
    seen = json.loads(seen_file.read_text()) if seen_file.exists() else {}
    return code, seen, (out / "log.txt").read_text()


def stored_steps(path: Path) -> tuple[int, int, set[int]]:
    """``(handler_global_step, global_step, {Adam's per-parameter step})`` stored in a file."""
    ckpt = torch.load(path, weights_only=True)
    adam = {int(s["step"]) for s in ckpt["optimizer_state_dict"]["state"].values()}
    return ckpt["handler_global_step"], ckpt.get("global_step", ckpt["handler_global_step"]), adam


@pytest.fixture(scope="module")
def ctrl_c(tmp_path_factory):
    out = tmp_path_factory.mktemp("sigint")
    return (out, *interrupt(out, signal.SIGINT))


def test_ctrl_c_reaches_the_script_as_keyboard_interrupt_and_its_save_loads(ctrl_c):
    tmp_path, code, seen, log = ctrl_c
    assert code == 0, log  # the script's `except KeyboardInterrupt` branch ran to its end
    assert seen["caught"] == "KeyboardInterrupt", log
    assert "SystemExit" not in log
    assert seen["sigint_handler_restored"] is True  # a second Ctrl-C works as usual again
    assert seen["epochs_done"] == 1 and seen["device"] == "cpu"
    assert seen["adam_steps"] == [MARK_STEP]

    # The file saved in the except branch is a valid checkpoint whose counters agree.
    assert stored_steps(tmp_path / "interrupted.pth") == (MARK_STEP, MARK_STEP, {MARK_STEP})
    handler = NNHandler.load(str(tmp_path / "interrupted.pth"))
    assert len(handler.train_losses) == 1
    steps = {int(s["step"]) for s in handler.optimizer.state_dict()["state"].values()}
    assert steps == {MARK_STEP}


def test_after_an_interrupt_one_more_epoch_keeps_step_counter_and_optimizer_in_step(ctrl_c):
    tmp_path, _, seen, log = ctrl_c
    total = MARK_STEP + STEPS_PER_EPOCH
    # in the interrupted process: train(1) after the KeyboardInterrupt
    assert seen["adam_steps_after"] == [total], log
    assert stored_steps(tmp_path / "after.pth") == (total, total, {total})

    # and after loading the interrupted file in a new process: train(1) again
    from models import TinyNet  # noqa: F401 - the class the checkpoint names
    from torch.utils.data import TensorDataset

    handler = NNHandler.load(str(tmp_path / "interrupted.pth"))
    x = torch.randn(16 * STEPS_PER_EPOCH, 8)
    handler.set_train_loader(TensorDataset(x, (x[:, 0] > 0).long()), batch_size=16)
    handler.train(1, progress_bar=False)
    handler.save("resumed.pth")
    assert stored_steps(Path("resumed.pth")) == (total, total, {total})


def test_sigterm_ends_the_run_with_status_143_after_teardown(tmp_path):
    code, seen, log = interrupt(tmp_path, signal.SIGTERM)
    assert code == 143, log  # 128 + SIGTERM, as the default handler gives; never 0
    # train() raised SystemExit(143) through the script: its except/finally blocks ran.
    assert seen == {"caught": "SystemExit", "code": 143}
    assert "exiting with status 143" in log
    assert not (tmp_path / "interrupted.pth").exists()
