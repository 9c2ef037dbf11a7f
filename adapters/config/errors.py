"""Short CLI errors: the problem and the fix in a line or two, never the whole usage text.

jsonargparse prints the full usage (about 66 lines for ``fit``) before its one-line error. The
``nn-handler`` command prints the error alone, with the closest option name for a misspelt one,
and exits with status 2 (a usage error), as argparse does.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from lightning.pytorch.cli import LightningArgumentParser

from ..._ops.suggest import close_match
from .keys import config_key_problems, option_names

__all__ = ["ConciseArgumentParser", "exit_on_key_problems"]

_UNKNOWN_OPTION = re.compile(
    r"does not accept option '([^']+)'|unrecognized arguments: --(\S+)", re.IGNORECASE
)


def _help_hint(parser: Any) -> str:
    return f"({parser.prog.replace(' [options]', '')} --help lists every option.)"


class ConciseArgumentParser(LightningArgumentParser):
    """A ``LightningArgumentParser`` whose errors are the message alone (status 2).

    Attributes:
        known_options: option names to suggest from besides the parser's own (the chosen
            subcommand's, when this is the main parser).
    """

    known_options: frozenset[str] = frozenset()

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        # Only the exiting path changes: a parser that raises (exit_on_error=False) keeps
        # jsonargparse's behaviour.
        if not self.exit_on_error:
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self  # jsonargparse sets it, or not
        found = _UNKNOWN_OPTION.search(message)
        if found:
            key = found.group(1) or found.group(2)
            suggestion = close_match(key, option_names(parser) | self.known_options)
            if suggestion:
                message += f". Did you mean '{suggestion}'?"
        sys.stderr.write(f"error: {message}\n{_help_hint(parser)}\n")
        self.exit(2)


def exit_on_key_problems(args: Sequence[str], parser: Any, command: str) -> None:
    """Print the unknown keys of the ``--config`` files, one line each, and exit with status 2."""
    problems = config_key_problems(args, option_names(parser), command)
    if not problems:
        return
    lines = [f"error: {p}" for p in problems]
    lines.append(_help_hint(parser))
    print("\n".join(lines), file=sys.stderr)
    raise SystemExit(2)
