"""How algorithm.init_log_var of full_vb is chosen (docs/full_vb.md): 3e5 training samples (3000 steps of
M = 100) per initial log-variance, one seed, then the full variational bound (full_vb_bound, 4 theta draws)
and the bound under the posterior mean on the first 5000 training points; the best full_vb_bound wins.

    python -m reproduce.bench.full_vb_init -10 -8 -7 -6 -4                      # MNIST, n_z = 20 (the default)
    python -m reproduce.bench.full_vb_init --n-z 3 --n-hidden 100 --n-train 1000 -8 -6 -4 -2 0   # Figure 3
"""
import argparse

import torch

from reproduce import algorithms, data as data_mod, marginal_likelihood, models
from reproduce.config import Config, DatasetConfig, FullVBConfig, ModelConfig


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m reproduce.bench.full_vb_init", description=__doc__.splitlines()[0])
    p.add_argument("init_log_var", type=float, nargs="+", help="candidate initial log sigma^2 of q(theta)")
    p.add_argument("--n-z", type=int, default=20)
    p.add_argument("--n-hidden", type=int, default=500)
    p.add_argument("--n-train", type=int, default=None, help="keep the first n_train training points (Figure 3)")
    p.add_argument("--steps", type=int, default=3000)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    dataset = DatasetConfig(n_train=a.n_train)
    d = data_mod.load(dataset, "cpu")
    for lv in a.init_log_var:
        torch.manual_seed(0)
        cfg = Config(dataset=dataset, model=ModelConfig(n_z=a.n_z, n_hidden=a.n_hidden),
                     algorithm=FullVBConfig(init_log_var=lv))
        enc, dec = models.build(cfg.model, 784)
        g = torch.Generator().manual_seed(0)
        alg = algorithms.build(cfg, enc, dec, len(d.train), g)
        for _ in range(a.steps):
            m = alg.step(d.train[torch.randint(0, len(d.train), (100,), generator=g)])
        x = d.train[:5000]
        full = alg.extra_metrics(x, torch.Generator().manual_seed(1))["full_vb_bound"]
        at_mean = marginal_likelihood.elbo(enc, dec, x, 1000, torch.Generator().manual_seed(1)).mean().item()
        lvs = torch.cat([v.detach().flatten() for v in alg.log_var.values()])
        print(f"init_log_var {lv}: full_vb_bound {full:.1f}, KL(q(theta)||p(theta))/N {m['kl_theta'].item():.1f}, "
              f"bound at the mean {at_mean:.1f}, log-variances mean {lvs.mean():.2f} min {lvs.min():.2f} "
              f"max {lvs.max():.2f}", flush=True)


if __name__ == "__main__":
    main()
