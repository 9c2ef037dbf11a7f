"""The ``nn-handler`` command's entry point: the top-level help without importing Lightning.

Importing Lightning takes seconds (it imports torch, torchmetrics and, through them, scipy and
matplotlib). ``nn-handler --help`` only lists the subcommands, so it is answered here; every
other command line goes to :func:`nn_handler.adapters.cli.main` (``nn-handler fit --help``
needs Lightning: it lists the Trainer's options).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["SUBCOMMANDS", "TOP_LEVEL_HELP", "main"]

# The Lightning CLI's subcommands (``LightningCLI.subcommands()``), with what each does here.
SUBCOMMANDS = {
    "fit": "Train: the handler's train(), configured by the YAML.",
    "validate": "One evaluation epoch over the validation set.",
    "test": "One evaluation epoch over the test set (test_dataset, else the validation set).",
    "predict": "Predictions over predict_dataset (nn_handler.adapters.cli.PredictionWriter "
    "saves them).",
}

TOP_LEVEL_HELP = (
    "usage: nn-handler [-h] [-c CONFIG] [--print_config[=flags]] "
    "{fit,validate,test,predict} ...\n\n"
    "Train an NNHandler described in YAML with Lightning's CLI.\n\n"
    "options:\n"
    "  -h, --help            Show this help message and exit.\n"
    "  -c CONFIG, --config CONFIG\n"
    "                        Path to a configuration file in json or yaml format.\n"
    "  --print_config[=flags]\n"
    "                        Print the configuration after applying all other\n"
    "                        arguments and exit (flags: skip_default, skip_unset).\n\n"
    "subcommands (each takes --help, which lists every key):\n"
    + "".join(f"  {name:<20}  {text}\n" for name, text in SUBCOMMANDS.items())
    + "\nExample: nn-handler fit --config run.yaml   (see docs/lightning.md)\n"
)


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``nn-handler`` console script and ``python -m nn_handler``."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv in (["-h"], ["--help"]):
        sys.stdout.write(TOP_LEVEL_HELP)
        return
    from ..cli import main as run

    run(None if args is None else list(args))
