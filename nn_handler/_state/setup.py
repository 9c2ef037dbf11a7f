"""The one description of a handler's setup: what the user configured, as plain value objects.

``NNHandler``'s setters validate their arguments and write them here; everything else *reads* a
:class:`Setup`: the checkpoint writer and reader, the CLI config writer and the CLI rebuild, the
generated Lightning module. Each field declares, in :mod:`nn_handler._codecs.fields`, how it is
written to and read from a checkpoint and a CLI config (or why it cannot be), so a new setting
is one field and one setter — no reader can forget it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from .._codecs.fields import CODECS
from ..enums import ModelType
from .autosave import AutoSaveSettings
from .component import Component
from .data import DataSlot
from .loss import LossSpec
from .train_options import TrainOptions

__all__ = ["Setup", "ReadContext"]


@dataclass
class ReadContext:
    """What a checkpoint reader needs besides the file's dict.

    Attributes:
        file: the file the dict came from (messages; the auto-save directory check).
        trust: rebuild everything the file names (``trust_checkpoint=True``).
        trust_model_code: execute the saved model source when the class cannot be imported.
        given: objects the user passed to ``load`` (``model_class``, ``loss_fn``, ...).
        skip: field names not to restore (``skip_optimizer=True``, ...).
        warn: how a field that cannot be restored is reported.
    """

    file: str
    warn: Callable[[str], None]
    trust: bool = False
    trust_model_code: bool = False
    given: dict[str, Any] = field(default_factory=dict)
    skip: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class Setup:
    """Everything a user configured on a handler (see the module docstring).

    Fields hold values (classes with keyword arguments, functions, settings), never trained
    state; :class:`RunState` holds what training produced.
    """

    model: Component
    model_type: ModelType = ModelType.CLASSIFICATION
    save_model_code: bool = False
    model_code: str | None = None
    optimizer: Component | None = None
    scheduler: Component | None = None
    loss: LossSpec | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)
    callbacks: tuple[Any, ...] = ()
    auto_save: AutoSaveSettings = AutoSaveSettings()
    sde: Component | None = None
    sampler: Component | None = None
    seed: int | None = None
    training: TrainOptions = TrainOptions()
    ddp_kwargs: Mapping[str, Any] = field(default_factory=dict)
    train_data: DataSlot | None = None
    val_data: DataSlot | None = None
    eval_modules: tuple[Any, ...] = ()
    compile_kwargs: Mapping[str, Any] | None = None
    device: str = "cpu"

    # ----------------------------------------------------------------- fields
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @staticmethod
    def codec(name: str) -> Any:
        """The reader/writer of field ``name`` (see :mod:`nn_handler._codecs.fields`)."""
        return CODECS[name]

    def replace(self, **changes: Any) -> Setup:
        return dataclasses.replace(self, **changes)

    def same_field(self, other: Setup, name: str) -> bool:
        """Whether field ``name`` holds the same value in both setups."""
        return self.codec(name).same(getattr(self, name), getattr(other, name))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Setup):
            return NotImplemented
        return all(self.same_field(other, name) for name in self.field_names())

    __hash__ = None  # type: ignore[assignment]

    # -------------------------------------------------------------- readers
    def to_checkpoint(self, problems: list[str]) -> dict[str, Any]:
        """The checkpoint entries of every field (what cannot be stored goes to ``problems``)."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            out.update(self.codec(name).to_checkpoint(getattr(self, name), problems))
        return out

    @classmethod
    def from_checkpoint(
        cls,
        ckpt: dict[str, Any],
        ctx: ReadContext,
        guard: Callable[[str], AbstractContextManager[Any]] | None = None,
    ) -> Setup:
        """The setup a checkpoint describes; the model field must resolve, others are warned.

        ``guard(field)``, when given, wraps the reading of each field (the loader uses it to
        name the file and the entries in any error).
        """
        values: dict[str, Any] = {}
        for name in cls.field_names():
            codec = cls.codec(name)
            if name in ctx.skip:
                continue
            with guard(name) if guard is not None else nullcontext():
                value = codec.from_checkpoint(ckpt, ctx, values)
            if value is not None or name == "model":
                values[name] = value
        return cls(**values)

    def to_config(self, report: Any) -> dict[str, Any]:
        """Config entries keyed by their place (``"model.loss"``, ``"data.train_dataset"``...)."""
        out: dict[str, Any] = {}
        for name in self.field_names():
            out.update(self.codec(name).to_config(getattr(self, name), report))
        return out

    @classmethod
    def from_config(cls, args: dict[str, Any]) -> Setup:
        """The setup a CLI config describes; ``args`` maps config places to parsed values."""
        values: dict[str, Any] = {}
        for name in cls.field_names():
            value = cls.codec(name).from_config(args)
            if value is not None:
                values[name] = value
        return cls(**values)
