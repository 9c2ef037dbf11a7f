"""The benchmark scripts run and report what they should (tiny sizes; no timing assertions)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `benchmarks` is a folder of scripts, not an installed package

from benchmarks import JOBS, bench_gpu  # noqa: E402
from benchmarks import run as bench_run  # noqa: E402
from benchmarks._common import Report, step_samples  # noqa: E402

NUM = r"(-?\d+(?:\.\d+)?)"
TIME_ROW = re.compile(rf"^  time  (\S+)\s+wall\s+{NUM} ms/step\s+cpu\s+{NUM} ms/step", re.M)
RATIO_ROW = re.compile(rf"^  ratio (.+?)\s+(wall|rss) +{NUM}(?:\s+cpu +{NUM})?", re.M)
VALUE_ROW = re.compile(rf"^  value (.+?)\s+{NUM} (\S+)", re.M)
WAYS = ("raw", "lightning", "nn_handler")


def _sections(text: str) -> dict[str, str]:
    """Printed report split by job header (``== job: title``)."""
    parts = re.split(r"^== (\w+): .*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _times(section: str) -> dict[str, tuple[float, float]]:
    return {m[0]: (float(m[1]), float(m[2])) for m in TIME_ROW.findall(section)}


def _ratios(section: str) -> dict[str, float]:
    return {m[0]: float(m[2]) for m in RATIO_ROW.findall(section)}


def _values(section: str) -> dict[str, float]:
    return {m[0].strip(): float(m[1]) for m in VALUE_ROW.findall(section)}


def test_step_samples_drop_the_warm_up_epoch_and_divide_by_steps():
    stamps = [(0.0, 0.0), (1.0, 1.0), (3.0, 2.0), (4.0, 4.0)]
    assert step_samples(stamps, steps=2) == {"wall": [1.0, 0.5], "cpu": [0.5, 1.0]}


def test_report_judges_targets_and_writes_json(tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    report = Report("demo", "a title", str(path))
    report.ratio("a/b", 1.2, 0.9, target=1.1)
    report.value("x", 0.25, "s", target=0.3)
    data = report.finish()
    out = capsys.readouterr().out
    assert "target <= 1.1: wall missed, cpu met" in out
    assert "target <= 0.3: met" in out
    assert json.loads(path.read_text()) == data
    assert data["ratios"]["a/b"] == {"wall": 1.2, "cpu": 0.9, "target": 1.1}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_the_gpu_device_check_fails_clearly_without_cuda(capsys):
    with pytest.raises(SystemExit) as exc:
        bench_gpu.main(["--device-check"])
    assert exc.value.code == 2
    assert "--device-check needs a CUDA device" in capsys.readouterr().err


def test_the_gpu_device_check_runs_tests_that_exist():
    commands = bench_gpu.cuda_test_commands()
    assert set(commands) == {"pytest", "gpu_check"}
    targets = [a for a in commands["pytest"] if a.startswith("tests/")]
    assert targets == list(bench_gpu.CUDA_TESTS) and targets
    for node in targets:
        path, _, name = node.partition("::")
        assert (ROOT / path).is_file(), node
        if name:
            assert re.search(rf"^def {re.escape(name)}\(", (ROOT / path).read_text(), re.M), node
    assert (ROOT / commands["gpu_check"][-1]).is_file()


def test_run_rejects_an_unknown_job(capsys):
    with pytest.raises(SystemExit):
        bench_run.main(["nope"])
    assert "unknown job(s) nope" in capsys.readouterr().err


@pytest.mark.slow
def test_every_benchmark_runs_and_reports_consistent_ratios(tmp_path, capsys):
    """One smoke pass of every job (the DDP and memory jobs start their own processes)."""
    results_path = tmp_path / "results.jsonl"
    results = bench_run.main(["--smoke", "--json", str(results_path)])
    text = capsys.readouterr().out
    sections = _sections(text)
    assert set(sections) == set(JOBS)

    # Per-step jobs: a time row per way, and ratios that are the quotients of those times.
    for job in ("tiny", "mlp", "full_epoch", "ddp"):
        times, ratios = _times(sections[job]), _ratios(sections[job])
        # The DDP job times every way again with gradient accumulation over 4 batches.
        extra = {f"{w}_acc4" for w in WAYS} if job == "ddp" else set()
        assert set(times) == set(WAYS) | extra, job
        assert all(wall > 0 and cpu > 0 for wall, cpu in times.values()), job
        for name in ("nn_handler/raw", "nn_handler/lightning", "lightning/raw"):
            num, den = name.split("/")
            assert ratios[name] == pytest.approx(times[num][0] / times[den][0], rel=0.01), job
    assert "target <= 1.1:" in sections["tiny"] and "target <= 1.03:" in sections["mlp"]
    assert "target <= 1.15:" in sections["full_epoch"]
    ddp_ratios = _ratios(sections["ddp"])
    assert ddp_ratios["nn_handler_acc4/raw_acc4"] == pytest.approx(
        _times(sections["ddp"])["nn_handler_acc4"][0] / _times(sections["ddp"])["raw_acc4"][0],
        rel=0.01,
    )
    assert sections["ddp"].count("target <= 1.1:") == 2  # with and without accumulation

    fixed = _values(sections["fixed_cost"])
    assert {"call raw", "call lightning", "call nn_handler"} <= set(fixed)
    assert all(fixed[f"call {w}"] > 0 for w in WAYS)
    assert _ratios(sections["fixed_cost"])["nn_handler/lightning"] == pytest.approx(
        fixed["call nn_handler"] / fixed["call lightning"], rel=0.01
    )
    assert fixed["first train nn_handler - lightning"] == pytest.approx(
        fixed["first train nn_handler"] - fixed["first train lightning"], abs=2e-3
    )

    ckpt = _values(sections["checkpoint"])
    assert all(ckpt[k] > 0 for k in ("raw save", "nn_handler save", "raw load", "nn_handler load"))
    # The handler file holds the same two state dicts plus the rest of the handler's state.
    assert ckpt["nn_handler file size"] >= ckpt["raw file size"] > 0
    assert set(_ratios(sections["checkpoint"])) == {"save nn_handler/raw", "load nn_handler/raw"}

    memory = _values(sections["memory"])
    assert all(memory[f"maxrss {w}"] > 50 for w in WAYS)  # MiB: each child imports torch
    assert _ratios(sections["memory"])["nn_handler/lightning"] == pytest.approx(
        memory["maxrss nn_handler"] / memory["maxrss lightning"], rel=0.01
    )

    if "skipped: no CUDA device" in sections["gpu"]:
        assert not _times(sections["gpu"])
    else:  # pragma: no cover - only on a CUDA machine
        assert set(WAYS) <= set(_times(sections["gpu"]))

    # The JSON lines carry the same numbers, one line per job.
    lines = [json.loads(line) for line in results_path.read_text().splitlines()]
    assert [d["job"] for d in lines] == list(JOBS)
    assert [d["job"] for d in results] == list(JOBS)
    tiny = lines[0]
    assert tiny["ratios"]["nn_handler/raw"]["wall"] == pytest.approx(
        tiny["times"]["nn_handler"]["wall"] / tiny["times"]["raw"]["wall"]
    )


@pytest.mark.slow  # fresh interpreters
def test_import_job_reports_medians_targets_and_ratios(capsys):
    from benchmarks import bench_import

    data = bench_import.main(["--smoke"])
    out = capsys.readouterr().out
    values = data["values"]
    assert "target <= 1: " in out and "target <= 2: " in out
    for name in ("import torch", "import nn_handler", "nn-handler --help"):
        assert values[f"{name} wall"]["value"] > 0 and values[f"{name} cpu"]["value"] >= 0
    ratio = data["ratios"]["import nn_handler / import torch"]["wall"]
    assert ratio == pytest.approx(
        values["import nn_handler wall"]["value"] / values["import torch wall"]["value"]
    )
