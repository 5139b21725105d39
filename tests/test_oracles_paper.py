"""Oracles for the paper's constants and protocol: the numbers of PAPER.md written out here (not read back
from the code's defaults), the N(0, 0.01^2) init measured on built networks, the evaluation as a hand mean
over every datapoint, the training loop's minibatches (M random indices with replacement), and the
marginal-likelihood estimators on models whose answer is written out here or computed with scipy."""
import math

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import REPO, trained
from reproduce import algorithms, marginal_likelihood, models, train
from reproduce.config import AEVBConfig, Binarize, Config, DatasetConfig, Decoder, EvalConfig, FreySplit, LogConfig
from reproduce.cli import register
from reproduce.config import MCEMConfig, ModelConfig, TrainConfig, WandbMode
from reproduce.data import Data
from reproduce.evaluate import evaluate, splits
from reproduce.hmc import adapt_step_size
from reproduce.protocol import Algorithm

CONF = REPO / "conf"
register()

PAPER_STEP_SIZES = {0.01, 0.02, 0.1}  # sec. 5: Adagrad step size chosen from this set


def paper_config(*overrides: str) -> Config:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return OmegaConf.to_object(compose("config", overrides=list(overrides)))


def test_default_config_is_the_papers_mnist_setting():
    c = paper_config()
    assert (c.dataset.name.value, c.dataset.binarize, c.dataset.n_train) == ("mnist", Binarize.none, None)
    assert (c.model.n_hidden, c.model.decoder, c.model.init_std) == (500, Decoder.bernoulli, 0.01)
    assert (c.algorithm.name, c.algorithm.estimator.value, c.algorithm.L) == ("aevb", "B", 1)
    assert c.train.batch_size == 100 and c.train.lr in PAPER_STEP_SIZES and c.train.weight_prior
    assert c.eval.train_subset is None  # the bound of the whole training set


def test_frey_config_is_the_papers():
    c = paper_config("dataset=frey")
    assert (c.model.n_hidden, c.model.decoder, c.model.init_std) == (200, Decoder.gaussian, 0.01)
    assert c.train.lr in PAPER_STEP_SIZES and c.train.batch_size == 100
    assert c.dataset.frey_split is FreySplit.random  # the paper's test-above-train curves (PAPER.md, Data)


def test_mcem_and_marginal_likelihood_constants_are_the_papers():
    for m in (paper_config("algorithm=mcem").algorithm, MCEMConfig()):  # the YAML and the schema's defaults
        assert (m.n_leapfrog, m.target_accept, m.n_updates) == (10, 0.9, 5)  # appendix E
    e = EvalConfig()
    assert (e.hmc_samples, e.hmc_leapfrog, e.hmc_burnin, e.hmc_subset) == (50, 4, 5, 1000)  # appendix D, Fig. 3
    assert e.is_k_final == 5000  # the standard IWAE evaluation


@pytest.mark.parametrize("decoder, n_hidden", [(Decoder.bernoulli, 500), (Decoder.gaussian, 200)])
def test_every_parameter_is_drawn_from_n_0_001(decoder, n_hidden):
    """Sec. 5: 'parameters initialized by random sampling from N(0, 0.01^2)': weights and biases alike."""
    torch.manual_seed(0)
    n_x = 784 if decoder is Decoder.bernoulli else 560
    enc, dec = models.build(ModelConfig(n_z=20, n_hidden=n_hidden, decoder=decoder), n_x)
    for name, p in [*enc.named_parameters(), *dec.named_parameters()]:
        n = p.numel()
        assert abs(p.mean().item()) < 5 * 0.01 / n**0.5, name
        assert abs(p.std().item() / 0.01 - 1) < 5 / (2 * n) ** 0.5, (name, p.std().item())


class Fixed(torch.nn.Module):
    """q(z|x) with mu = x[:, :2], log sigma^2 = x[:, 2:4], and log p(x|z) = sum x that ignores z: the ELBO of
    every datapoint is then exact, sum x - KL(q || N(0, I)), whatever eps evaluation draws."""

    def forward(self, x):
        return x[:, :2], x[:, 2:4]

    def log_prob(self, x, z):
        return x.sum(-1) + 0 * z.sum(-1)


def test_the_bound_is_the_mean_over_every_datapoint_of_each_split():
    g = torch.Generator().manual_seed(0)
    data = Data(train=torch.randn(2503, 4, generator=g), test=torch.randn(1201, 4, generator=g))  # not multiples of a chunk
    cfg = Config(dataset=DatasetConfig(), model=ModelConfig(n_z=2), algorithm=AEVBConfig(),
                 eval=EvalConfig(is_k=0, is_k_final=0, active_units=False))
    net = Fixed()
    out = evaluate(trained(net, net), splits(data, cfg), cfg, n_seen=100, final=True)
    for split, x in (("train", data.train), ("test", data.test)):
        kl = 0.5 * (x[:, :2].square() + x[:, 2:4].exp() - 1 - x[:, 2:4]).sum(-1)
        assert out[(split, "lower_bound")] == pytest.approx((x.sum(-1) - kl).double().mean().item(), rel=1e-5)


class Recorder(Algorithm):
    """An algorithm that only records the minibatches the loop hands it."""

    def __init__(self, encoder, decoder):
        self.encoder, self.decoder, self.batches = encoder, decoder, []

    def step(self, x, idx):
        self.batches.append((x.clone(), idx.clone()))
        return {"loss": torch.zeros(())}

    def state_dict(self):
        return {}


def test_minibatches_are_m_random_indices_with_replacement(tmp_path, monkeypatch, one_thread):
    """Sec. 5 / PAPER.md: M = 100 datapoints drawn at random with replacement per step; 'training samples
    evaluated' counts M per step, so a budget of B samples is B / M steps."""
    cfg = Config(dataset=DatasetConfig(name=__import__("reproduce.config").config.Dataset.synthetic),
                 model=ModelConfig(n_z=2, n_hidden=8), algorithm=AEVBConfig(),
                 train=TrainConfig(budget=20_000, checkpoint_every=10**9),
                 eval=EvalConfig(is_k=0, is_k_final=0, active_units=False), log=LogConfig(wandb=WandbMode.disabled, progress=False))
    rec = []
    monkeypatch.setattr(algorithms, "build", lambda cfg, enc, dec, n, gen: rec.append(Recorder(enc, dec)) or rec[0])
    train.run(cfg, root=tmp_path)
    data = __import__("reproduce.data").data.load(cfg.dataset)
    batches = rec[0].batches
    assert len(batches) == 20_000 // 100
    idx = torch.stack([i for _, i in batches])  # [steps, M]
    assert idx.shape[1] == 100 and idx.min() >= 0 and idx.max() < len(data.train)
    assert all(torch.equal(x, data.train[i]) for x, i in batches)
    assert len(idx.unique()) == len(data.train)  # 20,000 draws from 500 points reach every one
    assert sum(len(i.unique()) < 100 for i in idx) > 150  # with replacement: repeats within most minibatches
    counts = torch.bincount(idx.flatten(), minlength=len(data.train)).double()
    assert counts.std() < 2 * counts.mean() ** 0.5  # uniform: Poisson-like counts of mean 40


class PriorProposal(torch.nn.Module):
    """q(z|x) = N(0, I) and log p(x|z) = sum x, independent of z: every importance weight p(x, z) / q(z|x) is
    exp(sum x), so the IWAE estimate is exactly sum x for any k and any chunking."""

    def forward(self, x):
        return torch.zeros(len(x), 2, dtype=x.dtype), torch.zeros(len(x), 2, dtype=x.dtype)

    def log_prob(self, x, z):
        return x.sum(-1) + 0 * z.sum(-1)


def test_importance_sampled_log_px_is_a_mean_of_weights_not_a_sum(float64):
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(0))
    net = PriorProposal()
    for max_elements in (None, 40):  # 40: chunks of both datapoints and samples
        est = marginal_likelihood.log_px_is(net, net, x, k=50, max_elements=max_elements, generator=torch.Generator().manual_seed(1))
        torch.testing.assert_close(est, x.sum(-1))


class Joint(torch.nn.Module):
    """log p(x|z) = log N(x; z, 1) per coordinate, so log p(x, z) is closed form in the test."""

    def log_prob(self, x, z):
        return torch.distributions.Normal(z, 1.0).log_prob(x).sum(-1)


def test_hmc_marginal_likelihood_fits_the_first_half_and_averages_over_the_second(float64):
    """Appendix D: fit q(z) to the first half of the L samples, log p(x) = -log (1/(L/2)) sum_{second half}
    q(z_l) / p(x, z_l). The density here is scipy's gaussian_kde (Scott's rule)."""
    scipy_stats = __import__("scipy.stats").stats
    g = torch.Generator().manual_seed(0)
    L, B = 40, 3
    x, z = torch.randn(B, 2, generator=g), torch.randn(L, B, 2, generator=g)
    est = marginal_likelihood.harmonic_mean_log_px(Joint(), x, z)
    for b in range(B):
        fit, ev = z[: L // 2, b].numpy(), z[L // 2 :, b].numpy()
        log_q = scipy_stats.gaussian_kde(fit.T).logpdf(ev.T)
        log_pxz = scipy_stats.norm(0, 1).logpdf(ev).sum(-1) + scipy_stats.norm(ev, 1).logpdf(x[b].numpy()).sum(-1)
        expected = -(__import__("scipy.special").special.logsumexp(log_q - log_pxz) - np.log(L // 2))
        assert est[b].item() == pytest.approx(expected, abs=1e-4)


def test_step_size_adaptation_moves_toward_the_target_acceptance():
    """log e <- log e + rate (a - target): an accepting chain's step grows, a rejecting chain's shrinks."""
    new = adapt_step_size(torch.tensor([[0.2], [0.2], [0.2]]), torch.tensor([1.0, 0.0, 0.9]), target=0.9, rate=0.5)
    torch.testing.assert_close(new, torch.tensor([[0.2 * math.exp(0.05)], [0.2 * math.exp(-0.45)], [0.2]]))


def test_frey_decoder_mean_is_a_sigmoid_in_the_unit_interval():
    """Appendix C.2 / PAPER.md: mean = sigmoid(.), so it lies in (0, 1) whatever the weights."""
    dec = models.GaussianDecoder(2, 4, 6)
    models.init_normal_(dec, 3.0)
    z = 5 * torch.randn(100, 2)
    a = dec.out(torch.tanh(dec.hidden(z)))[:, :6]  # the mean's pre-activation
    torch.testing.assert_close(dec.mean(z), 1 / (1 + torch.exp(-a)))
