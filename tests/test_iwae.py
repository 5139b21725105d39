"""IWAE (Burda et al. 2015): the K-sample bound against torch.distributions and the paper's estimator A, its
order in K up to the exact log p(x), training at K = 1 equal to AEVB's, the config check and a run from the CLI."""
import math
import subprocess

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from torch.distributions import Bernoulli, Independent, Normal

from baselines.iwae import IWAE, iwae_bound
from conftest import LinearGaussian, reproduce_cmd
from reproduce.algorithms import AEVB
from reproduce.config import AEVBConfig, Config, DatasetConfig, Estimator, IWAEConfig, ModelConfig, TrainConfig
from reproduce.models import GaussianEncoder, build
from reproduce.objectives import sgvb_a


def tiny(n_x=6, n_z=2):
    return build(ModelConfig(n_z=n_z, n_hidden=5, init_std=0.5), n_x)


def test_bound_equals_a_hand_computation_with_torch_distributions(float64, one_thread):
    encoder, decoder = tiny()
    x, eps = torch.rand(4, 6).bernoulli(), torch.randn(5, 4, 2)  # K = 5
    mu, log_var = encoder(x)
    q = Independent(Normal(mu, (0.5 * log_var).exp()), 1)
    z = mu + (0.5 * log_var).exp() * eps  # [K, B, n_z]
    log_w = (Independent(Bernoulli(logits=decoder.logits(z)), 1).log_prob(x)
             + Independent(Normal(torch.zeros(2), torch.ones(2)), 1).log_prob(z) - q.log_prob(z))  # [K, B]
    expected = torch.logsumexp(log_w, 0) - math.log(5)
    torch.testing.assert_close(iwae_bound(encoder, decoder, x, eps), expected)


def test_one_sample_bound_is_estimator_a_on_the_same_eps(float64, one_thread):
    encoder, decoder = tiny()
    x, eps = torch.rand(8, 6).bernoulli(), torch.randn(1, 8, 2)
    torch.testing.assert_close(iwae_bound(encoder, decoder, x, eps), sgvb_a(encoder, decoder, x, 1, eps=eps).elbo)


def test_bound_rises_with_k_toward_the_exact_log_px(float64, one_thread):
    torch.manual_seed(0)
    decoder, encoder = LinearGaussian(), GaussianEncoder(12, 8, 2)  # an untrained q: a loose bound at K = 1
    x = decoder.sample_data(20, torch.Generator().manual_seed(1))
    with torch.no_grad():
        xs = x.repeat(200, 1)  # E[L_K] over 200 draws of eps per datapoint
        means = [iwae_bound(encoder, decoder, xs, torch.randn(k, len(xs), 2)).mean().item() for k in (1, 5, 50)]
        log_px = decoder.log_px(x).mean().item()
    assert means[0] < means[1] - 0.5 < means[2] - 1.0 and means[2] < log_px + 0.05, (means, log_px)


def config(algorithm) -> Config:
    return Config(dataset=DatasetConfig(), model=ModelConfig(n_z=2, n_hidden=5), algorithm=algorithm, train=TrainConfig(lr=0.05))


def test_training_with_one_sample_is_aevb_with_estimator_a(one_thread):
    runs = []
    for cls, algorithm in ((IWAE, IWAEConfig(K=1)), (AEVB, AEVBConfig(estimator=Estimator.A))):
        torch.manual_seed(0)
        encoder, decoder = tiny()  # the same initial weights for both
        run = cls(config(algorithm), encoder, decoder, 1000, torch.Generator().manual_seed(0))
        x = torch.rand(10, 6, generator=torch.Generator().manual_seed(2)).bernoulli()
        losses = [run.step(x)["loss"] for _ in range(3)]
        runs.append((losses, [p.detach() for p in [*encoder.parameters(), *decoder.parameters()]]))
    (iwae_losses, iwae_params), (aevb_losses, aevb_params) = runs
    torch.testing.assert_close(iwae_losses, aevb_losses)
    torch.testing.assert_close(iwae_params, aevb_params)


def test_k_below_one_fails_naming_the_field():
    with pytest.raises(ValueError, match=r"algorithm.K=0 is invalid: must be >= 1"):
        IWAEConfig(K=0)


def test_a_run_from_the_command_line(tmp_path):
    """`algorithm=iwae algorithm.K=3` composes through Hydra, trains, and writes the usual tidy rows."""
    cmd = reproduce_cmd(tmp_path, "dataset=synthetic", "algorithm=iwae", "algorithm.K=3", "budget=smoke", "train.budget=5000",
                        "log.sweep=iwae", "train.threads=1")
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    (parquet,) = (tmp_path / "results" / "iwae").glob("*.parquet")
    df = pd.read_parquet(parquet)
    assert set(df.algorithm) == {"iwae"} and df.n_seen.max() == 5000
    bound = df[(df.metric == "lower_bound") & (df.split == "train")].sort_values("n_seen").value
    assert bound.iloc[-1] > bound.iloc[0] + 3  # it learned
    stored = OmegaConf.load(parquet.with_suffix(".yaml")).config.algorithm
    assert (stored.name, stored.K) == ("iwae", 3)
