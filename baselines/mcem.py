"""Monte Carlo EM (paper appendix E), the Figure 3 baseline: no encoder; persistent HMC chains, one
per training point, on log p(z) + log p(x|z), then Adagrad steps of the decoder on the sampled z.

"Training samples evaluated" (the x axis of Fig. 3) is algorithm.count: `gradient` (the default) counts every
decoder gradient evaluation per datapoint, n_leapfrog + 1 for the HMC transition plus n_updates weight updates
(16 per iteration), so that a sample costs about what an AEVB sample costs; `datapoint` counts each minibatch
datapoint once per iteration, as for AEVB. The paper does not say; README, "MCEM's x axis", gives the evidence."""
from __future__ import annotations

import torch
from torch import nn

from reproduce.optim import adagrad
from reproduce.config import Config, MCEMCount
from reproduce.hmc import adapt_step_size, hmc_step
from reproduce.models import standard_normal_log_prob
from reproduce.protocol import Algorithm


class MCEM(Algorithm):
    """Per iteration: one HMC transition (n_leapfrog steps, step size adapted per chain toward
    target_accept) of the minibatch's persistent chains, then n_updates Adagrad steps of the decoder."""

    saved = ("decoder", "opt", "z", "step_size")  # the chains and their step sizes persist across a resume

    def __init__(self, cfg: Config, encoder: nn.Module, decoder: nn.Module, n_train: int, generator: torch.Generator):
        a = cfg.algorithm
        self.encoder, self.decoder, self.generator = None, decoder, generator  # no recognition model
        self.n_leapfrog, self.target, self.n_updates, self.rate = a.n_leapfrog, a.target_accept, a.n_updates, a.adapt_rate
        device = generator.device
        self.z = torch.randn(n_train, cfg.model.n_z, generator=generator, device=device)  # [N, n_z] chains
        self.step_size = torch.full((n_train, 1), a.step_size, device=device)  # [N, 1]
        self.opt = adagrad(cfg.train, decoder.parameters(), n_train)
        self.count = a.gradients_per_iteration() if a.count is MCEMCount.gradient else 1

    def step(self, x: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        log_joint = lambda z: standard_normal_log_prob(z) + self.decoder.log_prob(x, z)  # noqa: E731  [M]
        z, accept = hmc_step(log_joint, self.z[idx], self.step_size[idx], self.n_leapfrog, self.generator)
        self.z[idx], self.step_size[idx] = z, adapt_step_size(self.step_size[idx], accept, self.target, self.rate)
        for _ in range(self.n_updates):
            loss = -self.decoder.log_prob(x, z).mean()
            self.opt.step(loss)
        return {"loss": loss.detach(), "accept": accept.mean()}
