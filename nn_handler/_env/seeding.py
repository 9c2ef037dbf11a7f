"""Seeding every random number generator a training run uses, with Lightning's seeder."""

from __future__ import annotations

__all__ = ["seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (all CUDA devices included), and DataLoader
    workers: Lightning's ``seed_everything(seed, workers=True)`` gives every loader the Trainer
    reads a ``worker_init_fn`` seeding each worker from its rank and worker id.

    Raises:
        ValueError: ``seed`` is not an int in ``[0, 2**32)``.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}.")
    from lightning.fabric.utilities.seed import seed_everything as lightning_seed

    lightning_seed(seed, workers=True, verbose=False)
