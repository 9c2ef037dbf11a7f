"""The package type-checks clean under mypy with the project's ``[tool.mypy]`` settings.

``tests/type_check.py`` stages ``nn_handler/`` and ``adapters/`` the way they are installed and
runs mypy on them (about 30 s). mypy is a ``dev`` dependency: without it the check fails.
"""

from __future__ import annotations

from pathlib import Path

from type_check import ROOT, run_mypy


def test_the_package_type_checks_clean():
    report = run_mypy()
    assert report.returncode == 0 and "Success: no issues found" in report.output, (
        "mypy (python tests/type_check.py) reports:\n" + report.output
    )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_check_reports_errors_with_repository_paths(tmp_path):
    """The same machinery on a tiny tree of the same layout, with the project's settings: a wrong
    type in ``adapters/`` and a function without annotations in the core are both reported,
    under the paths a developer edits; the relative import from ``adapters/`` into the core
    resolves (else mypy would report it too)."""
    _write(tmp_path / "nn_handler" / "__init__.py", "")
    _write(tmp_path / "nn_handler" / "_env" / "__init__.py", "")
    _write(tmp_path / "nn_handler" / "_env" / "clock.py", "def ticks(n):\n    return n\n")
    _write(tmp_path / "adapters" / "__init__.py", "")
    _write(
        tmp_path / "adapters" / "step.py",
        "from .._env import clock\n\nCOUNT: int = 'three'\nclock.ticks(1)\n",
    )

    report = run_mypy(tmp_path, config=ROOT / "pyproject.toml")

    assert report.returncode == 1, report.output
    assert sorted(e.split(" error: ")[0] for e in report.errors) == [
        "adapters/step.py:3:",
        "nn_handler/_env/clock.py:1:",
    ], report.output
    assert "Incompatible types in assignment" in report.output
    assert "Function is missing a type annotation" in report.output
