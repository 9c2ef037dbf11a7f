"""The reliability driver's judges reject what they must (fast: fabricated reports, no driver)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "reliability"))

import checks  # noqa: E402


def _crash_trial(**changes):
    trial = {
        "bad": [],
        "kills": [{"at_s": 0.3, "files_after": ["model_epoch02.pth"]}],
        "equal_weights": True,
        "equal_history": True,
        "epochs": 8,
        "final_files": ["model_epoch08.pth"],
        "tmp_files": [".model_epoch03.pth.x1.tmp"],
        "other_files": [],
        "loads": 2,
    }
    return {**trial, **changes}


def _savekill_trial(**changes):
    trial = {
        "consistent": True,
        "final_named": ["model.pth"],
        "save_returned": False,
        "tmp_left": 1,
        "version_on_disk": 0,
        "previous_version": 0,
    }
    return {**trial, **changes}


def test_crash_check_accepts_one_temporary_file_per_kill():
    figures = checks.check_crash({"trials": [_crash_trial()]}, trials=1)
    assert figures["tmp_files_left"] == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"tmp_files": [".model_epoch03.pth.x1.tmp", ".model_epoch04.pth.x2.tmp"]},  # 2 > 1 kill
        {"other_files": ["model_epoch03.pth.partial"]},
    ],
)
def test_crash_check_rejects_leftovers(changes):
    with pytest.raises(AssertionError):
        checks.check_crash({"trials": [_crash_trial(**changes)]}, trials=1)


def test_savekill_check_rejects_a_temporary_file_after_a_completed_save():
    report = {"trials": [_savekill_trial(), _savekill_trial(save_returned=True, tmp_left=0)]}
    report["save_s"] = 0.1
    assert checks.check_savekill(report, trials=2)["tmp_files_left"] == 1
    for bad in (_savekill_trial(save_returned=True, tmp_left=1), _savekill_trial(tmp_left=2)):
        with pytest.raises(AssertionError):
            checks.check_savekill({"trials": [bad], "save_s": 0.1}, trials=1)
