"""Job 2 — MLP 784-512-512-10, batch 64: compute dominates (target <= 1.03x raw).

``python -m benchmarks.bench_mlp [--reps N] [--epochs E] [--loader items|batched]``
"""

from __future__ import annotations

from ._common import MLP_SIZES, base_parser
from ._steps import add_floor_argument, add_step_arguments, run_steps

TARGET = 1.03


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.splitlines()[0])
    add_step_arguments(parser, batch=64, loader="items")
    add_floor_argument(parser)
    args = parser.parse_args(argv)
    if args.smoke:
        args.samples, args.reps, args.epochs = 256, 1, 2
    return run_steps("mlp", MLP_SIZES, args, TARGET)


if __name__ == "__main__":
    main()
