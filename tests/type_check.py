"""Run mypy on the package as it is installed: ``nn_handler/`` with ``adapters/`` inside it.

``adapters/`` is installed as ``nn_handler.adapters`` (pyproject ``package-dir``) and imports the
core with relative imports, which mypy can only follow when the folder sits where it is installed;
mypy does not read the editable install's finder. So the two folders are copied into a temporary
tree (``<tmp>/nn_handler`` and ``<tmp>/nn_handler/adapters``), mypy checks that tree with the
project's ``[tool.mypy]`` settings, and the paths it reports are mapped back to the repository.

Usage::

    python tests/type_check.py    # prints mypy's report with repository paths; exit 1 on errors

``tests/test_types.py`` runs the same check in the test suite.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "nn_handler"
ADAPTERS = "adapters"

__all__ = ["MypyReport", "stage", "run_mypy", "main"]


@dataclass(frozen=True)
class MypyReport:
    """What mypy said about one tree.

    Attributes:
        returncode: mypy's exit status (0 clean, 1 type errors, 2 mypy itself failed).
        output: mypy's stdout and stderr, paths relative to the repository root.
    """

    returncode: int
    output: str

    @property
    def errors(self) -> list[str]:
        """The ``path:line: error: ...`` lines."""
        return [line for line in self.output.splitlines() if ": error: " in line]


def stage(root: Path, dest: Path) -> Path:
    """Copy ``root/nn_handler`` to ``dest/nn_handler`` and ``root/adapters`` inside it; return
    the staged package folder."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    package = dest / PACKAGE
    shutil.copytree(root / PACKAGE, package, ignore=ignore)
    shutil.copytree(root / ADAPTERS, package / ADAPTERS, ignore=ignore)
    return package


def _to_repository(text: str) -> str:
    """The staged ``nn_handler/adapters/x.py`` is the repository's ``adapters/x.py``."""
    return re.sub(rf"(?m)^{PACKAGE}/{ADAPTERS}/", f"{ADAPTERS}/", text)


def run_mypy(root: Path = ROOT, config: Path | None = None) -> MypyReport:
    """Type-check ``root``'s package with the settings of ``config`` (default: ``root``'s
    pyproject.toml). A missing mypy is an error, never a pass."""
    config = config or root / "pyproject.toml"
    with tempfile.TemporaryDirectory(prefix="nn-handler-mypy-") as tmp:
        stage(root, Path(tmp))
        # cwd=tmp: mypy prints paths relative to it (``nn_handler/...``) and keeps its cache there.
        proc = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(config), PACKAGE],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
    return MypyReport(proc.returncode, _to_repository(proc.stdout + proc.stderr))


def main() -> int:
    report = run_mypy()
    print(report.output, end="")
    return report.returncode


if __name__ == "__main__":
    raise SystemExit(main())
