"""The README's two commands, CI's use of them, and the packaging layout stay true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block, "README must open with a bash block"
    assert text.index("```bash") < 100, "the commands must come first"
    return [line for line in first_block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("python examples/quickstart.py")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = readme_commands()[1]
    assert test_command in ci
    # The CPU wheel of torch is installed before the project (no CUDA download).
    assert ci.index("python -m pip install -q torch==2.13.0") < ci.index(test_command)


def test_adapters_is_installed_as_nn_handler_adapters_only():
    import nn_handler.adapters

    assert Path(nn_handler.adapters.__file__).parent.name == "adapters"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"nn_handler.adapters" = "adapters"' in pyproject
    assert not re.search(r'^\s*"adapters"\s*,', pyproject, re.M)


def test_quickstart_reaches_the_promised_accuracy():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--no-progress-bar"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    accuracy = float(re.search(r"accuracy (\d\.\d+)", result.stdout).group(1))
    assert accuracy >= 0.95
    assert "identical outputs" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("wrote the checkpoint ")


def test_relative_links_in_docs_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#:]+\.(?:md|py|yaml|sh|ipynb))\)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.name} -> {target}")
    assert not broken, broken
