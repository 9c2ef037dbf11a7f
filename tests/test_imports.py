"""What importing the package costs: public names load on first use, heavy parts only when used.

Timings are the benchmark's business (``python -m benchmarks.bench_import``); these tests check
behaviour: which modules an import brings in, and that every public name still resolves.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import nn_handler
import nn_handler.callbacks
import nn_handler.checkpoint
import nn_handler.dataloaders
import nn_handler.generative

HEAVY = ("lightning", "matplotlib", "tensorboard", "torchmetrics", "scipy")

_PROBE = """
import json, sys
{statement}
print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))
"""


def loaded_after(statement: str) -> set[str]:
    """The top-level modules a fresh interpreter holds after running ``statement``."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(statement=statement)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.slow  # fresh interpreters
def test_imports_bring_in_only_what_they_need():
    assert "torch" not in loaded_after("import nn_handler")
    handler = loaded_after("from nn_handler import NNHandler, EarlyStopping, VESDE")
    assert "torch" in handler
    assert not handler & set(HEAVY)
    # The top-level help is answered without Lightning (nor torch).
    helped = loaded_after(
        "import io, contextlib\n"
        "from nn_handler.adapters.config.entry import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])"
    )
    assert not helped & {"torch", *HEAVY}


@pytest.mark.parametrize(
    "package",
    [
        nn_handler,
        nn_handler.callbacks,
        nn_handler.checkpoint,
        nn_handler.dataloaders,
        nn_handler.generative,
    ],
    ids=lambda p: p.__name__,
)
def test_every_public_name_resolves_to_its_definition(package):
    import importlib

    for name in package.__all__:
        if name == "__version__":
            continue
        value = getattr(package, name)
        defining = importlib.import_module(package._EXPORTS[name], package.__name__)
        assert value is getattr(defining, name), name
        assert name in dir(package)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        package.no_such_name  # noqa: B018


def test_submodules_are_reachable_as_attributes():
    assert nn_handler.utils.on_rank is nn_handler.on_rank
    assert nn_handler.callbacks.Callback is nn_handler.Callback
    from nn_handler import __version__

    assert isinstance(__version__, str)


def test_a_small_module_inside_a_package_runs_none_of_its_siblings():
    """The packages resolve their names on first use, so importing one of their small modules
    loads that module and the packages above it, nothing else of nn_handler."""
    probe = (
        "import json, sys\n"
        "import nn_handler._env.tempfiles, nn_handler.checkpoint._read, nn_handler.generative.sde\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('nn_handler'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [
        "nn_handler",
        "nn_handler._env",
        "nn_handler._env.fork_guard",
        "nn_handler._env.tempfiles",
        "nn_handler._version",
        "nn_handler.callbacks",
        "nn_handler.checkpoint",
        "nn_handler.checkpoint._format",
        "nn_handler.checkpoint._read",
        "nn_handler.checkpoint._scan",
        "nn_handler.generative",
        "nn_handler.generative.sde",
    ]


def test_a_lazy_package_gives_its_submodules_as_attributes():
    losses = nn_handler.generative.losses  # not imported by the package's __init__
    assert losses.denoising_score_matching is nn_handler.generative.denoising_score_matching
    assert nn_handler.checkpoint._format.MANIFEST == nn_handler.checkpoint.MANIFEST
    with pytest.raises(AttributeError, match="has no attribute 'no_such_module'"):
        nn_handler.dataloaders.no_such_module  # noqa: B018
