"""A custom ``Sampler`` that draws digits from a small VAE trained with NNHandler.

Run:  python examples/vae_sampler.py --epochs 30 --out vae_sampler_out
Trains a VAE on scikit-learn's 8x8 digits (shipped with scikit-learn, nothing downloaded),
draws images through ``handler.get_samples``, writes ``<out>/vae_samples.png`` and shows the
sampler's state surviving ``save``/``load``.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from nn_handler import NNHandler, Sampler


class TinyVAE(nn.Module):
    """A fully connected VAE for flattened 8x8 images in [0, 1]."""

    def __init__(self, latent_dim: int = 4, hidden: int = 128):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, 64)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, log_var = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        return self.decoder(z), mu, log_var

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))


def vae_loss(outputs: tuple[torch.Tensor, ...], inputs: torch.Tensor) -> torch.Tensor:
    """Negative ELBO per image: Bernoulli reconstruction term plus the Gaussian KL term."""
    logits, mu, log_var = outputs
    batch = inputs.shape[0]
    reconstruction = F.binary_cross_entropy_with_logits(logits, inputs, reduction="sum")
    kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
    return (reconstruction + kl) / batch


class LatentSampler(Sampler):
    """Decodes latents drawn from ``N(0, temperature^2 I)`` into 8x8 images.

    Its state (the temperature and how many images it has drawn) goes into checkpoints.
    """

    def __init__(self, model: TinyVAE, temperature: float = 1.0):
        self.model = model
        self.temperature = temperature
        self.drawn = 0

    @torch.no_grad()
    def sample(self, N: int, device: torch.device | str, **kwargs) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        z = self.temperature * torch.randn(N, self.model.latent_dim, device=device)
        images = self.model.decode(z).reshape(N, 8, 8)
        self.model.train(was_training)
        self.drawn += N
        return images

    def save(self) -> dict:
        return {"temperature": self.temperature, "drawn": self.drawn}

    def load(self, state: dict) -> None:
        self.temperature = state["temperature"]
        self.drawn = state["drawn"]


def digits() -> TensorDataset:
    images, _ = load_digits(return_X_y=True)
    return TensorDataset(torch.tensor(images / 16.0, dtype=torch.float32))


def save_grid(images: torch.Tensor, path: str, columns: int = 8) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns, rows))
    for ax in axes.flat:
        ax.axis("off")
    for ax, image in zip(axes.flat, images):
        ax.imshow(image.cpu(), cmap="gray_r", vmin=0, vmax=1)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> torch.Tensor:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="vae_sampler_out", help="output directory")
    parser.add_argument("--n-samples", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress-bar", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    handler = NNHandler(TinyVAE, model_type="generative", latent_dim=4)
    handler.set_loss_fn(vae_loss)
    handler.set_optimizer(torch.optim.Adam, lr=2e-3)
    handler.set_train_loader(digits(), batch_size=64, shuffle=True)
    handler.train(args.epochs, progress_bar=not args.no_progress_bar, seed=args.seed)

    handler.set_sampler(LatentSampler, model=handler.module, temperature=args.temperature)
    images = handler.get_samples(args.n_samples)
    os.makedirs(args.out, exist_ok=True)
    save_grid(images, os.path.join(args.out, "vae_samples.png"))

    checkpoint = os.path.join(args.out, "vae.pth")
    handler.save(checkpoint)
    restored = NNHandler.load(checkpoint)
    losses = handler.train_losses
    print(
        f"negative ELBO: first epoch {losses[0]:.2f}, last {losses[-1]:.2f}; "
        f"drew {tuple(images.shape)} images; restored sampler: temperature "
        f"{restored.sampler.temperature}, drawn {restored.sampler.drawn}"
    )
    print(f"wrote vae_samples.png and vae.pth to {os.path.abspath(args.out)}")
    return images


if __name__ == "__main__":
    # Run through the importable module, so the checkpoint names the classes
    # "vae_sampler:TinyVAE" (loadable wherever examples/ is importable) and not "__main__:...".
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import vae_sampler

    vae_sampler.main()
