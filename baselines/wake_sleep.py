"""Wake-sleep (Hinton et al. 1995), the paper's baseline (sec. 5), and reweighted wake-sleep
(Bornschein & Bengio 2014), on the same encoder, decoder, init, Adagrad and M as AEVB."""
from __future__ import annotations

import torch
from torch import nn

from reproduce.optim import adagrad
from reproduce.config import Config
from reproduce.models import standard_normal_log_prob
from reproduce.objectives import reparameterize
from reproduce.protocol import Algorithm


class WakeSleep(Algorithm):
    """Wake: step the decoder on -log p(x|z), z ~ q(z|x) with no gradient into q. Sleep: dream
    z ~ p(z), x ~ p(x|z) and step the encoder on -log q(z|x). Two optimizers."""

    saved = ("encoder", "decoder", "wake_opt", "sleep_opt")

    def __init__(self, cfg: Config, encoder: nn.Module, decoder: nn.Module, n_train: int, generator: torch.Generator):
        self.encoder, self.decoder, self.generator = encoder, decoder, generator
        self.wake_opt = adagrad(cfg.train, decoder.parameters(), n_train)
        self.sleep_opt = adagrad(cfg.train, encoder.parameters(), n_train)

    def step(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"loss": self.wake(x), "sleep_loss": self.sleep(len(x))}

    def wake(self, x: torch.Tensor) -> torch.Tensor:
        """One decoder step on -mean log p(x|z), z ~ q(z|x) held fixed (the prior term is the weight decay)."""
        with torch.no_grad():
            z = reparameterize(*self.encoder(x), 1, self.generator)[0]  # [M, n_z]
        loss = -self.decoder.log_prob(x, z).mean()
        self.wake_opt.step(loss)
        return loss.detach()

    def sleep(self, m: int) -> torch.Tensor:
        """One encoder step on -mean log q(z|x) over m dreamed pairs (z, x)."""
        loss = -self.encoder.log_prob(*self.dream(m)).mean()
        self.sleep_opt.step(loss)
        return loss.detach()

    @torch.no_grad()
    def dream(self, m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, x) from the generative model: z ~ N(0, I), x ~ p(x|z) (Bernoulli or Gaussian samples)."""
        n_z = self.decoder.hidden.in_features
        z = torch.randn(m, n_z, generator=self.generator, device=self.generator.device)  # [M, n_z]
        return z, self.decoder.sample(z, self.generator)


class ReweightedWakeSleep(WakeSleep):
    """RWS (Bornschein & Bengio 2014): K samples from q, self-normalised importance weights
    w_k ∝ p(x, z_k) / q(z_k|x); the decoder and (wake-phase) encoder ascend sum_k w_k log p(x|z_k),
    sum_k w_k log q(z_k|x). `q_update` picks the encoder's phase: wake, sleep, or both."""

    def __init__(self, cfg: Config, encoder: nn.Module, decoder: nn.Module, n_train: int, generator: torch.Generator):
        super().__init__(cfg, encoder, decoder, n_train, generator)
        self.K, self.q_update = cfg.algorithm.K, cfg.algorithm.q_update.value

    def step(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        mu, log_var = self.encoder(x)  # [M, n_z]
        z = reparameterize(mu.detach(), log_var.detach(), self.K, self.generator)  # [K, M, n_z]
        log_px_z = self.decoder.log_prob(x, z)  # [K, M]
        log_qz_x = self.encoder.log_prob(z, x)  # [K, M]
        w = torch.softmax((log_px_z + standard_normal_log_prob(z) - log_qz_x).detach(), dim=0)  # [K, M]
        wake_loss = -(w * log_px_z).sum(0).mean()
        q_loss = -(w * log_qz_x).sum(0).mean() if self.q_update in ("wake", "both") else 0.0
        if self.q_update in ("sleep", "both"):
            q_loss = q_loss - self.encoder.log_prob(*self.dream(len(x))).mean()
        self.wake_opt.step(wake_loss)
        self.sleep_opt.step(q_loss)
        return {"loss": wake_loss.detach(), "q_loss": q_loss.detach()}
