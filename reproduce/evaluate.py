"""What is measured when: the evaluation schedule and the metrics of each evaluation (no_grad)."""
from __future__ import annotations

import math

import torch

from reproduce import marginal_likelihood
from reproduce.config import Config
from reproduce.data import Data
from reproduce.protocol import Algorithm


def schedule(cfg: Config) -> list[int]:
    """Samples-seen points to evaluate at, multiples of M ending at the budget: log-spaced from
    eval.start with eval.per_decade points per decade (Fig. 2), or every eval.every samples (Fig. 3)."""
    M, budget, start = cfg.train.batch_size, cfg.train.budget, min(cfg.eval.start, cfg.train.budget)
    if cfg.eval.every:
        points = set(range(start, budget + 1, cfg.eval.every))
    else:
        n = math.floor(cfg.eval.per_decade * math.log10(budget / start) + 1e-9)
        points = {start * 10 ** (i / cfg.eval.per_decade) for i in range(n + 1)}
    return sorted({math.ceil(p / M) * M for p in points | {budget}})


def splits(data: Data, cfg: Config) -> dict[str, torch.Tensor]:
    """The evaluation sets: the test set and the training set (or its first eval.train_subset points);
    under dynamic binarization one fixed seeded binarization of each."""
    train = data.train[: cfg.eval.train_subset] if cfg.eval.train_subset else data.train
    out = {"train": train, "test": data.test}
    if data.binarize_dynamic:
        g = torch.Generator(cfg.device).manual_seed(cfg.dataset.split_seed)
        out = {k: torch.bernoulli(v, generator=g) for k, v in out.items()}
    return out


@torch.no_grad()
def evaluate(algorithm: Algorithm, sets: dict[str, torch.Tensor], cfg: Config, n_seen: int, final: bool) -> dict[tuple[str, str], float]:
    """Every configured metric on every split. Its own seeded noise, so evaluation never shifts training's
    RNG; metrics that need an encoder are skipped for algorithms without one (MCEM); an algorithm's own
    metrics come from its extra_metrics (full_vb: full_vb_bound)."""
    g = torch.Generator(cfg.device).manual_seed(cfg.seed * 1_000_003 + n_seen)
    e, enc, dec = cfg.eval, algorithm.encoder, algorithm.decoder
    is_k = e.is_k_final if final else e.is_k
    out = {}
    for split, x in sets.items():
        if enc is not None:
            lower_bound, mu_var = marginal_likelihood.elbo_and_mean_var(enc, dec, x, e.chunk, g)  # [N], [n_z]: one pass
            out[(split, "lower_bound")] = lower_bound.mean().item()
            if is_k and (split != "train" or e.is_train):
                out[(split, "marginal_ll_is")] = marginal_likelihood.log_px_is(enc, dec, x[: e.is_subset], is_k, generator=g, compiled=e.compile).mean().item()
            if e.active_units:
                out[(split, "active_units")] = float(marginal_likelihood.active_units(mu_var))
        if e.hmc and cfg.model.n_z <= e.hmc_max_n_z:
            xs = x[: e.hmc_subset]
            # chains start at the encoder mean where there is one, else at a prior draw resampled by p(x|z)
            # (a plain prior draw sticks in minor posterior modes) with a longer burn-in
            if enc is not None:
                z0, burnin = enc(xs)[0], e.hmc_burnin
            else:
                z0 = marginal_likelihood.prior_resample(dec, xs, cfg.model.n_z, e.hmc_prior_k, generator=g)
                burnin = e.hmc_burnin + e.hmc_prior_burnin
            out[(split, "marginal_ll_hmc")] = marginal_likelihood.log_px_hmc(
                dec, xs, cfg.model.n_z, e.hmc_samples, e.hmc_leapfrog, burnin, z_init=z0, generator=g).mean().item()
        out.update({(split, k): v for k, v in algorithm.extra_metrics(x, g).items()})
    return out
