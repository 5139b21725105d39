"""Throughput of importance-sampled log p(x) (marginal_likelihood.log_px_is) against a per-datapoint loop written the
way pythae's `get_nll` works, on the paper's MNIST model (n_z = 20, 500 hidden units, n_x = 784).

    python -m reproduce.bench.is_loop                      # ~1 minute on 2 CPU cores
    python -m reproduce.bench.is_loop --n 10000 --k 5000   # the standard evaluation (hours on a CPU)

Reads the MNIST test set through reproduce.data when $REPRODUCE_DATA is set, else uses random grey levels;
the weights are the paper's random init (throughput does not depend on them)."""
from __future__ import annotations

import argparse
import math
import os
import time

import torch

from reproduce.config import DatasetConfig, ModelConfig
from reproduce.marginal_likelihood import chunk_sizes, default_max_elements, log_px_is
from reproduce.models import build, gaussian_log_prob, standard_normal_log_prob


@torch.no_grad()
def log_px_per_datapoint(encoder, decoder, x: torch.Tensor, k: int, batch_size: int = 100) -> torch.Tensor:
    """pythae's get_nll: per datapoint, k / batch_size batches of batch_size copies (re-encoded every batch),
    log weights, one logsumexp and a .item() per datapoint. k must be a multiple of batch_size."""
    out = []
    for i in range(len(x)):
        log_w = []
        for _ in range(k // batch_size):
            x_rep = torch.cat(batch_size * [x[i : i + 1]])  # [batch_size, n_x]
            mu, log_var = encoder(x_rep)
            z = mu + (0.5 * log_var).exp() * torch.randn_like(mu)
            log_w.append(decoder.log_prob(x_rep, z) + standard_normal_log_prob(z) - gaussian_log_prob(z, mu, log_var))
        log_w = torch.cat(log_w)
        out.append((torch.logsumexp(log_w, 0) - math.log(len(log_w))).item())
    return torch.tensor(out)


def matmul_flops(n_x: int, n_hidden: int, n_z: int) -> tuple[int, int]:
    """Multiply-add flops (2 per MAC) of one encoder row and one decoder row."""
    return 2 * (n_x * n_hidden + n_hidden * 2 * n_z), 2 * (n_z * n_hidden + n_hidden * n_x)


def timed(fn, device: torch.device):
    """(result, seconds), synchronising a GPU before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def load_x(n: int, n_x: int, device: torch.device) -> tuple[torch.Tensor, str]:
    """The first n MNIST test images if $REPRODUCE_DATA is set, else uniform grey levels."""
    if os.environ.get("REPRODUCE_DATA"):
        from reproduce.data import load

        return load(DatasetConfig(), device).test[:n], "MNIST test"
    return torch.rand(n, n_x, generator=torch.Generator().manual_seed(0)).to(device), "random grey levels"


def report(name: str, seconds: float, n: int, k: int, flops: float, log_px: torch.Tensor) -> None:
    print(
        f"{name:<24} {seconds:8.2f} s  {n * k / seconds:12.4g} datapoint-samples/s  "
        f"{flops / seconds / 1e9:7.2f} GFLOP/s  mean log p(x) {log_px.mean().item():9.3f}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=50, help="datapoints")
    p.add_argument("--k", type=int, default=1000, help="importance samples per datapoint")
    p.add_argument("--batch-size", type=int, default=100, help="samples per batch of the per-datapoint loop")
    p.add_argument("--max-elements", type=int, default=None, help="log_px_is memory budget (default: by device)")
    p.add_argument("--n-z", type=int, default=20)
    p.add_argument("--n-hidden", type=int, default=500)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--skip-loop", action="store_true", help="time log_px_is only")
    args = p.parse_args()
    if args.k % args.batch_size:
        p.error("--k must be a multiple of --batch-size (the per-datapoint loop draws whole batches)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device, n_x = torch.device(args.device), 784
    torch.manual_seed(0)
    encoder, decoder = (m.to(device) for m in build(ModelConfig(n_z=args.n_z, n_hidden=args.n_hidden), n_x))
    x, source = load_x(args.n, n_x, device)
    n, k = len(x), args.k
    enc_flops, dec_flops = matmul_flops(n_x, args.n_hidden, args.n_z)
    max_elements = args.max_elements or default_max_elements(device)
    b_chunk, k_chunk = chunk_sizes(n, k, n_x, max_elements)
    print(f"data: {source}, N={n}, k={k}, n_z={args.n_z}, n_hidden={args.n_hidden}, device={device}, "
          f"threads={torch.get_num_threads()}, log_px_is chunks: {b_chunk} datapoints x {k_chunk} samples")
    print("GFLOP/s counts matmul flops only (2 per multiply-add) of the work each implementation does.")
    log_px_is(encoder, decoder, x[:2], k=min(k, 200), max_elements=max_elements)  # warm-up
    g = torch.Generator(device).manual_seed(0)
    fast, t_fast = timed(lambda: log_px_is(encoder, decoder, x, k, max_elements, g), device)
    report("log_px_is (vectorised)", t_fast, n, k, n * enc_flops + n * k * dec_flops, fast)
    if args.skip_loop:
        return
    slow, t_slow = timed(lambda: log_px_per_datapoint(encoder, decoder, x, k, args.batch_size), device)
    report("per-datapoint (pythae)", t_slow, n, k, n * k * (enc_flops + dec_flops), slow)
    print(f"speed-up (datapoint-samples/s): {t_slow / t_fast:.2f}x; "
          f"max |difference| of the two estimates: {(fast.cpu() - slow).abs().max().item():.3f} nats")


if __name__ == "__main__":
    main()
