"""Reliability, reduced run: crash and resume, kills inside save, corrupted files, a failing disk,
memory over a run, a SIGKILLed DDP rank, hostile checkpoints (soak: test_reliability_soak.py).

The kill/corruption trials run in one launch of tests/reliability/driver.py (one interpreter
start for all of them) while the 2-process DDP job runs beside it; the rest runs in this process.
"""

from __future__ import annotations

import errno
import os
import pickle
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from models import TinyNet
from torch import nn

from nn_handler import NNHandler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent / "reliability"))

import checks  # noqa: E402
import ddp_jobs  # noqa: E402

pytestmark = pytest.mark.slow

DEFAULT_SPECS = ["crash:3", "savekill:4", "corrupt:50", "diskfull", "longrun:30"]


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """The torchrun fault job and the driver, started together (one waits while the other runs)."""
    root = tmp_path_factory.mktemp("reliability")
    job = ddp_jobs.launch(root / "ddp_kill", "kill", ddp_jobs.COLLECTIVE_TIMEOUT_S)
    try:
        reports = checks.run_driver(root / "driver", DEFAULT_SPECS, timeout=600)
    finally:
        ddp = ddp_jobs.finish(job, root / "ddp_kill", limit=400)
    return reports, ddp


@pytest.fixture(scope="module")
def driver(launched):
    return launched[0]


# ------------------------------------------------------------ 1. crash
def test_killed_training_resumes_to_the_uninterrupted_weights(driver):
    figures = checks.check_crash(driver["crash"], trials=3)
    assert figures["kills"] >= 3


# ------------------------------------------------------- 2. kill in save
def test_kill_inside_save_never_leaves_a_partial_file_under_the_final_name(driver):
    figures = checks.check_savekill(driver["savekill"], trials=4)
    assert figures["killed_inside_save"] >= 1
    assert driver["savekill"]["file_bytes"] > 30e6


# ------------------------------------------------------------ 5. corrupt
def test_corrupted_files_never_hang_or_crash_the_interpreter(driver):
    report = driver["corrupt"]
    assert len(report["cases"]) == 52  # 50 random + 2 targeted
    assert checks.crashed_or_hung(report) == []
    assert max(c["seconds"] for c in report["cases"]) < 30
    truncated = [c for c in report["cases"] if c["kind"] == "truncate"]
    assert len(truncated) == 25
    for case in truncated:  # a cut file is always recognised, by name
        assert case["outcome"] == "error" and case["type"] == "ValueError", case
        assert case["names_file"] and "truncated or corrupted" in case["message"], case


def test_every_corrupted_file_gives_a_clear_error_naming_it(driver):
    assert checks.unclear(driver["corrupt"]) == []


# ----------------------------------------------------------- 3. disk full
def _handler(data=None) -> NNHandler:
    torch.manual_seed(0)
    h = NNHandler(TinyNet)
    h.set_optimizer(torch.optim.SGD, lr=0.1)
    h.set_loss_fn(nn.functional.cross_entropy)
    if data is not None:
        h.set_train_loader(data, batch_size=32)
    return h


def test_a_save_under_a_file_fails_with_an_oserror_naming_the_path(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(OSError, match="blocker") as info:
        _handler().save(str(blocker / "run" / "model.pth"))
    assert isinstance(info.value, (NotADirectoryError, FileExistsError))
    assert blocker.read_text().startswith("a file")


def _disk_fills_after(monkeypatch, good_saves: int) -> list[int]:
    """torch.save writes half its bytes then fails with ENOSPC from the ``good_saves+1``-th call."""
    real = torch.save
    calls = []

    def save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) <= good_saves:
            return real(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save)
    return calls


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    h = _handler()
    h.save("model.pth")
    before = {k: v.clone() for k, v in h.module.state_dict().items()}
    with torch.no_grad():
        h.module.body[0].weight.add_(1.0)
    with monkeypatch.context() as patch, pytest.raises(OSError) as info:
        _disk_fills_after(patch, 0)
        h.save("model.pth")
    assert info.value.errno == errno.ENOSPC
    kept = NNHandler.load("model.pth")
    assert all(torch.equal(kept.module.state_dict()[k], v) for k, v in before.items())
    assert sorted(os.listdir(tmp_path)) == ["model.pth"]  # the temp file was removed


def test_a_failing_autosaver_stops_training_with_the_error(tmp_path, monkeypatch, cls_data):
    h = _handler(cls_data)
    h.auto_save(1, save_path="ckpt", overwrite=True)
    with monkeypatch.context() as patch, pytest.raises(OSError, match="No space left"):
        _disk_fills_after(patch, 2)  # epochs 1 and 2 saved, epoch 3's save fails
        h.train(5, progress_bar=False)
    assert len(h.train_losses) == 3  # it stopped right there: epochs 4 and 5 never ran
    assert os.listdir(tmp_path / "ckpt") == ["model_epoch02.pth"]
    resumed = NNHandler.load(str(tmp_path / "ckpt"))
    assert len(resumed.train_losses) == 2
    resumed.set_train_loader(cls_data, batch_size=32)
    resumed.auto_save(None)
    resumed.train(1, progress_bar=False)
    assert len(resumed.train_losses) == 3


def test_a_real_write_limit_keeps_the_previous_checkpoint(driver):
    report = driver["diskfull"]
    assert report["child"] == ["exit", 0]  # the error was catchable: no SIGXFSZ, no crash
    assert report["type"] is not None  # the save failed...
    assert report["previous_intact"] and report["leftovers"] == []  # ...and lost nothing


def test_a_failed_write_is_an_oserror_naming_the_path(driver, tmp_path, monkeypatch):
    report = driver["diskfull"]
    assert report["is_oserror"] and report["names_path"], report
    _disk_fills_after(monkeypatch, 0)
    with pytest.raises(OSError, match="model.pth"):
        _handler().save(str(tmp_path / "model.pth"))


# ---------------------------------------------------------- 7. DDP faults
def test_a_sigkilled_ddp_rank_ends_the_job_and_the_checkpoint_resumes(launched):
    _, job = launched
    ddp_jobs.check_job(job, ddp_jobs.EXIT_BOUND_S)
    assert "SIGKILL" in job["log"]


# -------------------------------------------------------------- 8. memory
def test_thirty_epochs_with_autosave_keep_memory_and_handles_flat(driver):
    report = driver["longrun"]
    assert report["child"] == ["exit", 0] and len(report["rss_kb"]) == 30
    assert report["rss_growth"] < 0.10, report["rss_growth"]
    assert len(report["fds_after_warmup"]) == 1, report["fds"]
    assert report["files_left"] == ["model_epoch30.pth"]


# ------------------------------------------------------------- 4. hostile
class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _hostile_files(tmp_path: Path, marker: Path) -> dict[str, Path]:
    evil = _Payload(marker)
    files = {
        "zip_dict": {"model_state_dict": {}, "model_class": "models:TinyNet", "extra": evil},
        "in_state_dict": {"model_state_dict": {"body.0.weight": evil}, "model_class": "x:Y"},
        "lightning_like": {"state_dict": {}, "pytorch-lightning_version": "2.6", "hp": evil},
        "bare": evil,
    }
    out = {}
    for name, obj in files.items():
        out[name] = tmp_path / f"{name}.pth"
        torch.save(obj, out[name])
    out["legacy_format"] = tmp_path / "legacy_format.pth"
    torch.save(files["zip_dict"], out["legacy_format"], _use_new_zipfile_serialization=False)
    out["plain_pickle"] = tmp_path / "plain_pickle.pth"
    out["plain_pickle"].write_bytes(pickle.dumps(files["zip_dict"], protocol=2))
    out["pickle_protocol_5"] = tmp_path / "pickle_protocol_5.pth"
    out["pickle_protocol_5"].write_bytes(pickle.dumps(files["zip_dict"], protocol=5))
    return out


@pytest.fixture
def hostile(tmp_path):
    marker = tmp_path / "PWNED"
    (tmp_path / "files").mkdir()
    files = _hostile_files(tmp_path / "files", marker)
    # The payloads are live: an unguarded pickle load runs them.
    with open(files["plain_pickle"], "rb") as handle:
        pickle.load(handle)
    assert marker.exists()
    marker.unlink()
    return files, marker


def test_hostile_files_are_refused_by_load_and_initialize(hostile):
    files, marker = hostile
    for name, path in files.items():
        # The pickle's globals are read before any unpickler runs (protocol 5 too): every
        # file is refused naming the global it would call.
        why = r"needs to run code to load \(it references posix.system\)"
        with pytest.raises(ValueError, match=why) as info:
            NNHandler.load(str(path))
        assert str(path) in str(info.value)
        with pytest.raises(ValueError, match=why):
            NNHandler.initialize_from_checkpoint(str(path), TinyNet)
        assert not marker.exists(), name
    with pytest.warns(UserWarning, match="Skipping"), pytest.raises(FileNotFoundError):
        NNHandler.load(str(next(iter(files.values())).parent))  # a directory of them
    assert not marker.exists()


def test_hostile_file_is_refused_by_lightning_resume(hostile, cls_data):
    files, marker = hostile
    h = _handler(cls_data)
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    with pytest.raises(ValueError, match=r"needs to run code to load \(it references posix"):
        trainer.fit(h.to_lightning_module(), ckpt_path=str(files["zip_dict"]))
    assert not marker.exists()


def test_hostile_file_is_refused_by_the_cli(hostile, monkeypatch, tmp_path):
    from nn_handler.adapters.cli import NNHandlerCLI

    files, marker = hostile
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "cli"))
    for key in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(key, raising=False)
    config = yaml.safe_load((ROOT / "examples" / "cli" / "config.yaml").read_text())
    config["trainer"].update(max_epochs=1, default_root_dir=str(tmp_path / "runs"), logger=False)
    config["model"]["auto_save"] = None
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    args = ["fit", "--config", str(tmp_path / "run.yaml"), "--ckpt_path", str(files["zip_dict"])]
    with pytest.raises(ValueError, match=r"needs to run code to load \(it references posix"):
        NNHandlerCLI(args=args)
    assert not marker.exists()


def test_the_legacy_opt_in_is_unsafe_as_documented(hostile):
    files, marker = hostile
    with pytest.raises(ValueError):  # the payload runs first, then the dict is not a handler's
        NNHandler.load(str(files["lightning_like"]), allow_legacy_pickle=True)
    assert marker.exists()


def test_stored_names_and_source_never_run_without_the_opt_in(tmp_path):
    marker = tmp_path / "PWNED"
    h = _handler()
    h.save("good.pth")
    ckpt = torch.load("good.pth", weights_only=True)
    ckpt["model_class"] = "os:system"  # a function where a class belongs
    torch.save(ckpt, "function_as_class.pth")
    with pytest.raises(ValueError, match="os:system.*(refused|not a valid model class)"):
        NNHandler.load("function_as_class.pth")
    ckpt["model_class"] = "not_a_module_anywhere:Net"
    ckpt["model_code"] = (
        f"import os\nos.system('touch {marker}')\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))\n"
    )
    torch.save(ckpt, "code.pth")
    with pytest.raises(ValueError, match="Cannot rebuild the model.*model_class="):
        NNHandler.load("code.pth")
    assert not marker.exists()
    NNHandler.load("code.pth", trust_model_code=True)  # the documented opt-in
    assert marker.exists()


def test_an_atomic_save_honours_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        _handler().save(str(tmp_path / "model.pth"))
    finally:
        os.umask(old)
    assert (tmp_path / "model.pth").stat().st_mode & 0o777 == 0o644
