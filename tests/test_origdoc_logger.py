"""The original's logger.md: ``initialize_logger``, run as a user would (and under torchrun)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from pathlib import Path

import pytest
from launch_env import clean_env, job_output, torchrun

from nn_handler.logger import initialize_logger

JOB = Path(__file__).resolve().parent / "ddp_scripts" / "logger_job.py"


@pytest.fixture
def forget_loggers():
    """Loggers are process-wide: remove the handlers these tests add."""
    names = []
    yield names
    for name in names:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()


def test_usage_example(capsys, forget_loggers):
    forget_loggers.append("MyTrainingRun")
    import logging

    from nn_handler.logger import initialize_logger
    from nn_handler.utils.enums import LoggingMode

    # Create a logger that outputs to both console and file
    logger = initialize_logger(
        logger_name="MyTrainingRun",
        mode=LoggingMode.BOTH,
        filename="training_logs/run_001.log",
        level=logging.INFO,
    )

    # Use the logger (only works on rank 0)
    if logger:
        logger.info("Training started")
        logger.warning("Learning rate might be too high")
        logger.error("Failed to load checkpoint")

    lines = Path("training_logs/run_001.log").read_text().splitlines()  # the folder was created
    assert len(lines) == 4
    # [level|time|logger name.function:line] message, as the original writes records
    assert re.fullmatch(
        r"\[INFO\|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\|MyTrainingRun\.initialize_logger:\d+\] "
        r"Logger initialized \(mode: BOTH, level: INFO\)\.",
        lines[0],
    )
    pattern = (
        r"\[INFO\|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\|MyTrainingRun\.test_usage_example:\d+\] "
        r"Training started"
    )
    assert re.fullmatch(pattern, lines[1])
    assert lines[2].startswith("[WARNING|") and lines[3].endswith("] Failed to load checkpoint")
    assert capsys.readouterr().out.splitlines() == lines  # the console got the same records


def test_modes_levels_and_no_duplicate_handlers(capsys, forget_loggers):
    forget_loggers += ["console_only", "file_only"]
    console = initialize_logger("console_only")  # defaults: CONSOLE, INFO
    console.debug("hidden")
    console.info("shown")
    assert initialize_logger("console_only") is console  # same logger, no second handler
    console.info("once")
    assert capsys.readouterr().out.count("once") == 1
    assert "hidden" not in capsys.readouterr().out

    quiet = initialize_logger(
        "file_only", mode="file", filename="deep/er/log.txt", level=logging.WARNING
    )
    quiet.info("not recorded")
    quiet.warning("recorded")
    assert Path("deep/er/log.txt").read_text().count("recorded") == 1
    assert "recorded" not in capsys.readouterr().out


def test_bad_input():
    with pytest.raises(TypeError, match="logger_name"):
        initialize_logger("")
    with pytest.raises(ValueError, match="Unknown LoggingMode 'loud'"):
        initialize_logger("x_bad_mode", mode="loud")
    with pytest.raises(ValueError, match="file_mode must be 'a' .* or 'w'"):
        initialize_logger("x_bad_file_mode", mode="file", file_mode="r")
    assert not logging.getLogger("x_bad_file_mode").handlers  # refused before any handler


def test_file_mode_appends_or_starts_anew(forget_loggers):
    """The original's file_mode, between filename and level."""
    forget_loggers += ["append_run", "new_run", "positional_run"]
    Path("run.log").write_text("kept\n")
    initialize_logger("append_run", "file", "run.log", "a", logging.INFO).info("first")
    text = Path("run.log").read_text()
    assert text.startswith("kept\n") and text.endswith("] first\n")

    initialize_logger("new_run", "file", "run.log", file_mode="w").info("second")
    lines = Path("run.log").read_text().splitlines()  # overwritten
    assert len(lines) == 2 and "Logger initialized" in lines[0] and lines[1].endswith("second")

    # the documented positional order (logger_name, mode, filename, level) still gives a level
    quiet = initialize_logger("positional_run", "file", "quiet.log", logging.WARNING)
    quiet.info("dropped")
    quiet.warning("kept")
    assert Path("quiet.log").read_text().splitlines()[-1].endswith("] kept")
    assert "dropped" not in Path("quiet.log").read_text() and quiet.level == logging.WARNING


@pytest.mark.slow
def test_only_rank_zero_gets_a_logger_under_torchrun(tmp_path):
    env = clean_env(drop_slurm=True)
    proc = subprocess.run(
        torchrun(JOB, tmp_path / "out"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, job_output(proc)
    reports = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["logger"] for r in reports] == [True, False]
    lines = (tmp_path / "training_logs" / "run_001.log").read_text().splitlines()
    assert len(lines) == 2 and "] Logger initialized (mode: BOTH" in lines[0]
    assert lines[1].endswith("] Training started on rank 0")
