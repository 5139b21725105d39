"""Would training the seeds of one job as one vectorised batch pay on this CPU? (Measured, not adopted.)

S copies of the paper's model as stacked parameters [S, ...] trained by one batched step (baddbmm, one fused
Adagrad over the stacks), against the same code at S = 1. Prints training samples/s summed over the seeds:

    OMP_NUM_THREADS=1 python -m reproduce.bench.stacked_seeds --seeds 1,3,8

torch.func.vmap over the suite's own modules (stack_module_state + functional_call) was slower still than
S = 1 of this hand-written step (docs/performance.md), so only the hand-written one is here."""
from __future__ import annotations

import argparse
import math
import time

import torch

from reproduce.models import softplus

CASES = {"mnist-nz3": (784, 500, 3, False), "mnist-nz20": (784, 500, 20, False),
         "mnist-nz200": (784, 500, 200, False), "frey-nz10": (560, 200, 10, True)}


def stacked_step(n_x: int, n_h: int, n_z: int, gaussian: bool, S: int, M: int = 100):
    """One AEVB step (SGVB B, L = 1) of S independent models; returns a closure."""
    n_out = n_x * (2 if gaussian else 1)
    shapes = [(n_x, n_h), (1, n_h), (n_h, 2 * n_z), (1, 2 * n_z), (n_z, n_h), (1, n_h), (n_h, n_out), (1, n_out)]
    params = [(0.01 * torch.randn(S, *s)).requires_grad_() for s in shapes]
    W1, b1, W2, b2, W3, b3, W4, b4 = params
    opt = torch.optim.Adagrad(params, lr=0.02, weight_decay=1 / 50_000, fused=True)
    data = torch.rand(50_000, n_x)

    def step():
        x = data[torch.randint(0, len(data), (S, M))]  # [S, M, n_x]
        mu, log_var = torch.baddbmm(b2, torch.tanh(torch.baddbmm(b1, x, W1)), W2).chunk(2, -1)  # [S, M, n_z]
        z = mu + (0.5 * log_var).exp() * torch.randn(S, M, n_z)
        out = torch.baddbmm(b4, torch.tanh(torch.baddbmm(b3, z, W3)), W4)  # [S, M, n_out]
        if gaussian:
            a, b = out.chunk(2, -1)
            lv = -12 + softplus(b + 12)
            log_px_z = -0.5 * (math.log(2 * math.pi) + lv + (x - torch.sigmoid(a)).square() * (-lv).exp()).sum(-1)
        else:
            log_px_z = (x * out - softplus(out)).sum(-1)
        kl = -0.5 * (1 + log_var - mu.square() - log_var.exp()).sum(-1)
        loss = -(log_px_z - kl).mean(-1).sum()  # the seeds' losses are independent: sum keeps their gradients
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def samples_per_s(step, S: int, seconds: float, M: int = 100) -> float:
    for _ in range(5):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return n * M * S / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1,3,8")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    seeds = [int(s) for s in a.seeds.split(",")]
    print(f"threads={torch.get_num_threads()}\n\n| case | " + " | ".join(f"S = {s} samples/s" for s in seeds) + " |")
    print("|---|" + "---|" * len(seeds))
    for case in a.cases.split(","):
        rates = [samples_per_s(stacked_step(*CASES[case], S), S, a.seconds) for S in seeds]
        print(f"| {case} | " + " | ".join(f"{r:,.0f} ({r / rates[0]:.2f}x)" for r in rates) + " |", flush=True)


if __name__ == "__main__":
    main()
