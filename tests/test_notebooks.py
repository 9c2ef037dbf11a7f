"""The example notebooks run in a real Jupyter kernel and show what they say they show.

All three run at once (each in its own kernel, started in examples/notebooks/ as a user would);
the checks read the cells' outputs: the JSON summary each notebook prints last, the progress bar
(a widget in the kernel, text from ddp_notebook's worker processes) and the figures.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from launch_env import clean_env

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parents[1] / "examples" / "notebooks"
NAMES = ["quickstart", "score_based_2d", "ddp_notebook"]
WIDGET = "application/vnd.jupyter.widget-view+json"


async def _execute_all(notebooks: dict, env: dict) -> None:
    clients = [
        nbclient.NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
        )
        for nb in notebooks.values()
    ]
    await asyncio.gather(*(client.async_execute(env=env) for client in clients))


@pytest.fixture(scope="module")
def executed():
    before = sorted(p.name for p in NOTEBOOKS.iterdir())
    notebooks = {name: nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4) for name in NAMES}
    env = clean_env()
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("MPLBACKEND", None)  # the kernel's own (inline) backend
    asyncio.run(_execute_all(notebooks, env))
    assert sorted(p.name for p in NOTEBOOKS.iterdir()) == before  # nothing left behind
    return notebooks


def outputs(nb, source_part: str) -> list[dict]:
    """The outputs of the one code cell whose source contains ``source_part``."""
    cells = [c for c in nb.cells if c.cell_type == "code" and source_part in c.source]
    assert len(cells) == 1, source_part
    return cells[0].outputs


def summary(nb) -> dict:
    cells = [c for c in nb.cells if "summary" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    lines = [o.text for o in cells[0].outputs if o.output_type == "stream"]
    return json.loads("".join(lines).strip().splitlines()[-1])


def text(outs: list[dict], name: str) -> str:
    return "".join(o.text for o in outs if o.output_type == "stream" and o.name == name)


def displays(outs: list[dict], mime: str) -> list[dict]:
    return [o for o in outs if o.output_type == "display_data" and mime in o.data]


def test_notebooks_are_stored_without_outputs():
    for name in NAMES:
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), name


def test_quickstart_trains_continues_and_reloads(executed):
    result = summary(executed["quickstart"])
    assert result["epochs"] == 6 and result["restored_epochs"] == 6
    assert result["val_accuracy"] > 0.9
    assert result["identical_predictions"] is True
    assert len(displays(outputs(executed["quickstart"], "plot_losses"), "image/png")) == 1


def test_quickstart_progress_bar_is_a_widget_in_the_kernel(executed):
    outs = outputs(executed["quickstart"], "handler.train(4")
    bars = displays(outs, WIDGET)
    assert len(bars) == 1 and bars[0].data["text/plain"].startswith("Epochs:")
    assert text(outs, "stderr") == ""  # no text bar, no warning


def test_score_based_samples_are_closer_to_the_data_than_the_prior(executed):
    result = summary(executed["score_based_2d"])
    assert result["epochs"] == 60 and result["sample_shape"] == [500, 2]
    assert result["final_loss"] < 0.5 * result["first_loss"]
    assert result["samples_to_data"] < 0.85 * result["prior_to_data"]
    figure = outputs(executed["score_based_2d"], "plt.show()")
    assert len(displays(figure, "image/png")) == 1


def test_ddp_notebook_brings_the_workers_results_back(executed):
    result = summary(executed["ddp_notebook"])
    # 96 samples, global batch 16: 6 steps an epoch; 3 epochs, then a second train() of 1.
    assert (result["epochs"], result["global_step"], result["ema_updates"]) == (4, 24, 24)
    assert result["seen"] == [[0, 2]] * 4  # the callback ran in rank 0 of 2; its state is back
    assert result["place"] == [0, 1, False]  # the notebook's own process is alone again
    # Two processes with batch 8 follow one process with batch 16.
    assert result["loss_difference"] < 1e-5 and result["ema_difference"] < 1e-5


def test_ddp_notebook_worker_output_reaches_the_notebook(executed):
    outs = outputs(executed["ddp_notebook"], "handler.train(3")
    printed = text(outs, "stdout")
    # ProgressMonitor printed on rank 0 of the workers, once per epoch.
    assert [line[:5] for line in printed.splitlines() if line.startswith("E")] == [
        "E1/3 ",
        "E2/3 ",
        "E3/3 ",
    ]
    assert "epochs: 3 optimizer steps: 18" in printed
    # The workers' bar is text: a widget from a forked process may never reach the notebook.
    assert displays(outs, WIDGET) == []
    bar = text(outs, "stderr")
    assert "Epochs: 100%" in bar and "Warning" not in bar and "Traceback" not in bar
