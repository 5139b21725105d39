"""Where the fp32 training step's time goes (docs/performance.md, "Where the step stands"): torch.profiler over
the suite's own step (index draw + AEVB.step with fused Adagrad, one thread) per Figure 2 case, its self CPU
time split into the matrix products and the rest by operator, beside the step's unprofiled rate as a % of the
same run's sgemm ceiling.

    python -m reproduce.bench.profile_step --steps 300 --top 8
"""
from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from reproduce import algorithms, models
from reproduce.bench.step import CASES, config, step_flops
from reproduce.bench.timing import cpu_name, sgemm_gflops, timed

MATMUL = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addmv", "aten::mv"}  # the BLAS calls


def step_of(case: str):
    """The suite's fp32 training step of one case on random data, as a closure."""
    cfg = config(case, "cpu")
    n_x = CASES[case][0]
    data = torch.rand(50_000, n_x)
    enc, dec = models.build(cfg.model, n_x)
    gen = torch.Generator().manual_seed(0)
    alg = algorithms.build(cfg, enc, dec, len(data), gen)

    def step():
        idx = torch.randint(0, len(data), (100,), generator=gen)
        alg.step(data[idx], idx)
    return step


def breakdown(step, steps: int) -> dict[str, float]:
    """Self CPU time per operator over `steps` profiled steps, in microseconds per step."""
    for _ in range(20):
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    return {e.key: e.self_cpu_time_total / steps for e in prof.key_averages()}


def report(case: str, times: dict[str, float], rate: float, ceiling: float, top: int) -> None:
    total = sum(times.values())
    mm = sum(v for k, v in times.items() if k in MATMUL)
    gflops = rate * step_flops(*CASES[case]) / 1e9
    print(f"\n{case}: {rate:,.0f} samples/s unprofiled = {gflops:.1f} GFLOP/s, {100 * gflops / ceiling:.0f}% of the "
          f"sgemm ceiling; profiled self time {total:.0f} us/step, matrix products {mm:.0f} us ({100 * mm / total:.0f}%)")
    rest = sorted(((v, k) for k, v in times.items() if k not in MATMUL), reverse=True)
    for v, k in rest[:top]:
        print(f"  {k:<40} {v:8.1f} us  {100 * v / total:5.1f}%")
    print(f"  {'(other operators)':<40} {sum(v for v, _ in rest[top:]):8.1f} us  "
          f"{100 * sum(v for v, _ in rest[top:]) / total:5.1f}%")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m reproduce.bench.profile_step", description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--steps", type=int, default=300, help="profiled steps per case")
    p.add_argument("--seconds", type=float, default=3.0, help="timing window of the unprofiled rate")
    p.add_argument("--top", type=int, default=8, help="operators listed outside the matrix products")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    print(f"CPU: {cpu_name()}, torch {torch.__version__}, one thread")
    for case in a.cases.split(","):
        step = step_of(case)
        ceiling = sgemm_gflops()  # measured beside each case: the machine drifts
        rate = 100 * timed(step, a.seconds, "cpu")
        report(case, breakdown(step, a.steps), rate, ceiling, a.top)


if __name__ == "__main__":
    main()
