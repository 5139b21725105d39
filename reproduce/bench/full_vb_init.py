"""How the default algorithm.init_log_var of full_vb was chosen (README, "Beyond the paper"): MNIST, n_z = 20,
3e5 training samples (3000 steps of M = 100) per initial log-variance, then the full variational bound
(full_vb_bound, 4 theta draws) and the bound under the posterior mean on the first 5000 training points.

    python -m reproduce.bench.full_vb_init -10 -8 -7 -6 -4
"""
import sys

import torch

from reproduce import algorithms, data as data_mod, marginal_likelihood, models
from reproduce.config import Config, DatasetConfig, FullVBConfig, ModelConfig

torch.set_num_threads(1)
d = data_mod.load(DatasetConfig(), "cpu")
for lv in [float(a) for a in sys.argv[1:]]:
    torch.manual_seed(0)
    cfg = Config(dataset=DatasetConfig(), model=ModelConfig(n_z=20), algorithm=FullVBConfig(init_log_var=lv))
    enc, dec = models.build(cfg.model, 784)
    g = torch.Generator().manual_seed(0)
    alg = algorithms.build(cfg, enc, dec, len(d.train), g)
    for i in range(3000):
        m = alg.step(d.train[torch.randint(0, len(d.train), (100,), generator=g)])
    full = alg.extra_metrics(d.train[:5000], torch.Generator().manual_seed(1))["full_vb_bound"]
    at_mean = marginal_likelihood.elbo(enc, dec, d.train[:5000], 1000, torch.Generator().manual_seed(1)).mean().item()
    lvs = torch.cat([v.detach().flatten() for v in alg.log_var.values()])
    print(f"init_log_var {lv}: full_vb_bound {full:.1f}, KL(q(theta)||p(theta))/N {m['kl_theta'].item():.1f}, "
          f"bound at the mean {at_mean:.1f}, log-variances mean {lvs.mean():.2f} min {lvs.min():.2f} max {lvs.max():.2f}", flush=True)
