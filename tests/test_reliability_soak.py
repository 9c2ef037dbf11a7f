"""Reliability soak: the long variants of test_reliability*.py (minutes, not seconds).

Skipped unless asked for: ``python -m pytest -m soak tests/test_reliability_soak.py`` or
``NNH_SOAK=1 python -m pytest tests/test_reliability_soak.py``. Figures are printed (run with
``-s``) and recorded in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reliability import _hostile_files
from test_reliability_input import MISUSE_CASES, check_clear

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE / "reliability"))

import checks  # noqa: E402
from ddp_jobs import EXIT_BOUND_S, check_job, run_jobs  # noqa: E402

pytestmark = [pytest.mark.soak, pytest.mark.slow]

SOAK_SPECS = ["crash:20", "savekill:40", "corrupt:500", "diskfull", "longrun:500"]
HANG_TIMEOUT_S = 15


def soak_selected(config: pytest.Config) -> bool:
    """``-m`` selects soak (and does not negate it), or NNH_SOAK=1."""
    expression = config.getoption("markexpr", "") or ""
    return os.environ.get("NNH_SOAK") == "1" or (
        "soak" in expression and "not soak" not in expression
    )


@pytest.fixture(autouse=True)
def _only_when_asked(request):
    if not soak_selected(request.config):
        pytest.skip("soak run: use -m soak or NNH_SOAK=1")


def _show(label: str, figures: dict) -> None:
    print(f"\n[soak] {label}: {json.dumps(figures)}")


@pytest.fixture(scope="module")
def driver(tmp_path_factory, request):
    if not soak_selected(request.config):
        pytest.skip("soak run: use -m soak or NNH_SOAK=1")
    out = tmp_path_factory.mktemp("soak")
    return checks.run_driver(out, SOAK_SPECS, timeout=3600)


def test_soak_crash_and_resume(driver):
    figures = checks.check_crash(driver["crash"], trials=20)
    assert figures["kills"] >= 20
    _show("crash", {**figures, "wall_s": driver["crash"]["wall_s"]})


def test_soak_kill_inside_save(driver):
    figures = checks.check_savekill(driver["savekill"], trials=40)
    assert figures["killed_inside_save"] >= 20
    _show("savekill", figures)


def test_soak_corrupted_files(driver):
    report = driver["corrupt"]
    assert len(report["cases"]) == 502
    assert checks.crashed_or_hung(report) == []
    unclear = checks.unclear(report)
    kinds: dict[str, int] = {}
    for case in unclear:
        kinds[case.get("type") or "loaded, weights changed"] = (
            kinds.get(case.get("type") or "loaded, weights changed", 0) + 1
        )
    _show(
        "corrupt",
        {
            "cases": 502,
            "max_s": max(c["seconds"] for c in report["cases"]),
            "unclear": len(unclear),
            "unclear_kinds": kinds,
        },
    )
    assert unclear == []


def test_soak_long_run_memory_and_handles(driver):
    report = driver["longrun"]
    assert len(report["rss_kb"]) == 500
    _show(
        "longrun",
        {
            k: report[k]
            for k in (
                "rss_base_kb",
                "rss_max_after_kb",
                "rss_growth",
                "fds_after_warmup",
                "seconds",
            )
        },
    )
    assert report["rss_growth"] < 0.05
    assert len(report["fds_after_warmup"]) == 1
    assert report["files_left"] == ["model_epoch500.pth"]


def test_soak_ddp_faults(tmp_path):
    jobs = run_jobs(tmp_path, ["raise", "kill", "hang"], HANG_TIMEOUT_S, limit=600)
    check_job(jobs["raise"], EXIT_BOUND_S)
    check_job(jobs["kill"], EXIT_BOUND_S)
    check_job(jobs["hang"], HANG_TIMEOUT_S + 30)  # only the collective timeout ends it
    assert f"Timed out waiting {HANG_TIMEOUT_S * 1000}ms" in jobs["hang"]["log"]
    _show("ddp", {m: round(j["seconds_after_fault"], 1) for m, j in jobs.items()})


@pytest.mark.parametrize("case", MISUSE_CASES, ids=[c.name for c in MISUSE_CASES])
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_soak_misuse(case, data):
    check_clear(case, data.draw(case.values, label=case.name))


def test_soak_cli_subprocess_refuses_a_hostile_checkpoint(tmp_path):
    marker = tmp_path / "PWNED"
    (tmp_path / "files").mkdir()
    evil = _hostile_files(tmp_path / "files", marker)["zip_dict"]
    config = yaml.safe_load((ROOT / "examples" / "cli" / "config.yaml").read_text())
    config["trainer"].update(max_epochs=1, default_root_dir=str(tmp_path / "runs"), logger=False)
    config["model"]["auto_save"] = None
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "examples" / "cli"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "nn_handler",
            "fit",
            "--config",
            str(tmp_path / "run.yaml"),
            "--ckpt_path",
            str(evil),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "Weights only load failed" in proc.stderr
    assert not marker.exists()
