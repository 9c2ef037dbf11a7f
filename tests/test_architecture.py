"""The import rules of docs/architecture.md, checked on the source (tests/import_graph.py; fast).

- No import cycle among the package's modules, counting imports inside functions (type-only
  imports under ``if TYPE_CHECKING:`` excepted).
- The core (everything but ``nn_handler.adapters``) imports neither Lightning nor the adapters at
  module level: the engine is reached only through the delayed imports listed below.
- A first-party import inside a function is listed in ``DEFERRED`` with the reason it waits.
"""

from __future__ import annotations

import pytest
from import_graph import ENGINE, cycles, is_core, read_graph

# (importer, imported module) -> why the import waits until the function runs. Keep it short:
# a first-party import inside a function usually hides a cycle that a leaf module would remove.
DEFERRED: dict[tuple[str, str], str] = {
    # -- the engine boundary (the core never imports adapters/ at module level) -----------------
    ("nn_handler._engine", "nn_handler.adapters.api"): (
        "the facade's single entry into the engine: Lightning is imported only when train(), "
        "find_lr(), an export or a Lightning add_callback first runs, so `import nn_handler` and "
        "NNHandler(...) stay light (tests/test_imports.py, benchmarks/bench_import.py)"
    ),
    ("nn_handler.checkpointing.autosaver", "nn_handler.adapters.hooks.autosaver"): (
        "the original's path keeps AutoSaver (a Lightning callback) through PEP 562 __getattr__: "
        "importing the compatibility module loads no Lightning"
    ),
    ("nn_handler.__main__", "nn_handler.adapters.config.entry"): (
        "`python -m nn_handler` is the top of the stack like the CLI: the engine is imported when "
        "the command runs, never by importing the package's __main__ module"
    ),
    ("nn_handler.adapters.config.entry", "nn_handler.adapters.cli"): (
        "`nn-handler --help` is answered without Lightning nor torch (tests/test_imports.py); "
        "the Lightning CLI is imported only for a real command"
    ),
}

MAX_DEFERRED = 25

GRAPH = read_graph()


def test_the_graph_reads_the_whole_package():
    assert "nn_handler.handler" in GRAPH.modules
    assert any(m.startswith("nn_handler.adapters.") for m in GRAPH.modules)
    assert len(GRAPH.imports) > 300


def test_there_is_no_import_cycle():
    found = cycles(GRAPH.edges())
    assert found == [], "\n".join(" -> ".join(c) for c in found)


def test_the_core_imports_no_engine_at_module_level():
    offending = [
        f"{i.importer}:{i.line} imports {i.target}"
        for i in GRAPH.imports
        if i.level == "module"
        and is_core(i.importer)
        and (i.target in ENGINE or (i.first_party and not is_core(i.target)))
    ]
    assert offending == []


def test_every_first_party_import_inside_a_function_is_listed():
    unlisted = [
        f"{i.importer}:{i.line} imports {i.target}"
        for i in GRAPH.function_level()
        if (i.importer, i.target) not in DEFERRED
    ]
    assert unlisted == []
    assert len(DEFERRED) <= MAX_DEFERRED


@pytest.mark.parametrize("key", sorted(DEFERRED), ids=lambda k: f"{k[0]}->{k[1]}")
def test_each_listed_deferral_exists_and_says_why(key):
    assert any((i.importer, i.target) == key for i in GRAPH.function_level()), "stale entry"
    assert len(DEFERRED[key]) > 15


def test_the_checks_see_a_cycle_a_deferred_import_and_a_type_only_import(tmp_path):
    """The reader itself: a cycle through a function-level import is a cycle; a TYPE_CHECKING
    import is not."""
    from import_graph import _imports_of

    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import lightning\n"
        "if TYPE_CHECKING:\n    from nn_handler.handler import NNHandler\n"
        "def f():\n    from .adapters.fit import run\n"
    )
    modules = {"nn_handler.m": source, "nn_handler.adapters.fit.run": source}
    found = {(i.target, i.level) for i in _imports_of("nn_handler.m", source, modules)}
    assert found == {
        ("typing", "module"),
        ("lightning", "module"),
        ("nn_handler.handler", "type"),
        ("nn_handler.adapters.fit.run", "function"),
    }
