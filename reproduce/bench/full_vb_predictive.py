"""Full VB's posterior predictive log p(x) = log E_q(theta)[p(x|theta)] (docs/full_vb.md) beside IS log p(x|E_q[theta])
(the decoder at the posterior mean, as the published metrics), from a full VB job's checkpoint, on the first
`--n` points of each evaluation split (those of its IS metric), with the job's stored config.

    python -m reproduce.bench.full_vb_predictive CHECKPOINT RESULTS_YAML [--draws 100 --k 100 --n 1000]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from reproduce import algorithms, data as data_mod, evaluate, marginal_likelihood, models
from reproduce.results import stored_config


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m reproduce.bench.full_vb_predictive", description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path, help="the job's checkpoint (checkpoints/<sweep>/<run id>.pt)")
    p.add_argument("config", type=Path, help="the job's results/<sweep>/<run id>.yaml")
    p.add_argument("--draws", type=int, default=100, help="theta ~ q(theta) draws")
    p.add_argument("--k", type=int, default=100, help="IS samples of q(z|x) per theta draw (and for the posterior mean)")
    p.add_argument("--n", type=int, default=1000, help="points per split")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = stored_config(yaml.safe_load(a.config.read_text())["config"])
    if cfg.algorithm.name != "full_vb":
        p.error(f"{a.config}: algorithm {cfg.algorithm.name}, not full_vb")
    d = data_mod.load(cfg.dataset, "cpu")
    enc, dec = models.build(cfg.model, d.train.shape[-1])
    alg = algorithms.build(cfg, enc, dec, len(d.train), torch.Generator())
    saved = torch.load(a.checkpoint, weights_only=False)
    alg.load_state_dict(saved["algorithm"])
    lv = torch.cat([v.detach().flatten() for v in alg.log_var.values()])
    print(f"{a.checkpoint.name} at {saved['n_seen']:.4g} samples: KL(q(theta)||p(theta))/N {alg.kl_theta().item() / len(d.train):.1f}, "
          f"log sigma^2 mean {lv.mean():.2f}, median {lv.median():.2f}, max {lv.max():.2f}; "
          f"{(lv > -1).float().mean():.0%} of the {lv.numel()} factors above -1")
    for split, x in evaluate.splits(d, cfg).items():
        x, g = x[: a.n], torch.Generator().manual_seed(1)
        at_mean = marginal_likelihood.log_px_is(enc, dec, x, a.k, generator=g).mean().item()
        predictive = alg.log_px_predictive(x, a.draws, a.k, g).mean().item()
        print(f"  {split}: IS log p(x | E_q[theta]) {at_mean:.1f}, predictive log E_q(theta)[p(x | theta)] {predictive:.1f} "
              f"({a.draws} theta draws x k = {a.k})", flush=True)


if __name__ == "__main__":
    main()
