"""Full variational Bayes over the decoder's parameters (paper appendix F; beyond the paper's experiments).

Appendix F: put a prior p(theta) = N(0, I) on the generative model's parameters and a variational posterior
q(theta) beside q(z|x), and maximise, with the same reparameterised estimator, the bound

    log p(X) >= E_q(theta)[ sum_i E_q(z|x_i)[log p(x_i|z, theta)] - KL(q(z|x_i) || p(z)) ] - KL(q(theta) || p(theta)),

reported per datapoint (divided by N): E_q[log p(x|z, theta)] - KL(q(z|x) || p(z)) - KL(q(theta) || p(theta)) / N.
The KL term replaces the MAP weight prior (AEVB's 1/N weight decay) on the decoder.

Choices where the paper is silent (config: FullVBConfig):
- q(theta) is a factorised Gaussian, one mean and one log-variance per decoder weight and bias. The means
  *are* the decoder module's parameters (initialised N(0, init_std^2) as every model), so `self.decoder`
  holds the posterior mean and the existing evaluation (lower_bound, marginal_ll_is, active_units) runs
  under theta = E_q[theta]. The log-variances start at `init_log_var`.
- One theta ~ q(theta) per minibatch, shared by its M datapoints (algorithm.theta_noise=minibatch, the
  default): it works for any decoder through torch.func.functional_call, at the cost of gradient noise that
  does not average over the minibatch. algorithm.theta_noise=local is the local reparameterisation trick
  (Kingma, Salimans & Welling 2015): each nn.Linear's output drawn per datapoint from the Gaussian it has under
  q(theta) given its input, N(x mu_W^T + mu_b, x^2 sigma_W^2^T + sigma_b^2); the same bound, lower variance.
- One Adagrad (the paper's) over encoder, means and log-variances, with no weight decay on the decoder's
  variational parameters; the encoder keeps AEVB's N(0, I) MAP prior (train.weight_prior), added to the loss
  as ||phi||^2 / (2N), which is the same gradient as AEVB's weight decay of 1/N.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call

from reproduce import marginal_likelihood
from reproduce.optim import Adagrad
from reproduce.config import Config, ThetaNoise
from reproduce.objectives import SGVB, gaussian_kl
from reproduce.protocol import Algorithm


class _LogProb(nn.Module):
    """decoder.log_prob as a module's forward, so that functional_call can run it with other weights."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        self.decoder = decoder

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decoder.log_prob(x, z)


class SampledDecoder:
    """The decoder module run with the weights `theta` (name -> tensor, as decoder.named_parameters())."""

    def __init__(self, log_prob: _LogProb, theta: dict[str, torch.Tensor]):
        self.module, self.theta = log_prob, {f"decoder.{k}": v for k, v in theta.items()}

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return functional_call(self.module, self.theta, (x, z))


class FullVB(Algorithm):
    """AEVB with q(theta) over the decoder (appendix F): one Adagrad step on minus the full variational bound."""

    saved = ("encoder", "decoder", "log_var", "opt")

    def __init__(self, cfg: Config, encoder: nn.Module, decoder: nn.Module, n_train: int, generator: torch.Generator):
        a = cfg.algorithm
        self.encoder, self.decoder, self.generator, self.n_train = encoder, decoder, generator, n_train
        self.estimator, self.L, self.n_z = SGVB[a.estimator], a.L, cfg.model.n_z
        self.eval_theta_samples, self.chunk, self.local = a.eval_theta_samples, cfg.eval.chunk, a.theta_noise is ThetaNoise.local
        self.encoder_prior = 0.5 / n_train if cfg.train.weight_prior else 0.0  # AEVB's MAP prior on phi
        self.mean = dict(decoder.named_parameters())  # q(theta) means: the decoder's own parameters
        self.log_var = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(torch.full_like(p, a.init_log_var))
                                         for k, p in self.mean.items()})
        self._log_prob = _LogProb(decoder)
        params = [*encoder.parameters(), *self.mean.values(), *self.log_var.values()]
        self.opt = Adagrad(params, cfg.train.lr, weight_decay=0.0, warmup=cfg.train.adagrad_warmup)  # priors: in the loss

    def log_vars(self) -> dict[str, torch.Tensor]:
        return {k: self.log_var[k.replace(".", "__")] for k in self.mean}

    def kl_theta(self) -> torch.Tensor:
        """KL(q(theta) || N(0, I)), summed over every decoder parameter (appendix B's formula per weight)."""
        lv = self.log_vars()
        return sum(gaussian_kl(m.flatten(), lv[k].flatten()) for k, m in self.mean.items())

    def sample_theta(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """theta = mean + sigma * eps, eps ~ N(0, I): one draw of every decoder parameter."""
        lv = self.log_vars()
        return {k: m + (0.5 * lv[k]).exp() * torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype)
                for k, m in self.mean.items()}

    def sampled_decoder(self, theta: dict[str, torch.Tensor]) -> SampledDecoder:
        return SampledDecoder(self._log_prob, theta)

    @contextmanager
    def local_noise(self, generator: torch.Generator | None = None):
        """The decoder with the local reparameterisation trick: while open, each nn.Linear's output y = x mu^T + b
        gains sqrt(x^2 sigma_W^2^T + sigma_b^2) * eps, eps ~ N(0, I) per datapoint and unit."""
        lv, names = self.log_vars(), {m: n for n, m in self.decoder.named_modules() if isinstance(m, nn.Linear)}
        covered = {f"{n}.{w}" for n in names.values() for w in ("weight", "bias")}
        if set(self.mean) - covered:
            raise ValueError(f"theta_noise=local: decoder parameters outside nn.Linear layers: {sorted(set(self.mean) - covered)}")

        def noise(layer: nn.Linear, args: tuple, y: torch.Tensor) -> torch.Tensor:
            n = names[layer]
            var = args[0].square() @ lv[f"{n}.weight"].exp().T + lv[f"{n}.bias"].exp()  # [..., n_out]
            return y + var.sqrt() * torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)

        handles = [layer.register_forward_hook(noise) for layer in names]
        try:
            yield self.decoder
        finally:
            for h in handles:
                h.remove()

    def bound(self, x: torch.Tensor, eps: torch.Tensor, decoder) -> tuple[torch.Tensor, torch.Tensor]:
        """The full variational bound per datapoint, averaged over x, with the decoder's weights drawn from
        q(theta) (`decoder`: a SampledDecoder, or the local-noise decoder), and its KL(q(theta) || p(theta)) / N
        term; eps [L, M, n_z] is q(z|x)'s noise."""
        terms = self.estimator(self.encoder, decoder, x, self.L, eps=eps)
        kl = self.kl_theta() / self.n_train
        return terms.elbo.mean() - kl, kl

    def step(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        eps = torch.randn((self.L, len(x), self.n_z), generator=self.generator, device=x.device)
        if self.local:
            with self.local_noise(self.generator) as decoder:
                bound, kl = self.bound(x, eps, decoder)
        else:
            bound, kl = self.bound(x, eps, self.sampled_decoder(self.sample_theta(self.generator)))
        loss = -bound
        if self.encoder_prior:  # N(0, I) MAP prior on the encoder, as AEVB's weight decay 1/N
            loss = loss + self.encoder_prior * sum(p.square().sum() for p in self.encoder.parameters())
        self.opt.step(loss)
        return {"loss": -bound.detach(), "kl_theta": kl.detach()}

    @torch.no_grad()
    def extra_metrics(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """full_vb_bound: the full variational bound per datapoint on x (averaged over eval_theta_samples draws of
        theta, one z per datapoint and draw, estimator B), including -KL(q(theta) || p(theta)) / N. The
        standard metrics (lower_bound, marginal_ll_is) are those of the decoder at the posterior mean of theta."""
        draws = [marginal_likelihood.elbo(self.encoder, self.sampled_decoder(self.sample_theta(generator)), x, self.chunk, generator).mean()
                 for _ in range(self.eval_theta_samples)]
        return {"full_vb_bound": (torch.stack(draws).mean() - self.kl_theta() / self.n_train).item()}

    @torch.no_grad()
    def log_px_predictive(self, x: torch.Tensor, draws: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The posterior predictive log E_q(theta)[p(x|theta)] per datapoint, [N]: IS log p(x|theta_s) (k samples of
        q(z|x)) for each of `draws` theta_s ~ q(theta), averaged in probability, log (1/S) sum_s p(x|theta_s)."""
        per_theta = torch.stack([marginal_likelihood.log_px_is(self.encoder, self.sampled_decoder(self.sample_theta(generator)),
                                                               x, k, generator=generator) for _ in range(draws)])  # [S, N]
        return per_theta.logsumexp(0) - math.log(draws)
