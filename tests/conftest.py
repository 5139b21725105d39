import os
import sys
from pathlib import Path

import math

import pytest
import torch
from torch import nn

from reproduce.models import gaussian_log_prob

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

# Read the pre-seeded data beside the checkout (no download) unless the user points elsewhere.
if SHARED_DATA.exists():
    os.environ.setdefault("REPRODUCE_DATA", str(SHARED_DATA))
os.environ.setdefault("WANDB_SILENT", "true")
# Subprocess jobs (python -m reproduce) import this checkout's code, whichever checkout pip installed.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def float64():
    """Closed-form tests in double precision, without leaking the default dtype into other tests."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.fixture
def one_thread():
    """Tiny tensors: a second thread only adds OpenMP barriers, which stall for ms on a shared 2-core machine."""
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def needs_data(*names):
    root = Path(os.environ.get("REPRODUCE_DATA", SHARED_DATA))
    missing = [n for n in names if not (root / n).exists()]
    return pytest.mark.skipif(bool(missing), reason=f"data not found under {root}: {missing}")


# GPU tests: skipped where torch sees no CUDA device, unless REPRODUCE_TEST_DEVICE=cuda (set by
# reproduce/bench/gpu_check.sh) asks for them, so that a GPU check cannot pass by skipping them.
needs_cuda = pytest.mark.skipif(os.environ.get("REPRODUCE_TEST_DEVICE") != "cuda" and not torch.cuda.is_available(),
                                reason="no CUDA device (REPRODUCE_TEST_DEVICE=cuda makes this a failure)")


def reproduce_cmd(tmp: Path, *overrides: str) -> list[str]:
    """`python -m reproduce` with every output under tmp, W&B off and no progress bar; later overrides win."""
    flags = [o for o in overrides if o.startswith("-")]  # (-m) before the overrides, as argparse wants
    overrides = tuple(o for o in overrides if not o.startswith("-"))
    return [sys.executable, "-m", "reproduce", *flags, f"log.results_dir={tmp}/results", f"log.checkpoint_dir={tmp}/ckpt",
            f"hydra.run.dir={tmp}/out", f"hydra.sweep.dir={tmp}/multirun", "log.wandb=disabled", "log.progress=false",
            *overrides]


class LinearGaussian(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(W z + b, sigma^2 I), W with orthogonal columns scaled by `scales`, so that
    log p(x), p(z|x) (diagonal) and the ELBO of any Gaussian q are closed forms. A decoder (log_prob, sample)."""

    def __init__(self, n_z=2, n_x=12, sigma=0.5, scales=(2.0, 1.0), seed=3, random_b=False):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(n_x, n_z, generator=g))
        self.hidden = nn.Linear(n_z, 1)  # only for n_z discovery, as the MLP decoders have
        self.W = nn.Parameter(q * torch.as_tensor(scales, dtype=q.dtype))  # [n_x, n_z], W^T W diagonal
        self.b = nn.Parameter(torch.randn(n_x, generator=g) if random_b else torch.zeros(n_x))
        self.sigma = sigma

    def log_prob(self, x, z):  # log p(x|z); z [..., B, n_z] -> [..., B]
        return gaussian_log_prob(x, z @ self.W.T + self.b, torch.full_like(x, 2 * math.log(self.sigma)))

    def sample(self, z, generator=None):  # x ~ p(x|z)
        mean = z @ self.W.T + self.b
        return mean + self.sigma * torch.randn(mean.shape, generator=generator)

    @torch.no_grad()
    def sample_data(self, n, generator):  # x ~ p(x)
        return self.sample(torch.randn(n, self.W.shape[1], generator=generator), generator)

    def log_px(self, x):
        """Exact log p(x) = log N(x; b, W W^T + sigma^2 I)."""
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(len(self.b))
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)

    def posterior(self, x):
        """Exact p(z|x): precision I + W^T W / sigma^2 (diagonal here), mean Sigma W^T (x - b) / sigma^2."""
        prec = 1 + (self.W**2).sum(0) / self.sigma**2  # [n_z]
        return ((x - self.b) @ self.W / self.sigma**2) / prec, -prec.log().expand(len(x), -1)

    def elbo(self, x, mu, log_var):
        """Analytic E_q log p(x|z) - KL(q || p) for q = N(mu, diag exp(log_var))."""
        from reproduce.objectives import gaussian_kl

        log_px_z = self.log_prob(x, mu) - 0.5 * (self.W.square().sum(0) * log_var.exp()).sum(-1) / self.sigma**2
        return log_px_z - gaussian_kl(mu, log_var)


def trained(encoder: nn.Module | None, decoder: nn.Module):
    """A fixed encoder and decoder behind the algorithm protocol, for evaluate()."""
    from reproduce.protocol import Algorithm

    algorithm = Algorithm()
    algorithm.encoder, algorithm.decoder = encoder, decoder
    return algorithm
