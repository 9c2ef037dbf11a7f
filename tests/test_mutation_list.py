"""The curated mutation list (tests/mutation_check.py) stays in step with the code and the docs.

The check itself is not run here (minutes); these tests only make sure every entry still applies
to the source, names tests that exist, and is listed in tests/README.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mutation_check import MUTATIONS, Mutation, apply_mutation

ROOT = Path(__file__).resolve().parents[1]

# The deliberate bugs of issue 18 that no test caught; each must stay in the list.
ISSUE_18 = {
    "rng-python-numpy",
    "loader-generator",
    "ema-decay",
    "amp-cpu-bf16",
    "scheduler-state",
    "continue-flag",
}


def test_names_are_unique_and_the_issue_18_bugs_are_listed():
    names = [m.name for m in MUTATIONS]
    assert len(names) == len(set(names))
    assert ISSUE_18 <= set(names)
    assert len(names) >= 16


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_each_original_text_occurs_once_and_the_mutation_changes_it(mutation):
    source = (ROOT / mutation.file).read_text()
    assert mutation.edits and mutation.tests and mutation.bug
    for original, mutated in mutation.edits:
        assert source.count(original) == 1, f"{mutation.name}: {original!r}"
        assert original != mutated


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_each_named_test_exists(mutation):
    for node in mutation.tests:
        path, _, name = node.partition("::")
        test_file = ROOT / path
        assert test_file.is_file(), node
        if name:
            assert re.search(rf"^def {re.escape(name)}\(", test_file.read_text(), re.M), node


def test_apply_mutation_edits_a_copy_and_refuses_stale_text(tmp_path):
    target = tmp_path / "pkg" / "mod.py"
    target.parent.mkdir()
    target.write_text("a = 1\nb = 2\n")
    apply_mutation(Mutation("m", "pkg/mod.py", (("b = 2", "b = 3"),), ("t",), "bug"), tmp_path)
    assert target.read_text() == "a = 1\nb = 3\n"
    with pytest.raises(ValueError, match="occurs 0 times"):
        apply_mutation(Mutation("m", "pkg/mod.py", (("c = 4", "c = 5"),), ("t",), "bug"), tmp_path)


def test_tests_readme_lists_every_mutation_and_its_tests():
    readme = (ROOT / "tests" / "README.md").read_text()
    for mutation in MUTATIONS:
        row = next((ln for ln in readme.splitlines() if f"`{mutation.name}`" in ln), None)
        assert row is not None, f"{mutation.name} is not in tests/README.md"
        for node in mutation.tests:
            short = node.rpartition("::")[2] if "::" in node else Path(node).name
            assert short in row, f"{mutation.name}: {short} missing from its README row"
