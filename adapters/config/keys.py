"""Before the Lightning CLI parses a config: every key in it is one the command takes.

jsonargparse answers a misspelt key with the whole usage text, and a misspelt DataLoader argument
only fails when the data module is built, inside two stacked tracebacks. Reading the ``--config``
files first lets the ``nn-handler`` command name each unknown key with its file, its line and the
closest accepted name, in one line, before anything is built.

What is checked: the option keys of the subcommand (``trainer.*``, ``model.*``, top level), the
``init_args`` of every ``class_path`` whose signature is closed (no ``**kwargs``), the data module's
arguments (``data:`` may omit ``class_path``), ``train_loader``/``val_loader`` against
``torch.utils.data.DataLoader`` and ``model.auto_save`` against :class:`AutoSave`. Free-form
dicts (``loss_kwargs``, ``ddp_kwargs``) keep any key.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from ..._ops.suggest import close_match
from ..datamodule import DATALOADER_ARGUMENTS, HandlerDataModule
from .auto_save import AutoSave
from .imports import config_files, import_object

__all__ = ["KeyProblem", "config_key_problems", "option_names"]

_CLASS_KEYS = frozenset({"class_path", "init_args", "dict_kwargs", "__path__"})
_LOADER_ARGUMENTS = ("train_loader", "val_loader")


@dataclasses.dataclass(frozen=True)
class KeyProblem:
    """One key a config holds that nothing takes.

    Attributes:
        key: the dotted place of the key in the config (``trainer.max_epoch``).
        owner: what does not take it (``the 'fit' command``, ``mlp.MLP``, ...).
        suggestion: the closest accepted name, or ``None``.
        file: the config file; line: its 1-based line, or ``None`` when unknown.
    """

    key: str
    owner: str
    suggestion: str | None
    file: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}, line {self.line}: " if self.line else f"{self.file}: "
        name = self.key.rsplit(".", 1)[-1]
        text = f"{where if self.file else ''}'{self.key}': {self.owner} takes no '{name}'."
        if self.suggestion:
            text += f" Did you mean '{self.suggestion}'?"
        return text


def option_names(parser: Any) -> set[str]:
    """The dotted option keys ``parser`` accepts (``trainer.max_epochs``, ``model.loss``, ...)."""
    skip = {"help", "config", "print_config"}
    return {
        a.dest
        for a in parser._actions  # argparse keeps every option here
        if isinstance(a.dest, str) and a.dest not in skip and not a.dest.endswith(".help")
    }


def _children(prefix: str, options: set[str]) -> set[str]:
    start = f"{prefix}." if prefix else ""
    return {o[len(start) :].split(".")[0] for o in options if o.startswith(start) and o != prefix}


def _signature_names(target: Any) -> set[str] | None:
    """The keyword names ``target`` takes, or ``None`` when it takes any (``**kwargs``)."""
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL}


class _Checker:
    """Walks one config and collects :class:`KeyProblem` entries (without file or line)."""

    def __init__(self, options: set[str], command: str):
        self.options = options
        self.command = command
        self.problems: list[KeyProblem] = []

    def unknown(self, path: tuple[str, ...], owner: str, accepted: Iterable[str]) -> None:
        suggestion = close_match(path[-1], accepted)
        self.problems.append(KeyProblem(".".join(path), owner, suggestion))

    def options_under(self, node: dict[str, Any], path: tuple[str, ...]) -> None:
        """``node`` holds option keys (the top level, ``trainer:``, ``model:``)."""
        accepted = _children(".".join(path), self.options)
        for key, value in node.items():
            here = (*path, str(key))
            dotted = ".".join(here)
            if str(key) not in accepted:
                self.unknown(here, f"the '{self.command}' command", accepted)
            elif any(o.startswith(dotted + ".") for o in self.options):
                if isinstance(value, dict):
                    self.options_under(value, here)
            else:
                self.option_value(dotted, value, here)

    def option_value(self, dotted: str, value: Any, path: tuple[str, ...]) -> None:
        if dotted == "data" and isinstance(value, dict) and "class_path" not in value:
            self.init_args(HandlerDataModule, "HandlerDataModule", value, path)
        elif dotted == "model.auto_save" and isinstance(value, dict):
            fields = {f.name for f in dataclasses.fields(AutoSave)}
            for key in value:
                if key not in fields:
                    self.unknown((*path, str(key)), "auto_save", fields)
        else:
            self.value(value, path)

    def value(self, value: Any, path: tuple[str, ...]) -> None:
        """Any value: class dicts are checked, other containers searched for class dicts."""
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.value(item, (*path, str(i)))
        elif isinstance(value, dict) and isinstance(value.get("class_path"), str):
            self.class_dict(value, path)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.value(item, (*path, str(key)))

    def class_dict(self, node: dict[str, Any], path: tuple[str, ...]) -> None:
        class_path = node["class_path"]
        for key in node:
            if key not in _CLASS_KEYS:
                self.unknown((*path, str(key)), f"a class entry ({class_path})", _CLASS_KEYS)
        target = import_object(class_path) if "." in class_path else None
        init_args = node.get("init_args")
        if target is not None and isinstance(init_args, dict):
            self.init_args(target, class_path, init_args, (*path, "init_args"))

    def init_args(
        self, target: Any, name: str, args: dict[str, Any], path: tuple[str, ...]
    ) -> None:
        accepted = _signature_names(target)
        is_datamodule = isinstance(target, type) and issubclass(target, HandlerDataModule)
        for key, value in args.items():
            here = (*path, str(key))
            if accepted is not None and str(key) not in accepted:
                self.unknown(here, name, accepted)
            elif is_datamodule and key in _LOADER_ARGUMENTS and isinstance(value, dict):
                for loader_key in value:
                    if loader_key not in DATALOADER_ARGUMENTS:
                        self.unknown(
                            (*here, str(loader_key)),
                            "torch.utils.data.DataLoader",
                            DATALOADER_ARGUMENTS,
                        )
            else:
                self.value(value, here)


def _key_lines(text: str) -> dict[str, int]:
    """``dotted key -> 1-based line`` for every mapping key (and list item) of a YAML text."""
    lines: dict[str, int] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            items = [(str(k.value), k, v) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            items = [(str(i), v, v) for i, v in enumerate(node.value)]
        else:
            return
        for name, mark_node, value in items:
            here = (*path, name)
            lines[".".join(here)] = mark_node.start_mark.line + 1
            walk(value, here)

    try:
        walk(yaml.compose(text), ())
    except yaml.YAMLError:
        pass  # jsonargparse reports a malformed file itself
    return lines


def config_key_problems(args: Sequence[str], options: set[str], command: str) -> list[KeyProblem]:
    """The unknown keys of the ``--config`` files in ``args``, for a command taking ``options``."""
    problems = []
    for file in config_files(args):
        try:
            with open(file, encoding="utf-8") as handle:
                text = handle.read()
            config = yaml.safe_load(text)
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue  # jsonargparse reports unreadable files itself
        if not isinstance(config, dict):
            continue
        if command in config and command not in options:  # a config for several subcommands
            config = config[command] if isinstance(config[command], dict) else {}
        checker = _Checker(options, command)
        checker.options_under(config, ())
        lines = _key_lines(text)
        shown = os.path.relpath(file) if not os.path.isabs(file) else file
        for problem in checker.problems:
            line = lines.get(problem.key)
            problems.append(dataclasses.replace(problem, file=shown, line=line))
    return problems
