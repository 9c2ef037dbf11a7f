"""The original's module map: every ``from X import Y`` its documentation writes imports here.

The import lines are collected from the original's pages themselves (``src.nn_handler`` read as
``nn_handler``). A module of the map re-exports the one implementation (the objects are the
same), and names the original's pages mention but nn_handler has no counterpart for raise an
``ImportError`` that names our equivalent.
"""

from __future__ import annotations

import importlib
import re

import pytest
from original_docs import DOCS, blocks, missing_modules, needs_docs, pages

import nn_handler

# Modules of the map that another change adds; their lines are skipped until they exist.
ELSEWHERE = (
    "nn_handler.dataloaders",
    "nn_handler.checkpointing",
    "nn_handler.logger",
    "nn_handler.utils.ddp_decorators",
    "nn_handler.utils.enums",
)

# Names the original's documentation imports that nn_handler deliberately has no counterpart
# for: importing them raises ImportError whose message names this equivalent.
NO_COUNTERPART = {
    ("nn_handler.model_utils.score_models.sde_solver", "EulerMaruyamaSolver"): "handler.sample",
    ("nn_handler.model_utils.score_models.sde_solver", "SDESolver"): "handler.sample",
}

_FROM = re.compile(
    r"^[ \t]*from[ \t]+((?:src\.)?nn_handler[\w.]*|\.\w+)[ \t]+import[ \t]+(.+)$", re.M
)


def documented_imports() -> list[tuple[str, str, str]]:
    """``(page, module, name)`` for every ``from ... import ...`` of nn_handler in the docs.

    Relative imports (``from .base import Callback`` in the callbacks pages) are read from the
    page's package (``nn_handler.callbacks``).
    """
    found = set()
    for page in pages():
        for code in blocks(page):
            for module, names in _FROM.findall(code):
                if module.startswith("."):
                    package = "nn_handler." + page.split("/")[1]  # nn_handler/<package>/page.md
                    module = package + module
                module = module.removeprefix("src.")
                for name in names.split("#", 1)[0].split(","):
                    name = name.strip().split(" as ")[0].strip("() ")
                    if name:
                        found.add((page, module, name))
    return sorted(found)


IMPORTS = documented_imports() if DOCS is not None else []


def _owner(module: str) -> str | None:
    return next((m for m in ELSEWHERE if module == m or module.startswith(m + ".")), None)


@needs_docs
def test_the_pages_document_the_whole_map():
    modules = {m for _, m, _ in IMPORTS}
    # The modules issue 14 lists, as the pages import them.
    for expected in (
        "nn_handler",
        "nn_handler.callbacks",
        "nn_handler.callbacks.base",
        "nn_handler.model_utils.sampler",
        "nn_handler.utils.ddp",
        "nn_handler.utils.ddp_init",
        "nn_handler.utils.ddp_helpers",
        "nn_handler.utils",
    ):
        assert expected in modules
    assert len(IMPORTS) > 40


@needs_docs
@pytest.mark.parametrize(("page", "module", "name"), IMPORTS, ids=lambda v: str(v))
def test_documented_import(page, module, name):
    owner = _owner(module)
    if owner is not None and missing_modules([owner]):
        pytest.skip(f"{module} belongs to {owner}, added by another change (not here yet)")
    if (module, name) in NO_COUNTERPART:
        with pytest.raises(ImportError, match=re.escape(NO_COUNTERPART[module, name])):
            exec(f"from {module} import {name}", {})  # noqa: S102
        return
    namespace: dict = {}
    exec(f"from {module} import {name}", namespace)  # noqa: S102
    assert namespace[name] is not None


# The one implementation behind each name of the map (no second copies).
SAME_OBJECT = [
    ("nn_handler.nn_handler_distributed", "NNHandler", "nn_handler.handler"),
    ("nn_handler.callbacks.base", "Callback", "nn_handler.callbacks"),
    ("nn_handler.callbacks.saving", "ModelCheckpoint", "nn_handler.callbacks"),
    ("nn_handler.callbacks.training", "EarlyStopping", "nn_handler.callbacks"),
    ("nn_handler.callbacks.training", "ParamScheduler", "nn_handler.callbacks"),
    ("nn_handler.callbacks.monitor", "EarlyStopping", "nn_handler.callbacks"),
    ("nn_handler.callbacks.monitor", "ProgressMonitor", "nn_handler.callbacks"),
    ("nn_handler.callbacks.monitor", "LearningRateMonitor", "nn_handler.callbacks"),
    ("nn_handler.callbacks.monitor", "TensorBoardLogger", "nn_handler.callbacks"),
    ("nn_handler.callbacks.monitor", "EpochTimer", "nn_handler.callbacks"),
    ("nn_handler.callbacks.monitor", "WandbLogger", "nn_handler.callbacks"),
    ("nn_handler.callbacks.monitor", "ParameterNormMonitor", "nn_handler.callbacks"),
    ("nn_handler.callbacks.utils", "SimpleGarbageCollector", "nn_handler.callbacks"),
    ("nn_handler.callbacks.utils", "CudaGarbageCollector", "nn_handler.callbacks"),
    ("nn_handler.callbacks.visualisation", "BasePredictionVisualizer", "nn_handler.callbacks"),
    ("nn_handler.callbacks.visualisation", "ImagePredictionVisualizer", "nn_handler.callbacks"),
    ("nn_handler.model_utils", "Sampler", "nn_handler"),
    ("nn_handler.model_utils.sampler", "Sampler", "nn_handler.sampler"),
    ("nn_handler.utils.ddp", "initialize_ddp", "nn_handler.utils"),
    ("nn_handler.utils.ddp_init", "initialize_ddp", "nn_handler.utils"),
    ("nn_handler.utils.ddp_init", "_resolve_device", "nn_handler._devices:resolve_device"),
    ("nn_handler.utils.ddp", "_resolve_device", "nn_handler._devices:resolve_device"),
    ("nn_handler.utils.ddp_init", "_should_use_distributed", "nn_handler.utils.ddp"),
    ("nn_handler.utils.ddp_helpers", "aggregate_loss", "nn_handler.utils"),
    ("nn_handler.utils.ddp_helpers", "aggregate_metrics", "nn_handler.utils"),
    ("nn_handler.utils.ddp_helpers", "broadcast_data", "nn_handler.utils"),
    ("nn_handler.utils.ddp_helpers", "broadcast_if_ddp", "nn_handler.utils"),
    (
        "nn_handler.model_utils.score_models.loss_fn",
        "denoising_score_matching_loss",
        "nn_handler:denoising_score_matching",
    ),
    (
        "nn_handler.model_utils.score_models",
        "denoising_score_matching",
        "nn_handler:denoising_score_matching",
    ),
]


@pytest.mark.parametrize(("module", "name", "home"), SAME_OBJECT, ids=lambda v: str(v))
def test_map_modules_re_export_the_one_implementation(module, name, home):
    home_module, _, home_name = home.partition(":")
    got = getattr(importlib.import_module(module), name)
    assert got is getattr(importlib.import_module(home_module), home_name or name)


@pytest.mark.parametrize(
    ("module", "name", "hint"),
    [
        ("nn_handler.model_utils.score_models.sde_solver", "SdeSolver", "handler.sample"),
        ("nn_handler.callbacks.visualisation", "ImageReconstruction", "ImagePredictionVisualizer"),
        ("nn_handler.utils.ddp_helpers", "_create_rank_cached_dataloader", "RANK_CACHED"),
    ],
)
def test_names_without_counterpart_say_what_to_use(module, name, hint):
    with pytest.raises(ImportError, match=re.escape(hint)) as info:
        exec(f"from {module} import {name}", {})  # noqa: S102
    assert f"{module}.{name} does not exist in nn_handler" in str(info.value)
    # Any other missing name still behaves like a missing attribute (hasattr works).
    assert not hasattr(importlib.import_module(module), "no_such_name")


def test_the_original_package_layout_imports_without_a_process_group():
    # Importing the map has no side effects: no process group, no CUDA initialisation.
    import torch.distributed as dist

    for module in (
        "nn_handler.nn_handler_distributed",
        "nn_handler.utils.ddp_init",
        "nn_handler.utils.ddp_helpers",
        "nn_handler.utils.dummy_classes",
        "nn_handler.model_utils.score_models.sde_solver",
    ):
        importlib.import_module(module)
    assert not dist.is_initialized()
    assert nn_handler.NNHandler.__module__ == "nn_handler.handler"
