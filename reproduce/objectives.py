"""The SGVB estimators of the variational lower bound (paper sec. 2.3), returning per-example terms."""
from __future__ import annotations

from typing import NamedTuple

import torch

from reproduce.config import Estimator
from reproduce.models import GaussianEncoder, gaussian_log_prob, standard_normal_log_prob


class ElboTerms(NamedTuple):
    log_px_z: torch.Tensor  # [B] (1/L) sum_l log p(x|z_l)
    kl: torch.Tensor  # [B] KL(q(z|x) || p(z)), analytic (B) or a sampled estimate (A)

    @property
    def elbo(self) -> torch.Tensor:
        return self.log_px_z - self.kl  # [B]


def gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2) (appendix B)."""
    return -0.5 * (1 + log_var - mu.square() - log_var.exp()).sum(-1)


def reparameterize(mu: torch.Tensor, log_var: torch.Tensor, L: int, generator=None, eps=None) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) (sec. 2.4), eps drawn here unless given; [B, n_z] -> [L, B, n_z]."""
    if eps is None:
        eps = torch.randn((L,) + mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * log_var).exp() * eps


def sgvb_b(encoder: GaussianEncoder, decoder, x: torch.Tensor, L: int = 1, generator=None, eps=None) -> ElboTerms:
    """Estimator B (eq. 10): analytic KL plus a sampled reconstruction term."""
    mu, log_var = encoder(x)  # [B, n_z]
    z = reparameterize(mu, log_var, L, generator, eps)  # [L, B, n_z]
    return ElboTerms(decoder.log_prob(x, z).mean(0), gaussian_kl(mu, log_var))


def sgvb_a(encoder: GaussianEncoder, decoder, x: torch.Tensor, L: int = 1, generator=None, eps=None) -> ElboTerms:
    """Estimator A (eq. 6): log p(x|z) + log p(z) - log q(z|x), all three sampled."""
    mu, log_var = encoder(x)
    z = reparameterize(mu, log_var, L, generator, eps)  # [L, B, n_z]
    kl = (gaussian_log_prob(z, mu, log_var) - standard_normal_log_prob(z)).mean(0)  # [B]
    return ElboTerms(decoder.log_prob(x, z).mean(0), kl)


SGVB = {Estimator.A: sgvb_a, Estimator.B: sgvb_b}  # the SGVB estimators by config value
