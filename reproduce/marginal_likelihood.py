"""The marginal likelihood and its bounds over whole sets (the ELBO, IS log p(x), the paper's HMC estimator of
appendix D) and active units; under no_grad and in chunks. They take models, never an algorithm."""
from __future__ import annotations

import functools
import math
from typing import Iterator

import torch

from reproduce.hmc import adapt_step_size, hmc_step
from reproduce.models import LOG_2PI, activations, gaussian_log_prob, standard_normal_log_prob
from reproduce.objectives import gaussian_kl, reparameterize

ACTIVE = 0.01  # a latent unit is active where Var_x E_q[z_j|x] exceeds this (Burda et al. 2015)
EVAL_BYTES = 2**28  # memory budget of one evaluation chunk's tensors (256 MiB): wide models get fewer rows per chunk


def rows_per_chunk(floats_per_row: int, chunk: int, itemsize: int = 4) -> int:
    """At most `chunk` rows (speed), fewer where one chunk's tensors (floats_per_row each) would pass EVAL_BYTES."""
    return max(1, min(chunk, EVAL_BYTES // (itemsize * floats_per_row)))


def normal_chunks(n: int, n_z: int, rows: int, generator=None, device=None, dtype=None) -> Iterator[torch.Tensor]:
    """Standard normal [rows, n_z] draws for n rows in turn, without the memory of all of them; on the CPU they
    equal the slices of one torch.randn((n, n_z)) (whose normal_ fills blocks of 16 numbers, and redraws the last
    16 where n * n_z is not a multiple of 16: draws of multiples of 16, the last taking the tail, continue its
    stream), so that results do not depend on the chunking. On a GPU they do."""
    left, buf = n * n_z, torch.empty(0, device=device, dtype=dtype)
    for start in range(0, n, rows):
        need = min(rows, n - start) * n_z
        if need > len(buf):
            size = -(-(need - len(buf)) // 16) * 16
            size = left if left - size < 16 else size  # never leave a tail under 16 numbers for a last draw
            buf, left = torch.cat([buf, torch.randn(size, generator=generator, device=device, dtype=dtype)]), left - size
        yield buf[:need].view(-1, n_z)
        buf = buf[need:]


@torch.no_grad()
def elbo(encoder, decoder, x: torch.Tensor, chunk: int = 1000, generator=None) -> torch.Tensor:
    """Per-datapoint lower bound (estimator B, L = 1) of every row of x; [N, n_x] -> [N]."""
    return elbo_and_mean_var(encoder, decoder, x, chunk, generator)[0]


@torch.no_grad()
def elbo_and_mean_var(encoder, decoder, x: torch.Tensor, chunk: int = 1000, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The bound of every row of x and the variance over x of the encoder means (for active_units), in one pass
    over chunks of bounded memory; [N, n_x] -> [N], [n_z].

    The noise equals one draw for all of x (normal_chunks), so the result does not depend on `chunk` (speed
    only: on a CPU 1000 rows keep the activations in cache), which shrinks to fit EVAL_BYTES for wide models."""
    n_z = encoder(x[:1])[0].shape[-1]
    rows = rows_per_chunk(3 * activations(encoder, decoder) + 4 * n_z + 2 * x.shape[-1], chunk, x.element_size())
    out, sum_mu, sum_mu2 = [], 0.0, 0.0  # [n_z] sums in float64, so that no [N, n_z] tensor is kept
    for xc, ec in zip(x.split(rows), normal_chunks(len(x), n_z, rows, generator, x.device, x.dtype)):
        mu, log_var = encoder(xc)  # [B, n_z]
        z = reparameterize(mu, log_var, 1, eps=ec.unsqueeze(0))  # [1, B, n_z]
        out.append(decoder.log_prob(xc, z).mean(0) - gaussian_kl(mu, log_var))
        sum_mu, sum_mu2 = sum_mu + mu.sum(0, dtype=torch.float64), sum_mu2 + mu.double().square().sum(0)
    return torch.cat(out), sum_mu2 / len(x) - (sum_mu / len(x)).square()


def chunk_sizes(n: int, k: int, width: int, max_elements: int) -> tuple[int, int]:
    """Datapoints and samples per chunk so that one [k_chunk, B_chunk, width] tensor fits max_elements; width is
    the widest per sample: the decoder output n_x, or n_z where that is wider (z itself)."""
    b_chunk = max(1, min(n, max_elements // (k * width)))  # whole k per datapoint when it fits
    k_max = max(1, min(k, max_elements // (b_chunk * width)))
    return b_chunk, math.ceil(k / math.ceil(k / k_max))  # equal chunks of k, no small remainder


def default_max_elements(device: torch.device) -> int:
    """On a CPU a decoder output that stays in cache (2^16 to 2^18 measured fastest on MNIST); a GPU wants more."""
    return 2**25 if device.type == "cuda" else 2**17


def log_importance_weights(encoder, decoder, x: torch.Tensor, k: int, generator=None, eps=None) -> torch.Tensor:
    """log w = log p(x|z) + log p(z) - log q(z|x), z ~ q(z|x) (Burda et al. 2015, eq. 8); [B, n_x] -> [k, B]."""
    mu, log_var = encoder(x)  # [B, n_z]
    z = reparameterize(mu, log_var, k, generator, eps)  # [k, B, n_z]
    log_px_z, log_pz = decoder.log_prob(x, z), standard_normal_log_prob(z)  # [k, B] each
    return log_px_z + log_pz - gaussian_log_prob(z, mu, log_var)


def log_sum_w(encoder, decoder, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """log sum_i w_i over one chunk of samples, eps [k_chunk, B, n_z] drawn outside so that it compiles; -> [B]."""
    return log_importance_weights(encoder, decoder, x, len(eps), eps=eps).logsumexp(0)


@functools.cache
def compiled_log_sum_w():
    """log_sum_w through torch.compile, one fused kernel for the elementwise work around the decoder's matmuls."""
    return torch.compile(log_sum_w, dynamic=False)


def _log_px_is_chunk(encoder, decoder, x: torch.Tensor, n_z: int, k: int, k_chunk: int, generator=None,
                     compiled: bool = False) -> torch.Tensor:
    """log (1/k) sum_i w_i for one chunk of datapoints, streaming logsumexp over chunks of the k samples; -> [B]."""
    fn = compiled_log_sum_w() if compiled else log_sum_w
    log_sum = torch.full(x.shape[:1], -torch.inf, device=x.device, dtype=x.dtype)  # [B]
    for start in range(0, k, k_chunk):
        eps = torch.randn((min(k_chunk, k - start), len(x), n_z), generator=generator, device=x.device, dtype=x.dtype)
        log_sum = torch.logaddexp(log_sum, fn(encoder, decoder, x, eps))  # stable: no exp of an unshifted weight
    return log_sum - math.log(k)


@torch.no_grad()
def log_px_is(
    encoder, decoder, x: torch.Tensor, k: int = 5000, max_elements: int | None = None, generator=None, compiled: bool = False
) -> torch.Tensor:
    """Importance-sampled log p(x) with q(z|x) as proposal (the IWAE bound L_k, Burda et al. 2015); -> [N].

    E log (1/k) sum_i p(x, z_i) / q(z_i|x) lies between the ELBO (k = 1) and log p(x), rising with k;
    k = 5000 is the standard evaluation. Memory is bounded by max_elements of the decoder output.
    compiled: the inner chunk through torch.compile (eval.compile; a few seconds to compile, see README)."""
    max_elements = max_elements or default_max_elements(x.device)
    n_z = encoder(x[:1])[0].shape[-1]
    b_chunk, k_chunk = chunk_sizes(len(x), k, max(x.shape[-1], n_z), max_elements)
    return torch.cat([_log_px_is_chunk(encoder, decoder, xc, n_z, k, k_chunk, generator, compiled) for xc in x.split(b_chunk)])


def kde_log_prob(z_fit: torch.Tensor, z_eval: torch.Tensor, factor: float | None = None, jitter: float = 1e-6):
    """Gaussian KDE per datapoint as in scipy.stats.gaussian_kde (appendix D: q(z) fitted to the first half).

    Kernel covariance = factor^2 * sample covariance, factor = Scott's rule n^(-1 / (n_z + 4)) by default;
    jitter * I keeps it positive definite when a chain rejected every move. [L1, B, n_z], [L2, B, n_z] -> [L2, B]."""
    n_fit, _, n_z = z_fit.shape
    factor = n_fit ** (-1.0 / (n_z + 4)) if factor is None else factor
    centred = z_fit - z_fit.mean(0)  # [L1, B, n_z]
    cov = torch.einsum("lbi,lbj->bij", centred, centred) / max(n_fit - 1, 1)  # [B, n_z, n_z]
    eye = torch.eye(n_z, device=z_fit.device, dtype=z_fit.dtype)
    chol = torch.linalg.cholesky(factor**2 * cov + jitter * eye)  # [B, n_z, n_z]
    diff = (z_eval.unsqueeze(1) - z_fit).unsqueeze(-1)  # [L2, L1, B, n_z, 1]
    maha = torch.linalg.solve_triangular(chol, diff, upper=False).square().sum((-2, -1))  # [L2, L1, B]
    log_det = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # [B]
    log_kernel = -0.5 * (n_z * LOG_2PI + log_det + maha)  # [L2, L1, B]
    return log_kernel.logsumexp(1) - math.log(n_fit)  # [L2, B]


@torch.no_grad()
def prior_resample(decoder, x: torch.Tensor, n_z: int, k: int = 1000, max_elements: int | None = None, generator=None):
    """One draw per datapoint from sum_i w_i delta(z_i), z_i ~ p(z), w_i ∝ p(x|z_i): sampling-importance-resampling
    from the prior (Rubin 1988), by Gumbel-max over log w_i + G_i streamed over chunks of k; [N, n_x] -> [N, n_z].

    The HMC start for a model without encoder (MCEM, appendix E). A trained decoder's p(z|x) is narrow and
    multimodal: a chain started at a draw from p(z) stays in the mode it first falls into, and the estimate of
    appendix D is then the mass of that mode, far below log p(x) (Fig. 3 MCEM went down with training)."""
    max_elements = max_elements or default_max_elements(x.device)
    b_chunk, k_chunk = chunk_sizes(len(x), k, max(x.shape[-1], n_z), max_elements)
    out = []
    for xc in x.split(b_chunk):
        best = torch.full(xc.shape[:1], -torch.inf, device=x.device, dtype=x.dtype)  # [B] max of log w + G so far
        z_best = torch.zeros((len(xc), n_z), device=x.device, dtype=x.dtype)  # [B, n_z]
        for start in range(0, k, k_chunk):
            z = torch.randn((min(k_chunk, k - start), len(xc), n_z), generator=generator, device=x.device, dtype=x.dtype)
            gumbel = -torch.empty(z.shape[:-1], device=x.device, dtype=x.dtype).exponential_(generator=generator).log()
            key, i = (decoder.log_prob(xc, z) + gumbel).max(0)  # [B] each
            better = key > best
            best = torch.where(better, key, best)
            z_best = torch.where(better.unsqueeze(-1), z[i, torch.arange(len(xc), device=x.device)], z_best)
        out.append(z_best)
    return torch.cat(out)


def hmc_posterior(decoder, x, z, step_size, n_samples, n_leapfrog, n_burnin, target, rate, generator=None):
    """HMC samples of p(z|x) ∝ p(z) p(x|z), one chain per datapoint, from z [B, n_z] with step sizes [B, 1];
    the step size is adapted toward `target` acceptance in burn-in only, so the kept chain is exact (app. D)."""
    log_pxz = lambda z: standard_normal_log_prob(z) + decoder.log_prob(x, z)  # noqa: E731  [B]
    for _ in range(n_burnin):
        z, accept_prob = hmc_step(log_pxz, z, step_size, n_leapfrog, generator)
        step_size = adapt_step_size(step_size, accept_prob, target, rate)
    samples = []
    for _ in range(n_samples):
        z, _ = hmc_step(log_pxz, z, step_size, n_leapfrog, generator)
        samples.append(z)
    return torch.stack(samples)  # [L, B, n_z]


def harmonic_mean_log_px(decoder, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x) = -log (1/L2) sum_l q(z_l) / p(x, z_l), q fitted to the first half of z (appendix D); -> [B]."""
    z_fit, z_eval = z[: len(z) // 2], z[len(z) // 2 :]  # [L1, B, n_z], [L2, B, n_z]
    log_pxz = standard_normal_log_prob(z_eval) + decoder.log_prob(x, z_eval)  # [L2, B]
    log_ratio = kde_log_prob(z_fit, z_eval) - log_pxz  # [L2, B]
    return -(log_ratio.logsumexp(0) - math.log(len(z_eval)))


@torch.no_grad()
def log_px_hmc(
    decoder,
    x: torch.Tensor,
    n_z: int,
    n_samples: int = 50,
    n_leapfrog: int = 4,
    n_burnin: int = 5,
    step_size: float | torch.Tensor = 0.1,
    target: float = 0.9,
    rate: float = 0.5,
    z_init: torch.Tensor | None = None,
    chunk: int = 1000,
    generator=None,
) -> torch.Tensor:
    """The paper's HMC marginal-likelihood estimator (appendix D, Fig. 3); [N, n_x] -> [N].

    Defaults follow Fig. 3: 50 samples of 4 leapfrog steps after 5 burn-in steps; reliable for n_z < 5.
    Chains start at z_init [N, n_z] (the encoder mean, or prior_resample without encoder) or at a draw from
    p(z), which a multimodal posterior can trap in a minor mode (see prior_resample). The initial step size
    (a float or per chain [N, 1], e.g. the encoder's smallest sigma) is a **choice**: the paper is silent,
    and 5 burn-in steps move it by at most exp(5 * rate * (1 - target)) upward. At most `chunk` chains at once,
    fewer where the density fit's [L/2, L/2, B, n_z] tensors would pass EVAL_BYTES."""
    half = n_samples // 2
    chunk = rows_per_chunk(3 * half * (n_samples - half) * n_z + n_samples * n_z + 3 * activations(decoder), chunk, x.element_size())
    if z_init is None:
        z_init = torch.randn((len(x), n_z), generator=generator, device=x.device, dtype=x.dtype)  # [N, n_z]
    step_size = torch.as_tensor(step_size, device=x.device, dtype=x.dtype).expand(len(x), 1)  # [N, 1]
    out = []
    for xc, zc, sc in zip(x.split(chunk), z_init.split(chunk), step_size.split(chunk)):
        z = hmc_posterior(decoder, xc, zc, sc, n_samples, n_leapfrog, n_burnin, target, rate, generator)
        out.append(harmonic_mean_log_px(decoder, xc, z))
    return torch.cat(out)


def active_units(mu_var: torch.Tensor, threshold: float = ACTIVE) -> int:
    """Number of active latent units, A_j = Var_x E_q[z_j|x] > threshold (Burda et al. 2015, sec. 5.2),
    from the variance over a set of the encoder means (elbo_and_mean_var returns it); mu_var [n_z]."""
    return int((mu_var > threshold).sum())
