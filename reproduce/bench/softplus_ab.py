"""Before/after of the softplus rewrite: the suite's training step with F.softplus and
binary_cross_entropy_with_logits (the straightforward way) against reproduce.models.softplus, interleaved in one
process so that both see the same machine load. Prints samples/s per case and repeat:

    OMP_NUM_THREADS=1 python -m reproduce.bench.softplus_ab --repeats 3"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from reproduce import models
from reproduce.bench import step


def old_bernoulli_log_prob(self, x, z):
    logits = self.logits(z)
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(step.CASES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    a = p.parse_args()
    torch.set_num_threads(1)
    variants = {"before": (old_bernoulli_log_prob, F.softplus), "after": (models.BernoulliDecoder.log_prob, models.softplus)}
    print("| case | before samples/s | after samples/s | after / before |\n|---|---|---|---|")
    for _ in range(a.repeats):
        for case in a.cases.split(","):
            rate = {}
            for name, (log_prob, softplus) in variants.items():
                models.BernoulliDecoder.log_prob, models.softplus = log_prob, softplus  # GaussianDecoder looks softplus up here
                rate[name] = step.ours(case, "cpu", a.seconds)
            print(f"| {case} | {rate['before']:,.0f} | {rate['after']:,.0f} | {rate['after'] / rate['before']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
