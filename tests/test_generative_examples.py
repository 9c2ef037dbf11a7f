"""The generative examples run end to end (tiny settings, one subprocess for both)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Both scripts run as __main__ in one interpreter: one start-up (torch, Lightning) for two.
_DRIVER = """
import runpy, sys
for argv in sys.argv[1:]:
    script, *args = argv.split()
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")
"""


def test_score_based_2d_and_vae_sampler_examples(tmp_path):
    # The smallest run whose samples clearly beat the prior (about 1 300 optimizer steps; a
    # 2-epoch run samples worse than the prior itself, so it could not tell sampling from none).
    score_args = f"{EXAMPLES / 'score_based_2d.py'} --epochs 40 --n-train 4096 --batch-size 128 "
    score_args += f"--lr 3e-3 --ema-decay 0.99 --n-samples 500 --steps 100 --out {tmp_path / 'sb'}"
    vae_args = f"{EXAMPLES / 'vae_sampler.py'} --epochs 1 --n-samples 16 --out {tmp_path / 'vae'}"
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, "-c", _DRIVER, score_args, vae_args],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    figures = json.loads((tmp_path / "sb" / "metrics.json").read_text())
    assert set(figures) == {"sliced_wasserstein_samples", "sliced_wasserstein_prior", "final_loss"}
    # Standardized moons are already close to N(0, I) (distance about 0.3); the samples must be
    # much closer to the data than a draw from the prior, which is what an unintegrated sampler
    # would return.
    assert 0.2 < figures["sliced_wasserstein_prior"] < 0.4
    assert figures["sliced_wasserstein_samples"] < 0.5 * figures["sliced_wasserstein_prior"]
    assert 0 < figures["final_loss"] < 1
    assert f"prior {figures['sliced_wasserstein_prior']:.4f}" in result.stdout
    assert (tmp_path / "sb" / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert (tmp_path / "vae" / "vae_samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "drew (16, 8, 8) images" in result.stdout
    assert "restored sampler: temperature 0.8, drawn 16" in result.stdout
    assert "__main__" not in result.stderr  # checkpoint names the example's importable classes
    # Each example ends by naming what it wrote, and where.
    assert f"wrote samples.png and metrics.json to {tmp_path / 'sb'}" in result.stdout
    assert f"wrote vae_samples.png and vae.pth to {tmp_path / 'vae'}" in result.stdout
    assert "Epochs" in result.stderr  # the progress bar (on by default) shows the epochs
