"""Every ```python block in README.md and docs/*.md runs, so the examples never rot.

Blocks of one page run in order in one namespace (later blocks may use earlier names), in a
fresh working directory.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    return _BLOCK.findall(page.read_text(encoding="utf-8"))


def test_every_page_is_found():
    assert (ROOT / "README.md") in PAGES
    assert any(python_blocks(p) for p in PAGES), "no python code blocks found at all"


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_code_blocks_run(page, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    # The page runs as an importable module, like a user's own module: classes it defines are
    # stored in checkpoints by import path and found again on load.
    module = types.ModuleType(f"docs_{page.stem}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for i, block in enumerate(python_blocks(page)):
        code = compile(block, f"{page.name}[block {i}]", "exec")
        exec(code, module.__dict__)  # noqa: S102 - running our own documentation is the point
