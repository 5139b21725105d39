"""The HMC log p(x) of a model without encoder (MCEM, Fig. 3) on a bimodal posterior with exact log p(x)."""
import math

import pytest
import torch

from conftest import trained
from reproduce.config import Config, DatasetConfig, EvalConfig, MCEMConfig, ModelConfig
from reproduce.marginal_likelihood import log_px_hmc, prior_resample
from reproduce.evaluate import evaluate
from reproduce.models import gaussian_log_prob

pytestmark = pytest.mark.usefixtures("one_thread")


class TwoModes(torch.nn.Module):
    """p(x|z) = sum_j a_j N(z; c_j, s^2 I), the same for every x: a narrow major mode at c_1 = (d, 0) and a
    minor one at the prior's centre holding exp(log_ratio) of its posterior mass, as a trained MCEM decoder's
    p(z|x) with modes that 4 leapfrog steps never cross. Most draws from p(z) fall into the minor mode."""

    def __init__(self, s=0.2, d=2.5, log_ratio=-7.0):
        super().__init__()
        self.c = torch.tensor([[d, 0.0], [0.0, 0.0]])  # [2, n_z]
        self.log_a = torch.tensor([0.0, log_ratio - d**2 / (2 * (1 + s**2))])  # so that p(c_2|x) / p(c_1|x) = e^log_ratio
        self.s = s

    def log_prob(self, x, z):  # z [..., B, n_z] -> [..., B]
        log_var = torch.tensor(2 * math.log(self.s))
        modes = [a + gaussian_log_prob(z, c, log_var) for a, c in zip(self.log_a, self.c)]
        return torch.stack(modes).logsumexp(0) + 0 * x[..., 0]

    def log_px(self):  # exact: sum_j a_j N(c_j; 0, (1 + s^2) I)
        log_var = torch.tensor(math.log(1 + self.s**2))
        return torch.stack([a + gaussian_log_prob(c, torch.zeros(2), log_var) for a, c in zip(self.log_a, self.c)]).logsumexp(0)


def test_prior_resample_lands_in_the_major_mode():
    dec, x = TwoModes(), torch.zeros(300, 1)
    z = prior_resample(dec, x, n_z=2, k=1000, generator=torch.Generator().manual_seed(0))  # [300, 2]
    assert z.shape == (300, 2)
    assert ((z - dec.c[0]).norm(dim=-1) < 1.0).float().mean() > 0.97  # posterior mass there: 1 - e^-7


def test_evaluate_hmc_without_encoder_recovers_log_px():
    """evaluate() once started MCEM's chains at p(z): 86% of them stayed in the minor mode, and the estimate
    was log p(x) - 6 (the Fig. 3 MCEM curve fell with training while prior IS rose)."""
    dec, x = TwoModes(), torch.zeros(200, 1)
    cfg = Config(dataset=DatasetConfig(), model=ModelConfig(n_z=2), algorithm=MCEMConfig(),
                 eval=EvalConfig(hmc=True, is_k=0, active_units=False))
    est = evaluate(trained(None, dec), {"train": x}, cfg, n_seen=0, final=False)
    assert abs(est[("train", "marginal_ll_hmc")] - dec.log_px().item()) < 0.3  # seen: 0.02
    # the failure it guards against: chains from the prior, however long the burn-in
    trapped = log_px_hmc(dec, x, n_z=2, n_burnin=205, generator=torch.Generator().manual_seed(0))
    assert trapped.mean() < dec.log_px() - 3


def test_is_on_the_test_split_only():
    """eval.is_train=false (budget=cpu_1e7): IS log p(x) on the test split, the bound on both."""
    from reproduce.config import AEVBConfig
    from reproduce.models import build

    enc, dec = build(ModelConfig(n_z=2, n_hidden=8), n_x=6)
    sets = {"train": torch.rand(20, 6), "test": torch.rand(10, 6)}
    keys = {}
    for is_train in (True, False):
        cfg = Config(dataset=DatasetConfig(), model=ModelConfig(n_z=2), algorithm=AEVBConfig(),
                     eval=EvalConfig(is_k=5, is_train=is_train, active_units=False))
        keys[is_train] = set(evaluate(trained(enc, dec), sets, cfg, n_seen=0, final=False))
    assert keys[True] == {(s, m) for s in ("train", "test") for m in ("lower_bound", "marginal_ll_is")}
    assert keys[False] == keys[True] - {("train", "marginal_ll_is")}
