"""Every failure to decode a checkpoint names the file and the entry (issue 22, row 8).

For every key of a real checkpoint the fuzzer substitutes wrong-typed values (numbers, strings,
``None``, lists, dicts with int keys, a list nested 3000 deep, huge and negative numbers, tensors
of the wrong shape, dtypes, bytes, markers of classes and modules) and loads the file. A load
may succeed (what cannot be used is skipped with a warning) or raise ``ValueError``, the
documented checkpoint error, whose message holds the file's path and the key; anything else
(``TypeError: 'int' object is not iterable``, ``RecursionError``, a negative dimension) fails.
The fast test tries two values per key, rotating so that every value meets many keys; the slow
one tries them all.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch
from safety_parts import full_handler

from nn_handler import NNHandler

MARK = "__nn_handler__"


def _deep(levels: int) -> list:
    top: list = []
    inner = top
    for _ in range(levels):
        inner.append([])
        inner = inner[0]
    return top


WRONG = {
    "zero": 0,
    "negative": -7,
    "huge": 10**40,
    "float": -1.5,
    "nan": float("nan"),
    "text": "x",
    "none": None,
    "bool": True,
    "list": [1, "a", None],
    "dict": {"a": [1]},
    "int keys": {1: 2, 3: [4]},
    "deep list": _deep(3000),
    "tensor": torch.zeros(2, 3),
    "scalar tensor": torch.tensor(-1),
    "dtype": torch.float16,
    "bytes": b"\x00\xff",
    "module marker": {
        MARK: "module",
        "path": "torch.nn:Linear",
        "kwargs": {"in_features": -1, "out_features": 2},
        "state": {},
    },
    "class marker": {MARK: "ref", "path": "torch.nn:Linear"},
}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("fuzz")
    h = full_handler()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h.train(1, progress_bar=False)
    h.save(str(root / "good.pth"))
    return torch.load(root / "good.pth", weights_only=True)


def _save(ckpt: dict, path: Path) -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20000))  # the pickler recurses into the deep list
    try:
        torch.save(ckpt, path)
    finally:
        sys.setrecursionlimit(limit)


def _try(good: dict, key: str, label: str, path: Path) -> str | None:
    """What is wrong with loading ``good`` with ``WRONG[label]`` under ``key`` (None: fine)."""
    _save({**good, key: WRONG[label]}, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            NNHandler.load(str(path))
        except ValueError as err:
            text = str(err)
            if str(path) not in text or key not in text:
                return f"{key} = {label}: the error does not name the file and key: {text[:300]}"
        except BaseException as err:  # noqa: BLE001 - exactly what the fuzzer looks for
            return f"{key} = {label}: {type(err).__name__}: {str(err)[:300]}"
    return None


def _fuzz(good: dict, tmp_path: Path, per_key: int | None) -> tuple[int, list[str]]:
    labels = list(WRONG)
    tried, bad = 0, []
    for i, key in enumerate(sorted(good)):
        chosen = (
            labels
            if per_key is None
            else [labels[(i * 5 + j) % len(labels)] for j in range(per_key)]
        )
        for label in chosen:
            found = _try(good, key, label, tmp_path / "fuzzed.pth")
            tried += 1
            if found:
                bad.append(found)
    return tried, bad


def test_every_key_is_fuzzed(good):
    assert len(good) >= 50  # the handler's keys and Lightning's


def test_a_wrong_value_in_any_key_names_the_file_and_the_key(good, tmp_path):
    tried, bad = _fuzz(good, tmp_path, per_key=2)
    assert tried >= 100
    assert bad == [], "\n".join(bad)


def test_the_deep_list_and_a_negative_dimension_name_their_key(good, tmp_path):
    """The issue's examples, chosen deliberately: each is the documented error, not a crash."""
    for key, label in (
        ("model_kwargs", "deep list"),
        ("sampler_kwargs", "deep list"),
        ("rng_states", "list"),
        ("loader_rng_states", "zero"),
        ("train_losses", "zero"),
        ("model_state_dict", "text"),
    ):
        assert _try(good, key, label, tmp_path / "fuzzed.pth") is None
    negative = {**good, "model_kwargs": {"sizes": [8, -6]}}
    _save(negative, tmp_path / "negative.pth")
    with pytest.raises(ValueError, match=r"negative\.pth.*model_kwargs"):
        NNHandler.load(str(tmp_path / "negative.pth"))


@pytest.mark.slow
def test_every_wrong_value_in_every_key_names_the_file_and_the_key(good, tmp_path):
    tried, bad = _fuzz(good, tmp_path, per_key=None)
    assert tried >= 50 * len(WRONG)
    assert bad == [], "\n".join(bad)
