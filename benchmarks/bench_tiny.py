"""Job 1 — tiny MLP 32-32-32-10, batch 64: framework overhead dominates (target <= 1.10x raw).

``python -m benchmarks.bench_tiny [--reps N] [--epochs E] [--loader items|batched]``
"""

from __future__ import annotations

from ._common import TINY, base_parser
from ._steps import add_floor_argument, add_step_arguments, run_steps

TARGET = 1.10


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.splitlines()[0])
    add_step_arguments(parser, batch=64, loader="items")
    add_floor_argument(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.reps, args.epochs = 256, 1, 2
    return run_steps("tiny", TINY, args, TARGET)


if __name__ == "__main__":
    main()
