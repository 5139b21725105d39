"""IS log p(x) at k = 5000: ours (marginal_likelihood.log_px_is) against pythae's `VAE.get_nll` on the same
trained weights and images, interleaved in one process, with the same-run sgemm ceiling.

    pip install -e ".[bench]"                       # pythae, an optional dependency
    REPRODUCE_DATA=/path/to/data python -m reproduce.bench.is_pythae --threads 1

pythae gets the weights through a plain encoder and decoder (nn.Linear, torch.tanh, torch.sigmoid), as a pythae
user would write them; its get_nll runs under no_grad (faster than it runs by default). Both estimates are
printed: they must agree to within the IS noise."""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from reproduce.bench.timing import sgemm_gflops
from reproduce.config import DatasetConfig, ModelConfig
from reproduce.jobs import REPO
from reproduce.marginal_likelihood import log_px_is
from reproduce.models import build

WEIGHTS = REPO / "results" / "fig45" / "mnist-aevb-nz20-s0-3d30fb91.weights.pt"  # Figures 4/5's MNIST n_z = 20


def pythae_vae(encoder, decoder, n_z: int):
    """pythae's VAE (bce reconstruction) around plain copies of our trained encoder and decoder."""
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = encoder.hidden, encoder.out

        def forward(self, x):
            mu, log_var = self.out(torch.tanh(self.hidden(x.reshape(len(x), -1)))).chunk(2, dim=-1)
            return ModelOutput(embedding=mu, log_covariance=log_var)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = decoder.hidden, decoder.out

        def forward(self, z):
            y = torch.sigmoid(self.out(torch.tanh(self.hidden(z))))
            return ModelOutput(reconstruction=y.reshape(len(z), 1, 28, 28))

    cfg = VAEConfig(input_dim=(1, 28, 28), latent_dim=n_z, reconstruction_loss="bce")
    return VAE(cfg, encoder=Encoder(), decoder=Decoder()).eval()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=WEIGHTS, help=f"trained MNIST weights (default: {WEIGHTS.relative_to(REPO)})")
    p.add_argument("--n", type=int, default=40, help="first n MNIST test images")
    p.add_argument("--k", type=int, default=5000)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (ours, pythae, sgemm); the median is reported")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compiled", action="store_true", help="also time ours with eval.compile (its compile time apart)")
    return p


def trained(weights: Path) -> tuple[nn.Module, nn.Module, int, int]:
    """The MNIST encoder and decoder of a weights file, with their n_z and hidden units."""
    state = torch.load(weights, map_location="cpu")
    n_z = state["decoder"]["hidden.weight"].shape[1]
    n_hidden = state["decoder"]["hidden.weight"].shape[0]
    encoder, decoder = build(ModelConfig(n_z=n_z, n_hidden=n_hidden), 784)
    encoder.load_state_dict(state["encoder"])
    decoder.load_state_dict(state["decoder"])
    return encoder, decoder, n_z, n_hidden


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from reproduce.data import load

    encoder, decoder, n_z, n_hidden = trained(a.weights)
    x = load(DatasetConfig()).test[: a.n]  # [n, 784]
    vae = pythae_vae(encoder, decoder, n_z)
    flops = a.n * a.k * 2 * (n_z * n_hidden + n_hidden * 784)  # the decoder's matmuls: the floor of the work
    print(f"threads={torch.get_num_threads()} torch={torch.__version__} weights={a.weights.name} n={a.n} k={a.k}")
    ours_s, theirs_s, ceilings, ours_v, theirs_v, comp_s = [], [], [], [], [], []
    with torch.no_grad():
        log_px_is(encoder, decoder, x[:2], k=200)  # warm-up
        if a.compiled:
            t0 = time.perf_counter()
            log_px_is(encoder, decoder, x[:1], a.k, compiled=True)
            print(f"compiling the IS chunk (and one image): {time.perf_counter() - t0:.1f} s")
        for r in range(a.rounds):
            t0 = time.perf_counter()
            ours_v.append(log_px_is(encoder, decoder, x, a.k).mean().item())
            ours_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs_v.append(vae.get_nll(x.reshape(-1, 1, 28, 28), n_samples=a.k, batch_size=100))
            theirs_s.append(time.perf_counter() - t0)
            ceilings.append(sgemm_gflops(seconds=2.0))
            if a.compiled:
                t0 = time.perf_counter()
                log_px_is(encoder, decoder, x, a.k, compiled=True)
                comp_s.append(time.perf_counter() - t0)
            print(f"round {r}: ours {1e3 * ours_s[-1] / a.n:.1f} ms/image, pythae {1e3 * theirs_s[-1] / a.n:.1f} ms/image, "
                  f"sgemm {ceilings[-1]:.1f} GFLOP/s")
    ours, theirs, ceiling = (statistics.median(v) for v in (ours_s, theirs_s, ceilings))
    gflops = flops / ours / 1e9
    print(f"\n| | ms per image | mean log p(x) | GFLOP/s (decoder matmuls) | % of sgemm ({ceiling:.1f}) |\n|---|---|---|---|---|")
    print(f"| ours (log_px_is) | {1e3 * ours / a.n:.1f} | {statistics.mean(ours_v):.2f} | {gflops:.1f} | {100 * gflops / ceiling:.0f}% |")
    if a.compiled:
        comp = statistics.median(comp_s)
        print(f"| ours, eval.compile | {1e3 * comp / a.n:.1f} | | {flops / comp / 1e9:.1f} | {100 * flops / comp / 1e9 / ceiling:.0f}% |")
    print(f"| pythae get_nll | {1e3 * theirs / a.n:.1f} | {statistics.mean(theirs_v):.2f} | {flops / theirs / 1e9:.1f} | "
          f"{100 * flops / theirs / 1e9 / ceiling:.0f}% |")
    print(f"\nours is {theirs / ours:.2f}x faster than pythae (medians of {a.rounds} interleaved rounds)")


if __name__ == "__main__":
    main()
