"""A checkpoint is data: loading it chooses no import, no allocation, no process group, no file.

Each test plants one row of issue 22's table in a real checkpoint, loads it every way a user can
(``NNHandler.load`` of the file and of its directory, ``nn_handler.checkpointing.load``,
``initialize_from_checkpoint``, ``Trainer.fit(ckpt_path=...)`` of the exported module), trains
one epoch where the load succeeded, and watches the *effects* (``effects_watch.Effects``): files
written, deleted or renamed outside the sandbox (a fake HOME and a fake site-packages folder are
watched), modules newly imported, ports listening, ``torch.distributed`` initialised, and
tensors allocated (the constructors that would allocate are spied on).
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import sys
import uuid
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.distributed as dist
from effects_watch import Effects
from safety_parts import Nested, full_handler, small_data

import nn_handler
import nn_handler.checkpointing
from nn_handler import NNHandler
from nn_handler._codecs import safe_modules

MARK = "__nn_handler__"


# ------------------------------------------------------------------- fixtures
_data, _handler = small_data, full_handler


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("effects")
    h = _handler()
    h.train(1, progress_bar=False)
    h.save(str(root / "good.pth"))
    return torch.load(root / "good.pth", weights_only=True)


class Sandbox:
    """A test's folders: ``files`` (where the checkpoints go) and the watched ones outside it."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files = tmp_path / "sandbox"
        self.home = tmp_path / "home"
        self.site = tmp_path / "site-packages"
        for folder in (self.files, self.home, self.site):
            folder.mkdir()
        (self.home / ".bashrc").write_text("keep me")
        (self.site / "installed.pth").write_text("keep me")
        monkeypatch.setenv("HOME", str(self.home))
        monkeypatch.syspath_prepend(str(self.site))

    def watch(self) -> Effects:
        return Effects(self.home, self.site)

    def save(self, ckpt: dict, name: str = "evil.pth") -> Path:
        path = self.files / name
        torch.save(ckpt, path)
        return path


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Sandbox:
    return Sandbox(tmp_path, monkeypatch)


# --------------------------------------------------------------------- routes
def _quietly(run: Callable[[], object]) -> tuple[object, BaseException | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return run(), None
        except (ValueError, TypeError, FileNotFoundError) as err:  # a refusal: clear errors
            return None, err


def _load_dir(file: Path) -> NNHandler:
    folder = file.parent / "runs"
    folder.mkdir(exist_ok=True)
    shutil.copy(file, folder / "model_epoch09.pth")
    return NNHandler.load(str(folder))


def _fit_resume(file: Path) -> NNHandler:
    h = _handler()
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(h.to_lightning_module(), datamodule=h.to_datamodule(), ckpt_path=str(file))
    return h


ROUTES: dict[str, Callable[[Path], object]] = {
    "NNHandler.load(file)": lambda f: NNHandler.load(str(f)),
    "NNHandler.load(directory)": _load_dir,
    "checkpointing.load": lambda f: nn_handler.checkpointing.load(NNHandler, str(f)),
    "initialize_from_checkpoint": lambda f: NNHandler.initialize_from_checkpoint(
        str(f), Nested, sizes=[8, 6]
    ),
    "Trainer.fit(ckpt_path)": _fit_resume,
}
HANDLER_ROUTES = ("NNHandler.load(file)", "NNHandler.load(directory)", "checkpointing.load")


def _then_train(loaded: object) -> None:
    """``train(1)`` on what a route returned, when it is a handler: nothing planted may act."""
    if isinstance(loaded, NNHandler) and loaded.optimizer is not None:
        loaded.set_train_loader(_data(), batch_size=16)
        if loaded.loss_fn is None:
            loaded.set_loss_fn(torch.nn.functional.cross_entropy)
        loaded.auto_save(None)
        _quietly(lambda: loaded.train(1, progress_bar=False))


def _run_watched(sandbox: Sandbox, route: str, file: Path, forbidden: tuple[str, ...] = ()):
    with sandbox.watch() as effects:
        loaded, error = _quietly(lambda: ROUTES[route](file))
        _then_train(loaded)
    assert effects.problems(forbidden) == [], f"{route}: {effects.problems(forbidden)}"
    return loaded, error


# ------------------------------------------------ row 3: no import the file chose
def _plant_module(sandbox: Sandbox) -> str:
    """A module in the fake site-packages whose import leaves a file in the fake HOME."""
    name = f"planted_{uuid.uuid4().hex[:8]}"
    (sandbox.site / f"{name}.py").write_text(
        "import os, pathlib\n"
        "pathlib.Path(os.environ['HOME'], 'IMPORTED').write_text(__name__)\n"
        "import torch\n"
        "from safety_parts import Nested as Net, accuracy as score\n"
        "class Opt(torch.optim.SGD):\n"
        "    pass\n"
    )
    return name


def _import_payloads(name: str) -> dict[str, Callable[[dict], None]]:
    def put(key, value):
        return lambda c: c.__setitem__(key, value)

    def metric(c):
        c["metrics"] = {**c["metrics"], "m": {MARK: "ref", "path": f"{name}:score"}}

    def in_kwargs(c):
        extra = {"net": {MARK: "module", "path": f"{name}:Net", "kwargs": {}, "state": {}}}
        c["model_kwargs"] = {**c["model_kwargs"], "extra": extra}

    def callback(c):
        c["callback_classes"] = {"Planted": f"{name}:Opt"}

    return {
        "model_class": put("model_class", f"{name}:Net"),
        "optimizer_class": put("optimizer_class", f"{name}:Opt"),
        "scheduler_class": put("scheduler_class", f"{name}:Opt"),
        "loss_fn": put("loss_fn", {MARK: "ref", "path": f"{name}:score"}),
        "metrics": metric,
        "model_kwargs": in_kwargs,
        "callback_classes": callback,
        "sde_class": put("sde_class", f"{name}:Opt"),
        "sampler_class": put("sampler_class", f"{name}:Opt"),
    }


@pytest.fixture
def planted_module(sandbox, monkeypatch):
    name = _plant_module(sandbox)
    yield name
    for module in [m for m in sys.modules if m == name]:
        monkeypatch.delitem(sys.modules, module)


@pytest.mark.parametrize("route", HANDLER_ROUTES)
def test_a_file_imports_no_module_the_script_did_not_import(good, sandbox, planted_module, route):
    """Row 3: a class path naming a module nobody imported runs nothing of it."""
    for slot, plant in _import_payloads(planted_module).items():
        evil = copy.deepcopy(good)
        plant(evil)
        file = sandbox.save(evil)
        _run_watched(sandbox, route, file, forbidden=(planted_module,))
        assert planted_module not in sys.modules, f"{route}, {slot}: the module was imported"
        assert not (sandbox.home / "IMPORTED").exists(), f"{route}, {slot}: its code ran"


def test_the_refusal_says_which_import_object_or_flag(good, sandbox, planted_module):
    evil = dict(good, model_class=f"{planted_module}:Net")
    file = sandbox.save(evil)
    with pytest.raises(ValueError) as caught:
        NNHandler.load(str(file))
    message = str(caught.value)
    assert repr(str(file)) in message and "model_class" in message
    for advice in (
        f"import {planted_module}",
        "model_class=",
        f"register_safe_modules({planted_module!r})",
        "safe_modules=",
        "trust_checkpoint=True",
    ):
        assert advice in message
    assert planted_module not in sys.modules


@pytest.mark.parametrize("how", ["safe_modules", "register_safe_modules", "trust_checkpoint"])
def test_the_user_can_let_a_file_import_its_module(good, sandbox, planted_module, monkeypatch, how):
    monkeypatch.setattr(safe_modules, "_REGISTERED", set())
    file = sandbox.save(dict(good, model_class=f"{planted_module}:Net"))
    kwargs = {}
    if how == "safe_modules":
        kwargs["safe_modules"] = [planted_module]
    elif how == "register_safe_modules":
        nn_handler.register_safe_modules(planted_module)
    else:
        kwargs["trust_checkpoint"] = True
    loaded, error = _quietly(lambda: NNHandler.load(str(file), **kwargs))
    assert error is None
    assert (sandbox.home / "IMPORTED").read_text() == planted_module
    assert isinstance(loaded.module, Nested)
    # A name covers its submodules only, not a longer name that merely starts the same.
    assert safe_modules.importable(f"{planted_module}.sub") == (how == "register_safe_modules")
    assert not safe_modules.importable(f"{planted_module}x")


def test_an_imported_module_or_the_allow_list_needs_no_opt_in(good, sandbox):
    """Scripts that import their model module, and torch's own classes, load as before."""
    loaded = NNHandler.load(str(sandbox.save(good)))
    assert isinstance(loaded.module, Nested) and type(loaded.optimizer) is torch.optim.Adam
    assert isinstance(loaded.metrics["ce"], torch.nn.CrossEntropyLoss)
    with pytest.raises(ValueError, match="not a module name"):
        nn_handler.register_safe_modules("not a module")


# ------------------------------------------- row 4: a pickled DeviceMesh starts nothing
class _MeshPickle:
    """Pickles as ``DeviceMesh("cpu", [0])``: on torch's weights_only allow-list."""

    def __reduce__(self):
        from torch.distributed.device_mesh import DeviceMesh

        return (DeviceMesh, ("cpu", [0]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built in")
@pytest.mark.parametrize("route", list(ROUTES))
def test_a_pickled_device_mesh_initialises_no_process_group(good, sandbox, monkeypatch, route):
    """Row 4: under torchrun's variables, loading must not start torch.distributed."""
    import torch.distributed.tensor  # noqa: F401 - what puts DeviceMesh on torch's allow-list

    file = sandbox.save({**good, "planted": _MeshPickle()})
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    env.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1")
    if route.startswith("Trainer"):
        env = {}  # under torchrun's variables Lightning itself starts a process group
    try:
        with sandbox.watch() as effects:
            for key, value in env.items():
                monkeypatch.setenv(key, value)
            loaded, error = _quietly(lambda: ROUTES[route](file))
        assert effects.problems() == [], f"{route}: {effects.problems()}"
        if route == "NNHandler.load(directory)":  # the scan skips it (a warning): none left
            assert isinstance(error, FileNotFoundError)
            return
        assert isinstance(error, ValueError)
        assert "torch.distributed.device_mesh.DeviceMesh" in str(error)
        assert str(file) in str(error)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


# --------------------------------- row 5: a module marker in a slot that takes an int
_BIG = 4096  # Linear(4096, 4096): 64 MiB of weights from a file of a few KiB


def _big_linear() -> dict:
    kwargs = {"in_features": _BIG, "out_features": _BIG}
    return {MARK: "module", "path": "torch.nn:Linear", "kwargs": kwargs, "state": {}}


def _allocation_payloads() -> dict[str, Callable[[dict], None]]:
    def put(key):
        return lambda c: c.__setitem__(key, _big_linear())

    def nested(key, inner):
        return lambda c: c.__setitem__(key, {**(c.get(key) or {}), inner: _big_linear()})

    def trainer_kwargs(c):
        c["training_options"] = {**c["training_options"], "trainer_kwargs": {"x": _big_linear()}}

    def model_kwargs(c):
        c["model_kwargs"] = {**c["model_kwargs"], "extra": {"net": _big_linear()}}

    def metric(c):
        c["metrics"] = {**c["metrics"], "big": _big_linear()}

    def module_kwargs(c):
        inner = {**_big_linear(), "kwargs": {}, "path": "torch.nn:Sequential"}
        inner["kwargs"] = {"args": [_big_linear()]}
        c["loss_fn"] = inner

    return {
        "seed": put("seed"),
        "model_type": put("model_type"),
        "save_model_code": put("save_model_code"),
        "ddp_kwargs": nested("ddp_kwargs", "x"),
        "training_options": trainer_kwargs,
        "loss_fn": put("loss_fn"),
        "loss_fn inside a module's arguments": module_kwargs,
        "metrics": metric,
        "model_kwargs": model_kwargs,
        "callback_states": nested("callback_states", "StatefulCallback"),
        "sampler_kwargs": nested("sampler_kwargs", "options"),
    }


@pytest.fixture
def real_linears(monkeypatch) -> list[tuple[int, ...]]:
    """Shapes of every ``nn.Linear`` weight given real memory while the test runs."""
    built: list[tuple[int, ...]] = []
    original = torch.nn.Linear.reset_parameters

    def spy(self):
        if not self.weight.is_meta:
            built.append(tuple(self.weight.shape))
        return original(self)

    monkeypatch.setattr(torch.nn.Linear, "reset_parameters", spy)
    return built


@pytest.mark.parametrize("route", HANDLER_ROUTES)
def test_a_file_allocates_no_module_it_does_not_store(good, sandbox, real_linears, route):
    """Row 5: a few KiB of file never builds a 64 MiB module, in any slot, then train(1)."""
    for slot, plant in _allocation_payloads().items():
        evil = copy.deepcopy(good)
        plant(evil)
        real_linears.clear()
        _run_watched(sandbox, route, sandbox.save(evil))
        assert (_BIG, _BIG) not in real_linears, f"{route}, {slot}: the module was built"


def test_a_refused_setting_says_what_it_holds(good, sandbox, real_linears):
    file = sandbox.save(dict(good, seed=_big_linear()))
    with pytest.warns(UserWarning, match=r"seed not restored: seed holds a stored 'module'"):
        loaded = NNHandler.load(str(file))
    assert loaded.seed is None and real_linears == [(6, 8), (3, 6)]


def test_a_module_the_file_stores_whole_is_rebuilt(good, sandbox):
    """The size bound counts what the file stores: a stored loss module with its state loads."""
    weight = torch.arange(3, dtype=torch.float32)
    loss = {MARK: "module", "path": "torch.nn:CrossEntropyLoss", "kwargs": {"weight": weight}}
    loss["state"] = {"weight": weight}
    loaded = NNHandler.load(str(sandbox.save(dict(good, loss_fn=loss))))
    assert torch.equal(loaded.loss_fn.weight, weight)


@pytest.mark.slow
def test_a_huge_module_marker_in_seed_takes_no_memory(good, sandbox):
    """Row 5 as the issue measured it: Linear(23000, 23000) (2.1 GB) in ``seed``; the peak
    resident memory of a fresh process loading the file grows by far less than that."""
    import subprocess

    marker = {MARK: "module", "path": "torch.nn:Linear", "state": {}}
    marker["kwargs"] = {"in_features": 23000, "out_features": 23000}
    file = sandbox.save(dict(good, seed=marker))
    script = (
        "import resource, sys, warnings, torch\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from nn_handler import NNHandler\n"
        "import safety_parts\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "warnings.simplefilter('ignore')\n"
        "NNHandler.load(sys.argv[1])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    tests = str(Path(__file__).resolve().parent)
    out = subprocess.run(
        [sys.executable, "-c", script, str(file), tests],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    grown_kib = int(out.stdout.strip().splitlines()[-1])
    assert grown_kib < 500 * 1024, f"peak memory grew by {grown_kib} KiB"


# ----------------------------------- row 6: a compressed zip is refused before it inflates
def _deflated(good: dict, sandbox: Sandbox) -> Path:
    """The checkpoint plus 16 MiB of zeros, its zip entries re-compressed (a few KiB)."""
    stored = sandbox.files / "stored.pth"
    torch.save({**good, "padding": torch.zeros(4 * 2**20)}, stored)
    file = sandbox.files / "deflated.pth"
    with zipfile.ZipFile(stored) as src, zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    stored.unlink()
    assert file.stat().st_size < 2**20
    return file


@pytest.mark.parametrize("route", list(ROUTES))
def test_a_compressed_zip_is_refused_before_torch_load(good, sandbox, monkeypatch, route):
    """Row 6: torch.load never sees the file; the error names it and what is wrong."""
    file = _deflated(good, sandbox)
    opened: list[str] = []
    original = torch.load

    def spy(f, *args, **kwargs):
        opened.append(os.path.basename(os.fspath(f)) if not hasattr(f, "read") else "<stream>")
        return original(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    _, error = _run_watched(sandbox, route, file)
    assert opened == [], f"{route}: torch.load read {opened}"
    assert error is not None
    if route != "NNHandler.load(directory)":  # a directory scan skips it, with a warning
        assert str(file) in str(error) and "compressed" in str(error)


# ------------------------------------- row 9: a multi-file checkpoint reads only its own files
@pytest.mark.parametrize("which", ["model_state_dict.pth", "nn_handler_checkpoint.json"])
@pytest.mark.parametrize("route", HANDLER_ROUTES[::2])
def test_a_link_in_a_multi_file_checkpoint_is_refused(sandbox, route, which):
    h = _handler()
    folder = sandbox.files / "ckpt"
    h.save(str(folder), single_file=False)
    outside = sandbox.home / which
    shutil.move(folder / which, outside)
    (folder / which).symlink_to(outside)
    with sandbox.watch() as effects:
        loaded, error = _quietly(lambda: ROUTES[route](folder))
    assert effects.problems() == []
    assert loaded is None and isinstance(error, ValueError)
    assert str(folder / which) in str(error) and "symbolic link" in str(error)


# ------------------------------------------------------- a file cannot declare itself trusted
def test_a_file_cannot_mark_itself_as_an_opted_in_legacy_pickle(good, sandbox):
    """The legacy reader's mark (which makes load trust the file) is never taken from the file:
    a planted partial stays refused."""
    canary = sandbox.home / "RAN"
    partial = {
        MARK: "partial",
        "func": {MARK: "ref", "path": "safety_parts:marking_loss"},
        "args": [],
        "kwargs": {"path": str(canary)},
    }
    evil = dict(good, loss_fn=partial, loss_fn_kwargs={})
    evil["__nn_handler_legacy_pickle__"] = True
    file = sandbox.save(evil)
    with sandbox.watch() as effects:
        with pytest.warns(UserWarning, match=r"Loss not restored.*partial"):
            loaded = NNHandler.load(str(file))
        _then_train(loaded)
    assert loaded.loss_fn is torch.nn.functional.cross_entropy  # set by _then_train
    assert effects.problems() == [] and not canary.exists()


# ------------------------------------------------------------ the CLI's --ckpt_path route
@pytest.mark.slow
def test_the_cli_refuses_a_planted_resume_file_unread(tmp_path, sandbox, monkeypatch):
    """Rows 4 and 6 through ``nn-handler fit --ckpt_path``: refused before Lightning reads it."""
    import torch.distributed.tensor  # noqa: F401 - what puts DeviceMesh on torch's allow-list
    from nn_handler.adapters.cli import NNHandlerCLI

    examples = Path(__file__).resolve().parents[1] / "examples" / "cli"
    monkeypatch.syspath_prepend(str(examples))
    from blobs import GaussianBlobs
    from mlp import MLP

    h = NNHandler(MLP, hidden=8)
    h.set_optimizer(torch.optim.Adam, lr=0.01)
    h.set_loss_fn(torch.nn.functional.cross_entropy)
    h.set_train_loader(GaussianBlobs(n_samples=32), batch_size=16)
    h.export_config(str(tmp_path / "run.yaml"), epochs=1, progress_bar=False)
    h.save(str(tmp_path / "good.pth"))
    good = torch.load(tmp_path / "good.pth", weights_only=True)
    name = _plant_module(sandbox)
    hparams = {"_class_path": f"{name}.Net", "sizes": [8, 6]}  # LightningCLI's own key
    planted = {
        "DeviceMesh": sandbox.save({**good, "planted": _MeshPickle()}, "mesh.pth"),
        "compressed": _deflated(good, sandbox),
        None: sandbox.save({**good, "hyper_parameters": hparams}, "hparams.pth"),
    }
    monkeypatch.chdir(tmp_path)
    try:
        for expected, file in planted.items():
            args = ["fit", "--config", "run.yaml", "--ckpt_path", str(file)]
            args += ["--trainer.enable_checkpointing", "false", "--trainer.logger", "false"]
            with sandbox.watch() as effects:
                _, error = _quietly(lambda args=args: NNHandlerCLI(args=args))
            assert effects.problems((name,)) == [], effects.problems((name,))
            if expected is None:  # the file's hyper_parameters are ignored: the config rules
                assert error is None and name not in sys.modules
                continue
            assert isinstance(error, ValueError) and str(file) in str(error)
            assert expected in str(error)
    finally:
        sys.modules.pop(name, None)
        for key in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS"):
            os.environ.pop(key, None)
        if dist.is_initialized():
            dist.destroy_process_group()


def test_a_file_chosen_model_size_is_bounded_by_the_weights_it_stores(good, sandbox, real_linears):
    """The model's own arguments come from the file too: ``sizes=[4096, 4096]`` with the
    weights of ``sizes=[8, 6]`` is refused before the model is built (measured on ``meta``)."""
    evil = dict(good, model_kwargs={**good["model_kwargs"], "sizes": [_BIG, _BIG]})
    file = sandbox.save(evil)
    with pytest.raises(ValueError, match=r"model_kwargs.*takes \d+ bytes.*stores \d+ bytes"):
        NNHandler.load(str(file))
    assert (_BIG, _BIG) not in real_linears
    # Arguments the user passes win over the file's (and are the user's choice).
    loaded = NNHandler.load(str(file), model_kwargs={"sizes": [8, 6]})
    assert loaded.module.body[0].weight.shape == (6, 8)
