"""The import rules of docs/architecture.md, checked on the source (tests/import_graph.py; fast).

- No import cycle among the package's modules, counting imports inside functions (type-only
  imports under ``if TYPE_CHECKING:`` excepted).
- The core (everything but ``nn_handler.adapters``) imports neither Lightning nor the adapters at
  module level: the engine is reached only through the delayed imports listed below.
- A first-party import inside a function is listed in ``DEFERRED`` with the reason it waits.
- The leaf modules (``LEAVES``: what everything uses) import nothing else of the package but
  other leaves, at any level, so importing one never runs the rest of the package.
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

# The standalone modules everything uses: encoding and decoding references, config values, paths,
# atomic writes and temporary files, storage, the format constants. Each imports only other
# leaves (module, function or type level). The packages above them are leaves too: importing a
# leaf runs their ``__init__``, which therefore imports no other module (PEP 562 tables).
LEAVES: frozenset[str] = frozenset(
    {
        # packages run by importing a leaf
        "nn_handler",
        "nn_handler._version",
        "nn_handler.callbacks",
        "nn_handler._codecs",
        "nn_handler._env",
        "nn_handler._state",
        "nn_handler.checkpoint",
        # codecs: references, import paths, config values, the trust rules, model source
        "nn_handler._codecs.refs",
        "nn_handler._codecs.paths",
        "nn_handler._codecs.safe_modules",
        "nn_handler._codecs.config_values",
        "nn_handler._codecs.trust",
        "nn_handler._codecs.model_code",
        # environment: files, storage, processes, devices, warnings
        "nn_handler._env.atomic",
        "nn_handler._env.tempfiles",
        "nn_handler._env.storage",
        "nn_handler._env.write_guard",
        "nn_handler._env.user_warnings",
        "nn_handler._env.dist_env",
        "nn_handler._env.devices",
        "nn_handler._env.slurm_hosts",
        "nn_handler._env.fork_guard",
        "nn_handler._env.seeding",
        # the value objects the codecs read
        "nn_handler._state.placeholders",
        "nn_handler._state.component",
        "nn_handler._state.autosave",
        "nn_handler.enums",
        # the checkpoint format's constants and its file-level checks
        "nn_handler.checkpoint._format",
        "nn_handler.checkpoint._scan",
        "nn_handler.checkpoint._rng",
        "nn_handler.checkpoint._loadable",
    }
)

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


def test_every_leaf_exists():
    assert sorted(LEAVES - set(GRAPH.modules)) == []


def test_a_leaf_imports_only_leaves():
    """At any level, type-only included: a leaf's import of ``a.b.c`` runs ``a`` and ``a.b``
    too, so every one of them must be a leaf."""
    edges = GRAPH.edges(levels=("module", "function", "type"))
    offending = [
        f"{leaf} imports {target}"
        for leaf in sorted(LEAVES & set(edges))
        for target in sorted(edges[leaf] - LEAVES)
    ]
    assert offending == []


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


def test_the_graph_sees_through_a_lazy_package(tmp_path):
    """``from pkg import Name`` where ``pkg`` resolves names on first use (PEP 562 ``_EXPORTS``)
    imports the module the table names: a cycle cannot hide behind the table."""
    from import_graph import _imports_of, lazy_exports

    init = tmp_path / "__init__.py"
    init.write_text('_EXPORTS: dict[str, str] = {"Thing": ".impl", "far": ".._other.mod"}\n')
    table = lazy_exports("nn_handler.pkg", init)
    assert table == {"Thing": "nn_handler.pkg.impl", "far": "nn_handler._other.mod"}
    user = tmp_path / "user.py"
    user.write_text("from nn_handler.pkg import Thing, missing\n")
    modules = {"nn_handler.pkg": init, "nn_handler.pkg.impl": init, "nn_handler.user": user}
    found = _imports_of("nn_handler.user", user, modules, {"nn_handler.pkg": table})
    assert [i.target for i in found] == ["nn_handler.pkg.impl", "nn_handler.pkg"]


def test_the_documented_graph_commands_print_the_graph(capsys):
    """docs/architecture.md's three commands: the summary, the edges and the Graphviz file."""
    from import_graph import main

    assert main([]) == 0
    summary = capsys.readouterr().out
    assert "cycles (module and function level): 0" in summary
    assert "module-level engine imports in the core: 0" in summary
    assert main(["--edges"]) == 0
    edges = capsys.readouterr().out.splitlines()
    assert any(
        e.startswith("nn_handler._engine:") and "adapters.api [function]" in e for e in edges
    )
    assert main(["--dot"]) == 0
    dot = capsys.readouterr().out
    assert dot.startswith("digraph") and '"nn_handler.handler" -> "nn_handler._engine";' in dot
