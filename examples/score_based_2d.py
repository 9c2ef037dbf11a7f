"""Train a score-based generative model on 2-D "two moons" data and sample from it.

Run:  python examples/score_based_2d.py --epochs 300 --out score_based_2d_out
(minutes on an idle CPU, much longer on a loaded one: the progress bars show how far it is;
``--no-progress-bar`` hides them). Writes ``<out>/samples.png`` (data and generated samples side
by side) and ``<out>/metrics.json``, prints the sliced Wasserstein distance of the samples to
held-out data next to the prior's, and ends by naming the files it wrote.
"""

from __future__ import annotations

import argparse
import json
import math
import os

import torch
from sklearn.datasets import make_moons
from torch import nn
from torch.utils.data import TensorDataset

from nn_handler import VPSDE, NNHandler, denoising_score_matching
from nn_handler.generative import sliced_wasserstein


class ScoreMLP(nn.Module):
    """Predicts ``sigma(t) * score(t, x)`` for low-dimensional data.

    The time enters through random Fourier features, so the network can resolve how the score
    changes with the noise level.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, time_features: int = 16):
        super().__init__()
        self.register_buffer("freqs", torch.randn(time_features // 2) * 8.0)
        self.net = nn.Sequential(
            nn.Linear(dim + time_features, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, dim),
        )

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * t[:, None] * self.freqs[None, :]
        features = torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=1)
        return self.net(features)


def moons(n: int, seed: int) -> torch.Tensor:
    """``n`` standardized points of the two-moons data set."""
    x, _ = make_moons(n_samples=n, noise=0.06, random_state=seed)
    x = torch.tensor(x, dtype=torch.float32)
    return (x - torch.tensor([0.5, 0.25])) / torch.tensor([0.87, 0.5])


def build_handler(
    data: torch.Tensor, hidden: int, lr: float, batch_size: int, epochs: int
) -> NNHandler:
    handler = NNHandler(ScoreMLP, model_type="score_based", dim=data.shape[1], hidden=hidden)
    handler.set_sde(VPSDE, beta_min=0.1, beta_max=20.0)
    handler.set_loss_fn(denoising_score_matching)
    handler.set_optimizer(torch.optim.Adam, lr=lr)
    # The DSM targets are noisy: a decaying learning rate (and EMA weights) sharpen the samples.
    handler.set_scheduler(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs)
    handler.set_train_loader(TensorDataset(data), batch_size=batch_size, shuffle=True)
    return handler


def save_figure(data: torch.Tensor, samples: torch.Tensor, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5), sharex=True, sharey=True)
    for ax, points, title in ((axes[0], data, "held-out data"), (axes[1], samples, "samples")):
        ax.scatter(points[:, 0], points[:, 1], s=3, alpha=0.5)
        ax.set_title(title)
        ax.set_aspect("equal")
    axes[0].set_xlim(-3, 3)
    axes[0].set_ylim(-3, 3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--out", default="score_based_2d_out", help="output directory")
    parser.add_argument("--n-train", type=int, default=8192)
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=500, help="reverse-SDE steps")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--ema-decay", type=float, default=0.995)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress-bar", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)
    bars = not args.no_progress_bar

    torch.manual_seed(args.seed)
    train = moons(args.n_train, seed=args.seed)
    held_out = moons(args.n_samples, seed=args.seed + 1)
    handler = build_handler(train, args.hidden, args.lr, args.batch_size, args.epochs)
    handler.train(args.epochs, progress_bar=bars, seed=args.seed, ema_decay=args.ema_decay)

    samples = handler.sample((args.n_samples, 2), steps=args.steps, bar=bars).cpu()
    prior = handler.sde.prior((2,)).sample([args.n_samples])
    generator = torch.Generator().manual_seed(args.seed)
    figures = {
        "sliced_wasserstein_samples": sliced_wasserstein(samples, held_out, generator=generator),
        "sliced_wasserstein_prior": sliced_wasserstein(prior, held_out, generator=generator),
        "final_loss": handler.train_losses[-1],
    }
    os.makedirs(args.out, exist_ok=True)
    save_figure(held_out, samples, os.path.join(args.out, "samples.png"))
    with open(os.path.join(args.out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(figures, f, indent=2)
    print(
        f"sliced Wasserstein to held-out data: samples {figures['sliced_wasserstein_samples']:.4f}"
        f", prior {figures['sliced_wasserstein_prior']:.4f} (DSM loss {figures['final_loss']:.4f})"
    )
    print(f"wrote samples.png and metrics.json to {os.path.abspath(args.out)}")
    return figures


if __name__ == "__main__":
    main()
