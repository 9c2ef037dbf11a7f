"""Every ```python block in README.md and docs/*.md runs, and prints what its comments say.

Blocks of one page run in order in one namespace (later blocks may use earlier names), in a
fresh working directory.

Expected output is written as a ``# prints: <line>`` comment at the end of the line that prints
it (a ``print`` call, or a call that prints through a callback), or on comment lines right after
it. The block's captured stdout must contain a matching line for each such comment, in the order
of the comments:

- text matches exactly (surrounding spaces aside); ``...`` matches any text;
- an integer matches only itself; a decimal number matches a printed number within one unit of
  its last written digit (``0.41`` matches 0.4116, ``2.50e-02`` matches 0.0251).

Every top-level ``print(...)`` line in a block carries such a comment (on it or on the next
line), so no printed example goes unchecked.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
_PRINTS = re.compile(r"#\s*prints:\s?(.*?)\s*$")
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_NUMBER_OR_WORD = r"([-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)"


def python_blocks(page: Path) -> list[str]:
    return _BLOCK.findall(page.read_text(encoding="utf-8"))


def expected_lines(block: str) -> list[str]:
    """The ``# prints:`` expectations of ``block``, in order."""
    return [m.group(1) for line in block.splitlines() if (m := _PRINTS.search(line))]


def _tolerance(number: str) -> float | None:
    """One unit of the last written digit of a decimal number; ``None`` for an integer."""
    mantissa, _, exponent = number.lower().partition("e")
    if "." not in mantissa and not exponent:
        return None
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def line_matches(expected: str, actual: str) -> bool:
    """Whether the printed ``actual`` line matches the ``expected`` text (rules above)."""
    pattern, numbers = "", []
    for i, part in enumerate(expected.strip().split("...")):
        if i:
            pattern += ".*?"
        pos = 0
        for m in _NUMBER.finditer(part):
            pattern += re.escape(part[pos : m.start()]) + _NUMBER_OR_WORD
            numbers.append(m.group())
            pos = m.end()
        pattern += re.escape(part[pos:])
    found = re.fullmatch(pattern, actual.strip())
    if not found:
        return False
    for want, got in zip(numbers, found.groups(), strict=True):
        tol = _tolerance(want)
        if tol is None:
            if got != want:
                return False
        elif not abs(float(got) - float(want)) <= tol * (1 + 1e-9):
            return False
    return True


def check_output(block: str, output: str) -> None:
    """Raise ``AssertionError`` unless ``output`` has the block's expected lines in order."""
    lines = output.splitlines()
    pos = 0
    for want in expected_lines(block):
        for i in range(pos, len(lines)):
            if line_matches(want, lines[i]):
                pos = i + 1
                break
        else:
            raise AssertionError(
                f"no printed line matches '# prints: {want}' (after line {pos}); printed:\n"
                + output
            )


def test_every_page_is_found():
    assert (ROOT / "README.md") in PAGES
    assert any(python_blocks(p) for p in PAGES), "no python code blocks found at all"


def test_every_top_level_print_says_what_it_prints():
    unchecked = []
    for page in PAGES:
        for block in python_blocks(page):
            lines = block.splitlines() + [""]
            for line, after in zip(lines, lines[1:]):
                if line.startswith("print(") and not (_PRINTS.search(line) or _PRINTS.match(after)):
                    unchecked.append(f"{page.name}: {line}")
    assert not unchecked, unchecked


@pytest.mark.parametrize(
    "expected, actual, ok",
    [
        ("0.41 0.89", "0.41164476051926613 0.88671875", True),
        ("0.41 0.89", "0.4216 0.88671875", False),
        ("torch.Size([16, 8, 8]) 16", "torch.Size([16, 8, 8]) 16", True),
        ("torch.Size([16, 8, 8]) 16", "torch.Size([16, 8, 8]) 17", False),
        ("lr: 2.50e-02", "lr: 2.51e-02", True),
        ("lr: 2.50e-02", "lr: 2.70e-02", False),
        ("Epoch 1/3 - ...s - loss: 0.734", "Epoch 1/3 - 0.13s - loss: 0.7342", True),
        ("Epoch 1/3 - ...s - loss: 0.734", "Epoch 2/3 - 0.13s - loss: 0.7342", False),
        ("summary: done", "summary: done!", False),
        ("[tensor(63.1)]", "[tensor(63.0992)]", True),
        ("val_loss nan", "val_loss nan", True),
    ],
)
def test_printed_line_matching(expected, actual, ok):
    assert line_matches(expected, actual) is ok


def test_check_output_wants_every_expectation_in_order():
    block = "print(1)  # prints: one 1\nprint(2)  # prints: two 2\n"
    check_output(block, "one 1\nnoise\ntwo 2\n")
    with pytest.raises(AssertionError, match="two 2"):
        check_output(block, "two 2\none 1\n")


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
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(code, module.__dict__)  # noqa: S102 - running our own documentation is the point
        sys.stdout.write(out.getvalue())
        check_output(block, out.getvalue())
