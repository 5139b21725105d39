"""The importance weighted autoencoder (Burda et al. 2015), beyond the paper: AEVB's encoder, decoder, init and
Adagrad, trained on the K-sample bound L_K instead of the variational lower bound."""
from __future__ import annotations

import math

import torch
from torch import nn

from reproduce.config import Config
from reproduce.models import gaussian_log_prob, standard_normal_log_prob
from reproduce.objectives import reparameterize
from reproduce.optim import adagrad
from reproduce.protocol import Algorithm


def iwae_bound(encoder: nn.Module, decoder: nn.Module, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """L_K = log (1/K) sum_k p(x, z_k) / q(z_k|x), z_k = mu + sigma * eps_k (Burda et al. 2015, eq. 8), per
    datapoint; eps [K, B, n_z] -> [B]. With K = 1 it is the paper's estimator A (eq. 6) with L = 1."""
    mu, log_var = encoder(x)  # [B, n_z]
    z = reparameterize(mu, log_var, len(eps), eps=eps)  # [K, B, n_z]
    log_w = decoder.log_prob(x, z) + standard_normal_log_prob(z) - gaussian_log_prob(z, mu, log_var)  # [K, B]
    return torch.logsumexp(log_w, 0) - math.log(len(eps))


class IWAE(Algorithm):
    """One Adagrad step on -L_K for encoder and decoder jointly (Algorithm 1 with L_K in place of SGVB)."""

    def __init__(self, cfg: Config, encoder: nn.Module, decoder: nn.Module, n_train: int, generator: torch.Generator):
        self.encoder, self.decoder, self.generator = encoder, decoder, generator
        self.K, self.n_z = cfg.algorithm.K, cfg.model.n_z
        self.opt = adagrad(cfg.train, [*encoder.parameters(), *decoder.parameters()], n_train)

    def step(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        eps = torch.randn((self.K, len(x), self.n_z), generator=self.generator, device=x.device)  # [K, M, n_z]
        loss = -iwae_bound(self.encoder, self.decoder, x, eps).mean()
        self.opt.step(loss)
        return {"loss": loss.detach()}
