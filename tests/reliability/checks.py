"""Launching the reliability driver and judging its reports (shared by default and soak runs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from launch_env import clean_env

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "driver.py"
#: Exception types a load may raise for a damaged file (the documented ones).
CLEAR_ERRORS = ("ValueError", "RuntimeError")


def run_driver(out: Path, specs: list[str], timeout: float) -> dict[str, dict]:
    """Run ``driver.py OUT spec...`` in a fresh interpreter; ``{mode: report}``."""
    env = clean_env()
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(out), *specs],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    modes = [s.partition(":")[0] for s in specs]
    return {m: json.loads((out / f"{m}.json").read_text()) for m in modes}


def check_crash(report: dict, trials: int) -> dict:
    """Every trial ends with the uninterrupted run's weights; every observed file loaded."""
    runs = report["trials"]
    assert len(runs) == trials
    for t in runs:
        assert t["bad"] == [], t
        assert t["kills"], t  # each trial was killed at least once
        assert (t["equal_weights"], t["equal_history"], t["epochs"]) == (True, True, 8), t
        assert f"model_epoch{t['epochs']:02d}.pth" in t["final_files"], t
        # Only checkpoints and the hidden temporary files of saves cut short by a kill (at most
        # one per kill) are ever left in the directory.
        assert t["other_files"] == [], t
        assert len(t["tmp_files"]) <= len(t["kills"]), t
    kills = sum(len(t["kills"]) for t in runs)
    loads = sum(t["loads"] for t in runs)
    assert loads > trials  # the observer really read files while the jobs ran
    return {
        "trials": trials,
        "kills": kills,
        "observed_loads": loads,
        "stale_files": sum(len(t["final_files"]) - 1 for t in runs),
        "tmp_files_left": sum(len(t["tmp_files"]) for t in runs),
    }


def check_savekill(report: dict, trials: int) -> dict:
    """The file under the final name always loads and is wholly the old or the new version."""
    runs = report["trials"]
    assert len(runs) == trials
    for t in runs:
        assert t["consistent"], t
        assert t["final_named"] == ["model.pth"], t
        # A kill inside a save leaves at most its own temporary file; a save that returned, none.
        assert t["tmp_left"] <= (0 if t["save_returned"] else 1), t
    inside = [t for t in runs if not t["save_returned"]]
    return {
        "trials": trials,
        "killed_inside_save": len(inside),
        "old_version_kept": sum(t["version_on_disk"] == t["previous_version"] for t in inside),
        "tmp_files_left": sum(t["tmp_left"] for t in runs),
        "save_s": report["save_s"],
    }


def crashed_or_hung(report: dict) -> list[dict]:
    return [c for c in report["cases"] if c["outcome"] not in ("error", "loaded")]


def unclear(report: dict) -> list[dict]:
    """Cases that did not end in a clear ValueError/RuntimeError naming the file, or that loaded
    weights different from the saved ones (a corruption nobody noticed)."""
    bad = []
    for c in report["cases"]:
        if c["outcome"] == "loaded" and c["weights_equal"]:
            continue  # the flip hit bytes the reader never uses
        clear = c.get("clear", c["type"] in CLEAR_ERRORS)
        if c["outcome"] == "error" and clear and c["names_file"]:
            continue
        bad.append(c)
    return bad
