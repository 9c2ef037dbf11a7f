"""The ``nn-handler`` Lightning CLI: YAML written by export_config, run as a subprocess.

Subprocess runs are slow here, so one module-scoped fixture runs them all once and the tests
check what they produced.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from nn_handler.adapters.cli import NNHandlerCLI
from nn_handler.adapters.config.imports import config_import_problems, import_problem

from nn_handler import NNHandler

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cli"
sys.path.insert(0, str(EXAMPLE))

from blobs import GaussianBlobs  # noqa: E402
from mlp import MLP, accuracy  # noqa: E402

SEED, EPOCHS = 7, 3


def build_handler() -> NNHandler:
    torch.manual_seed(SEED)  # the CLI's seed_everything runs before the model is built
    handler = NNHandler(MLP, hidden=16, dropout=0.2)  # dropout: RNG use during training too
    handler.set_optimizer(torch.optim.Adam, lr=0.01)
    handler.set_scheduler(torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.5)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.add_metric("accuracy", accuracy)
    handler.set_train_loader(
        GaussianBlobs(n_samples=96, split="train"), batch_size=16, shuffle=True
    )
    handler.set_val_loader(GaussianBlobs(n_samples=64, split="val"), batch_size=32)
    return handler


def console_script() -> str:
    """The ``nn-handler`` installed beside this Python (not another checkout's on PATH)."""
    found = shutil.which("nn-handler", path=str(Path(sys.executable).parent))
    assert found, f"no nn-handler script beside {sys.executable}: pip install -e ."
    return found


def run_cli(args: list[str], cwd: Path, module: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLE), env.get("PYTHONPATH", "")])
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS"):
        env.pop(key, None)
    command = [sys.executable, "-m", "nn_handler"] if module else [console_script()]
    result = subprocess.run(
        command + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(autouse=True)
def _restore_lightning_seed_env(monkeypatch):
    """An in-process CLI seeds and exports PL_GLOBAL_SEED/PL_SEED_WORKERS: undo it afterwards."""
    for key in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Reference ``handler.train``; the CLI on the exported YAML; ``--print_config`` re-run."""
    root = tmp_path_factory.mktemp("cli")
    exported = build_handler()
    exported.auto_save(2, save_path="auto")
    exported.export_config(str(root / "run.yaml"), epochs=EPOCHS, seed=SEED, progress_bar=False)

    reference = build_handler()
    reference.train(EPOCHS, seed=SEED, progress_bar=False)

    first = root / "first"
    first.mkdir()
    fit = run_cli(["fit", "--config", str(root / "run.yaml")], cwd=first)
    printed = io.StringIO()  # --print_config only parses: in-process is enough, and faster
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit):
        NNHandlerCLI(args=["fit", "--config", str(root / "run.yaml"), "--print_config"])
    (root / "printed.yaml").write_text(printed.getvalue())
    second = root / "second"
    second.mkdir()
    # The printed config re-runs, through the console script this time; without auto-save,
    # Lightning's own ModelCheckpoint writes.
    # Lightning's model summary on (export_config turns it off) to see what it shows.
    refit = run_cli(
        [
            "fit",
            "--config",
            str(root / "printed.yaml"),
            "--model.auto_save",
            "null",
            "--trainer.enable_model_summary",
            "true",
        ],
        cwd=second,
        module=False,
    )
    return {
        "fit": fit,
        "refit": refit,
        "root": root,
        "reference": reference,
        "first": first,
        "second": second,
        "printed": printed.getvalue(),
    }


@pytest.mark.slow  # uses the subprocess runs
def test_cli_fit_gives_the_losses_of_handler_train(runs):
    first, reference = runs["first"], runs["reference"]
    assert sorted(p.name for p in (first / "auto").iterdir()) == [
        "model_epoch02.pth",
        "model_epoch03.pth",
    ]
    state = torch.load(first / "auto" / "model_epoch03.pth", weights_only=True)
    assert state["train_losses"] == pytest.approx(reference.train_losses, abs=1e-6)
    assert state["val_losses"] == pytest.approx(reference.val_losses, abs=1e-6)
    assert state["val_metrics_history"]["accuracy"] == pytest.approx(
        reference.val_metrics_history["accuracy"], abs=1e-6
    )
    saved = (first / "lightning_logs" / "version_0" / "config.yaml").read_text()
    assert yaml.safe_load(saved)["model"]["model"]["class_path"] == "mlp.MLP"


@pytest.mark.slow  # uses the subprocess runs
def test_print_config_output_reruns_to_the_same_result(runs):
    printed = yaml.safe_load(runs["printed"])
    assert printed["seed_everything"] == SEED
    assert printed["model"]["model"]["init_args"]["hidden"] == 16
    ckpts = list((runs["second"] / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt"))
    assert [p.name for p in ckpts] == [f"epoch={EPOCHS - 1}-step=18.ckpt"]
    state = torch.load(ckpts[0], weights_only=True)  # loading runs no code from the file
    assert state["train_losses"] == pytest.approx(runs["reference"].train_losses, abs=1e-6)
    assert not (runs["second"] / "auto").exists()


@pytest.mark.slow  # uses the subprocess runs
def test_handler_loads_the_cli_checkpoint_and_continues(runs):
    (ckpt,) = (runs["second"] / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")
    reference = runs["reference"]
    loaded = NNHandler.load(str(ckpt))
    assert type(loaded.module) is MLP and loaded.module.net[0].out_features == 16
    for p, q in zip(loaded.module.parameters(), reference.module.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    assert loaded.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    loaded.set_train_loader(GaussianBlobs(n_samples=96), batch_size=16, shuffle=True)
    loaded.train(1, progress_bar=False)
    assert len(loaded.train_losses) == EPOCHS + 1


@pytest.mark.slow  # uses the subprocess runs
def test_cli_validate_test_and_predict_subcommands(runs, tmp_path):
    (ckpt,) = (runs["second"] / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")
    config = str(runs["root"] / "printed.yaml")
    quiet = ["--trainer.logger", "false", "--model.auto_save", "null"]
    cli = NNHandlerCLI(args=["validate", "--config", config, "--ckpt_path", str(ckpt), *quiet])
    val_loss = float(cli.trainer.callback_metrics["val_loss"])
    assert val_loss == pytest.approx(runs["reference"].val_losses[-1], abs=1e-6)
    cli = NNHandlerCLI(args=["test", "--config", config, "--ckpt_path", str(ckpt), *quiet])
    assert float(cli.trainer.callback_metrics["test_loss"]) == pytest.approx(val_loss, abs=1e-7)

    writer = (
        '{"class_path": "nn_handler.adapters.cli.PredictionWriter", "init_args": {"path": "p.pt"}}'
    )
    NNHandlerCLI(
        args=[
            "predict",
            "--config",
            config,
            "--ckpt_path",
            str(ckpt),
            *quiet,
            "--trainer.callbacks+",
            writer,
        ]
    )
    predictions = torch.load(tmp_path / "p.pt", weights_only=True)
    expected = torch.cat(runs["reference"].predict(runs["reference"].val_loader))
    assert predictions.shape == (64, 3)
    assert torch.allclose(predictions, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("change", "key", "detail"),
    [
        (
            {"model": {"model": {"class_path": "mlp.NoSuchNet"}}},
            "model.model.class_path: 'mlp.NoSuchNet' cannot be imported",
            "'mlp' has no attribute 'NoSuchNet'",
        ),
        (
            {"model": {"model": {"class_path": "mlp.MLP", "init_args": {"hiden": 3}}}},
            "'model.model.init_args.hiden': mlp.MLP takes no 'hiden'.",
            "Did you mean 'hidden'?",
        ),
        (
            {"model": {"model_type": "clasification"}},
            'Parser key "model.model_type"',
            "clasification",
        ),
        (
            {
                "data": {
                    "class_path": "nn_handler.adapters.datamodule.HandlerDataModule",
                    "init_args": {
                        "train_dataset": {
                            "class_path": "blobs.GaussianBlobs",
                            "init_args": {"n_sample": 3},
                        }
                    },
                }
            },
            "'data.init_args.train_dataset.init_args.n_sample': blobs.GaussianBlobs takes no",
            "Did you mean 'n_samples'?",
        ),
    ],
)
def test_config_errors_name_the_offending_key(change, key, detail, capsys):
    config = {
        "model": {"model": {"class_path": "mlp.MLP"}, "loss": "torch.nn.functional.cross_entropy"}
    }
    for section, values in change.items():
        config.setdefault(section, {}).update(values)
    Path("bad.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(SystemExit) as info:
        NNHandlerCLI(args=["fit", "--config", "bad.yaml"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert key in err
    assert detail in err
    assert len(err.strip().splitlines()) <= 3  # the message, not the usage text


@pytest.mark.parametrize(
    ("mistake", "line", "message"),
    [
        (
            ("max_epochs: 5", "max_epoch: 5"),
            4,
            "'trainer.max_epoch': the 'fit' command takes no 'max_epoch'. "
            "Did you mean 'max_epochs'?",
        ),
        (
            ("  loss: torch", "  los: torch"),
            16,
            "'model.los': the 'fit' command takes no 'los'. Did you mean 'loss'?",
        ),
        (
            ("batch_size: 32", "batchsize: 32"),
            46,
            "'data.init_args.train_loader.batchsize': torch.utils.data.DataLoader takes no "
            "'batchsize'. Did you mean 'batch_size'?",
        ),
    ],
)
def test_a_misspelt_key_is_one_line_with_file_line_and_suggestion(
    mistake, line, message, tmp_path, capsys
):
    """The example config with one typo: the error names the key, the file and its line, and
    the closest name, in two lines (the usage text and tracebacks are gone); nothing runs."""
    text = (EXAMPLE / "config.yaml").read_text()
    assert text.count(mistake[0]) == 1
    bad = tmp_path / "run.yaml"
    bad.write_text(text.replace(mistake[0], mistake[1]))
    with pytest.raises(SystemExit) as info:
        NNHandlerCLI(args=["fit", "--config", str(bad)])
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"error: {bad}, line {line}: {message}",
        "(nn-handler fit --help lists every option.)",
    ]
    assert not (tmp_path / "runs").exists()


def test_a_misspelt_command_line_option_gets_a_suggestion(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text((EXAMPLE / "config.yaml").read_text())
    with pytest.raises(SystemExit) as info:
        NNHandlerCLI(args=["fit", "--config", str(config), "--model.ema_decai", "0.5"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "model.ema_decai" in err[0]
    assert err[0].endswith("Did you mean 'model.ema_decay'?")


@pytest.mark.slow  # uses the subprocess runs
def test_fit_prints_the_last_epoch_and_where_the_files_went(runs):
    reference = runs["reference"]
    lines = runs["fit"].stdout.strip().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"E3/3 \[\d+\.\d\ds\] Train Loss: .*", lines[0])
    expected = (
        f"Train Loss: {reference.train_losses[-1]:.4e} "
        f"Train Metrics: [accuracy={reference.train_metrics_history['accuracy'][-1]:.4f}] "
        f"| Val Loss: {reference.val_losses[-1]:.4e} "
        f"Val Metrics: [val_accuracy={reference.val_metrics_history['accuracy'][-1]:.4f}] "
        "| LR: 5.00e-03"
    )
    assert lines[0].split("] ", 1)[1] == expected
    assert lines[1:] == [
        f"Auto-saves: auto{os.sep} (last: model_epoch03.pth)",
        f"Logs and config: {os.path.join('lightning_logs', 'version_0')}{os.sep}",
    ]
    refit = runs["refit"].stdout.strip().splitlines()
    assert refit[1] == "Checkpoint: " + os.path.join(
        "lightning_logs", "version_0", "checkpoints", f"epoch={EPOCHS - 1}-step=18.ckpt"
    )


@pytest.mark.slow  # uses the subprocess runs
def test_fit_shows_the_users_model_and_no_misleading_notices(runs):
    err = runs["refit"].stderr
    assert "Name | Type       | Params" in err and "net  | Sequential | 195" in err
    assert "MLP: 195 parameters (195 trainable)" in err
    for internal in ("train_torchmetrics", "ModuleDict", "Total Flops", "log_every_n_steps"):
        assert internal not in runs["fit"].stderr + err


def test_yaml_builds_the_same_handler_configuration(tmp_path):
    config = {
        "seed_everything": 3,
        "trainer": {"logger": False, "enable_progress_bar": False},
        "model": {
            "model": {"class_path": "mlp.MLP", "init_args": {"hidden": 8}},
            "model_type": "classification",
            "loss": {
                "class_path": "torch.nn.CrossEntropyLoss",
                "init_args": {"label_smoothing": 0.2},
            },
            "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.05}},
            "scheduler": {
                "class_path": "torch.optim.lr_scheduler.StepLR",
                "init_args": {"step_size": 3},
            },
            "metrics": {"accuracy": "mlp.accuracy"},
            "callbacks": [{"class_path": "nn_handler.callbacks.Callback"}],
            "auto_save": {"interval": -1, "save_path": "ck", "overwrite": True},
            "ema_decay": 0.5,
        },
        # No class_path: HandlerDataModule is the default, its init args given directly.
        "data": {
            "train_dataset": {"class_path": "blobs.GaussianBlobs", "init_args": {"n_samples": 40}},
            "train_loader": {"batch_size": 8, "shuffle": True},
        },
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    cli = NNHandlerCLI(args=["--config", str(tmp_path / "c.yaml")], run=False)
    handler = cli.model.handler
    assert type(handler.module) is MLP and handler.model_kwargs["hidden"] == 8
    assert type(handler.optimizer) is torch.optim.SGD
    assert handler.optimizer.param_groups[0]["lr"] == 0.05
    assert type(handler.scheduler) is torch.optim.lr_scheduler.StepLR
    assert handler.scheduler.step_size == 3
    assert handler.loss_fn.label_smoothing == 0.2
    assert handler.metrics == {"accuracy": accuracy}
    assert [type(c).__name__ for c in handler.callbacks] == ["Callback"]
    assert (handler.save_interval, handler.save_path, handler.overwrite_last_saved) == (
        -1,
        "ck",
        True,
    )
    assert handler.setup.training.ema_decay == 0.5  # the average starts with the fit
    assert len(cli.datamodule.train_dataloader()) == 5
    assert handler._distributed is False


def test_the_fast_top_level_help_lists_the_clis_subcommands(capsys):
    """``nn-handler --help`` is answered without Lightning: it must list what the CLI has."""
    from nn_handler.adapters.config.entry import SUBCOMMANDS, main

    assert list(SUBCOMMANDS) == list(NNHandlerCLI.subcommands())
    main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: nn-handler [-h] [-c CONFIG]")
    assert all(f"\n  {name} " in out for name in SUBCOMMANDS)
    with pytest.raises(SystemExit) as info:  # the real parser knows the options listed
        NNHandlerCLI(args=["--print_config", "--config", str(EXAMPLE / "config.yaml")], run=False)
    assert info.value.code == 0 and "trainer:" in capsys.readouterr().out


# ------------------------------------------------------------- import paths in a config
def test_import_problem_names_the_part_that_fails(tmp_path, monkeypatch):
    (tmp_path / "needs_missing.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_problem("torch.optim.adam.Adam") is None
    assert import_problem("torch.nn.functional.cross_entropy") is None
    assert import_problem("torch.optim.Nope") == "'torch.optim' has no attribute 'Nope'"
    assert import_problem("no_such_pkg_xyz.Net") == "No module named 'no_such_pkg_xyz'"
    problem = import_problem("needs_missing.Net")
    assert problem == "importing needs_missing failed: No module named 'no_such_dependency_xyz'"


def test_config_import_problems_reads_class_paths_and_handler_paths(tmp_path):
    config = {
        "model": {
            "model": {"class_path": "mlp.MLP"},
            "loss": "no_such_losses.focal",
            "metrics": {"accuracy": "mlp.accuracy", "f1": "mlp.f1"},
            "optimizer": {"class_path": "Adam"},  # a short name jsonargparse resolves itself
            "auto_save": {"save_path": "runs/a.b", "name": "m.{epoch}"},  # not import paths
        },
        "trainer": {"callbacks": [{"class_path": "lightning.pytorch.callbacks.Nope"}]},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    problems = config_import_problems(["fit", "--config", str(tmp_path / "c.yaml")])
    assert problems == [
        "model.loss: 'no_such_losses.focal' cannot be imported (No module named 'no_such_losses')",
        "model.metrics.f1: 'mlp.f1' cannot be imported ('mlp' has no attribute 'f1')",
        "trainer.callbacks.0.class_path: 'lightning.pytorch.callbacks.Nope' cannot be imported "
        "('lightning.pytorch.callbacks' has no attribute 'Nope')",
    ]
    assert config_import_problems([f"--config={tmp_path / 'c.yaml'}"]) == problems


MYMODELS = """
import torch
from torch import nn
from torch.utils.data import Dataset


class Net(nn.Module):
    def __init__(self, hidden: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x):
        return self.body(x)


class Points(Dataset):
    def __init__(self, n: int = 48):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = (self.x[:, 0] > 0).long()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]
"""


def run_console_script(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RANK", "WORLD_SIZE")}
    return subprocess.run(
        [console_script(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow  # subprocesses
def test_console_script_finds_modules_in_the_current_directory(tmp_path, monkeypatch):
    """The exported YAML's header says ``nn-handler fit --config run.yaml``: run exactly so, from
    the directory holding the user's module, it trains; a name that does not import is said
    first, by key and name."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "mymodels.py").write_text(MYMODELS)
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.delitem(sys.modules, "mymodels", raising=False)
    mymodels = importlib.import_module("mymodels")
    handler = NNHandler(mymodels.Net, hidden=8)
    handler.set_optimizer(torch.optim.Adam, lr=1e-2)
    handler.set_loss_fn(torch.nn.functional.cross_entropy)
    handler.set_train_loader(mymodels.Points(48), batch_size=16)
    handler.auto_save(-1, save_path="auto", name="last")
    handler.export_config(str(project / "run.yaml"), epochs=2, progress_bar=False)
    monkeypatch.delitem(sys.modules, "mymodels")
    assert "nn-handler fit --config run.yaml" in (project / "run.yaml").read_text()

    result = run_console_script(["fit", "--config", "run.yaml"], cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(project / "auto" / "last.pth", weights_only=True)
    assert len(state["train_losses"]) == 2 and state["model_class"] == "mymodels:Net"

    # Elsewhere the module is not found: the first lines say so, by key and name.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_console_script(["fit", "--config", str(project / "run.yaml")], cwd=elsewhere)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[:3] == [
        "error: the config names what cannot be imported:",
        "  model.model.class_path: 'mymodels.Net' cannot be imported (No module named 'mymodels')",
        "  data.init_args.train_dataset.class_path: 'mymodels.Points' cannot be imported "
        "(No module named 'mymodels')",
    ]
    assert "Does not validate" not in result.stderr
