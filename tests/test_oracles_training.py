"""Oracles for what training does: each loss, gradient and update is recomputed by hand in the test (float64)
from the paper's formulas and reference distributions, never by another path through the same code.

Common oracle: one Adagrad step from a zero accumulator leaves sum g^2 = (grad + theta / N)^2, where grad is
the gradient of the per-datapoint loss written out here and theta / N is the N(0, I) parameter prior
(PAPER.md, Optimizer). Where an algorithm draws its noise from its generator, the test draws the same
numbers from a copy of that generator, in the order the algorithm documents (its docstrings)."""
import copy
import math

import pytest
import torch
from torch import distributions as D
from torch import nn

from baselines.mcem import MCEM
from baselines.wake_sleep import WakeSleep
from reproduce import algorithms, models, optim
from reproduce.config import AEVBConfig, Config, DatasetConfig, Decoder, Estimator, MCEMConfig, ModelConfig, TrainConfig
from reproduce.config import WakeSleepConfig
from reproduce.hmc import hmc_step

pytestmark = pytest.mark.usefixtures("float64", "one_thread")

N_TRAIN, LR = 37, 0.1  # N != M, so a 1/M or 1/N mix-up shows


def config(algorithm, n_z=2, decoder=Decoder.bernoulli):
    return Config(dataset=DatasetConfig(), model=ModelConfig(n_z=n_z, n_hidden=5, decoder=decoder),
                  algorithm=algorithm, train=TrainConfig(lr=LR))


def nets(cfg, n_x=6, std=0.5):
    """The paper's MLPs, at a larger init so that mu, sigma and the gradients are far from trivial."""
    enc, dec = models.build(cfg.model, n_x)
    models.init_normal_(enc, std)
    models.init_normal_(dec, std)
    return enc, dec


def copy_of(gen: torch.Generator) -> torch.Generator:
    g = torch.Generator()
    g.set_state(gen.get_state())
    return g


def snapshot(*modules):
    return [p.detach().clone() for m in modules for p in m.parameters()]


def log_px_z(dec, x, z):
    """log p(x|z) from torch.distributions on the decoder's outputs: Bernoulli(logits) or Normal(mu, sigma).
    Grey levels x in [0, 1] are Bernoulli means (PAPER.md, Data): sum x log y + (1 - x) log(1 - y)."""
    if isinstance(dec, models.BernoulliDecoder):
        return D.Bernoulli(logits=dec.logits(z), validate_args=False).log_prob(x).sum(-1)
    mu, log_var = dec(z)
    return D.Normal(mu, (0.5 * log_var).exp()).log_prob(x).sum(-1)


def kl_to_std_normal(mu, log_var):
    """KL(N(mu, sigma^2) || N(0, 1)) = 1/2 sum (mu^2 + sigma^2 - 1 - log sigma^2), appendix B."""
    return 0.5 * (mu.square() + log_var.exp() - 1 - log_var).sum(-1)


def assert_one_adagrad_step(opt, params, before, grads, n_train=N_TRAIN, lr=LR):
    """After one step from a zero accumulator: sum = (g + theta/N)^2 and theta moved by lr (g + theta/N) / |.|;
    grads: the hand loss's gradient, taken before the step (the optimizer updates theta in place)."""
    for p, p0, g in zip(params, before, grads):
        g = g + p0 / n_train
        torch.testing.assert_close(opt.opt.state[p]["sum"], g * g)
        torch.testing.assert_close(p.detach(), p0 - lr * g / (g.abs() + 1e-10))


@pytest.mark.parametrize("estimator", [Estimator.B, Estimator.A])
@pytest.mark.parametrize("decoder", [Decoder.bernoulli, Decoder.gaussian])
def test_aevb_step_minimises_minus_the_elbo_with_the_weight_prior(estimator, decoder):
    """AEVB (Algorithm 1) steps on -(1/M) sum_i [(1/L) sum_l log p(x_i|z_il) - KL_i] (eq. 10, B) or with the KL
    sampled as log q(z|x) - log p(z) (eq. 6, A), for encoder and decoder jointly, plus ||theta||^2 / (2N)."""
    L, M = 3, 4
    cfg = config(AEVBConfig(estimator=estimator, L=L), decoder=decoder)
    enc, dec = nets(cfg)
    gen = torch.Generator().manual_seed(5)
    alg = algorithms.build(cfg, enc, dec, N_TRAIN, gen)
    x = torch.rand(M, 6, generator=torch.Generator().manual_seed(1))
    eps = torch.randn((L, M, 2), generator=copy_of(gen))  # AEVB.step draws eps [L, M, n_z] from its generator
    params, before = [*enc.parameters(), *dec.parameters()], snapshot(enc, dec)
    mu, log_var = enc(x)
    z = mu + (0.5 * log_var).exp() * eps  # [L, M, n_z]
    if estimator is Estimator.B:
        elbo = log_px_z(dec, x, z).mean(0) - kl_to_std_normal(mu, log_var)
    else:
        q, prior = D.Normal(mu, (0.5 * log_var).exp()), D.Normal(0.0, 1.0)
        elbo = (log_px_z(dec, x, z) + prior.log_prob(z).sum(-1) - q.log_prob(z).sum(-1)).mean(0)
    loss = -elbo.mean()
    grads = torch.autograd.grad(loss, params)
    out = alg.step(x, torch.arange(M))
    torch.testing.assert_close(out["loss"], loss.detach())
    assert_one_adagrad_step(alg.opt, params, before, grads)


def test_weight_decay_is_one_over_n_for_every_algorithm():
    """The N(0, I) prior on theta for a per-datapoint loss is weight decay 1/N, N the training-set size."""
    for algorithm in (AEVBConfig(), WakeSleepConfig(), MCEMConfig()):
        cfg = config(algorithm)
        enc, dec = nets(cfg)
        alg = algorithms.build(cfg, enc, dec, 250, torch.Generator().manual_seed(0))
        opts = [v for v in vars(alg).values() if isinstance(v, optim.Adagrad)]
        assert opts and all(o.weight_decay == pytest.approx(1 / 250) for o in opts), algorithm.name
    cfg.train.weight_prior = False
    assert optim.adagrad(cfg.train, [nn.Parameter(torch.zeros(1))], 250).weight_decay == 0.0


def test_every_algorithm_follows_the_one_protocol_with_its_defaults():
    """Each registered algorithm is an Algorithm: one sample counted per datapoint and no metrics of its own unless
    it says otherwise (MCEM counts decoder gradients, full VB adds full_vb_bound)."""
    from reproduce.config import AlgorithmConfig
    from reproduce.protocol import Algorithm

    x = torch.rand(4, 6)  # nets(): n_x = 6
    for name, cls in algorithms.REGISTRY.items():
        cfg = config(AlgorithmConfig.by_name()[name]())
        alg = algorithms.build(cfg, *nets(cfg), 250, torch.Generator().manual_seed(0))
        assert isinstance(alg, cls) and isinstance(alg, Algorithm), name
        assert alg.count == (16 if name == "mcem" else 1), name
        assert set(alg.extra_metrics(x, torch.Generator().manual_seed(1))) == ({"full_vb_bound"} if name == "full_vb" else set()), name


def test_wake_steps_the_decoder_on_z_from_q_with_no_gradient_into_q():
    """Wake: z = mu(x) + sigma(x) eps, eps ~ N(0, I) (a draw from q(z|x), not from the prior and not its mean),
    one decoder step on -mean log p(x|z); the encoder gets no gradient."""
    cfg = config(WakeSleepConfig())
    enc, dec = nets(cfg)
    with torch.no_grad():
        enc.out.bias.copy_(torch.tensor([1.5, -2.0, -1.0, 0.7]))  # mu far from 0, sigma far from 1
    gen = torch.Generator().manual_seed(2)
    ws = WakeSleep(cfg, enc, dec, N_TRAIN, gen)
    x = torch.rand(4, 6, generator=torch.Generator().manual_seed(1))
    eps = torch.randn((1, 4, 2), generator=copy_of(gen))[0]  # [M, n_z]
    enc0, params, before = snapshot(enc), list(dec.parameters()), snapshot(dec)
    with torch.no_grad():
        mu, log_var = enc(x)
    z = mu + (0.5 * log_var).exp() * eps
    loss = -log_px_z(dec, x, z).mean()
    grads = torch.autograd.grad(loss, params)
    torch.testing.assert_close(ws.wake(x), loss.detach())
    assert_one_adagrad_step(ws.wake_opt, params, before, grads)
    assert all(torch.equal(p, p0) for p, p0 in zip(enc.parameters(), enc0))
    assert all(p.grad is None for p in enc.parameters()), "the wake phase sent a gradient into q"


@pytest.mark.parametrize("decoder", [Decoder.bernoulli, Decoder.gaussian])
def test_sleep_steps_the_encoder_on_dreamed_pairs(decoder):
    """Sleep: z ~ N(0, I), x ~ p(x|z) (a Bernoulli or Gaussian sample, not the mean), one encoder step on
    -mean log q(z|x); the decoder does not move."""
    cfg = config(WakeSleepConfig(), decoder=decoder)
    enc, dec = nets(cfg)
    gen = torch.Generator().manual_seed(3)
    ws = WakeSleep(cfg, enc, dec, N_TRAIN, gen)
    g = copy_of(gen)
    z = torch.randn((4, 2), generator=g)  # [M, n_z]
    with torch.no_grad():
        if decoder is Decoder.bernoulli:
            x = torch.bernoulli(torch.sigmoid(dec.logits(z)), generator=g)
        else:
            mean, log_var = dec(z)
            x = mean + (0.5 * log_var).exp() * torch.randn(mean.shape, generator=g)
    dec0, params, before = snapshot(dec), list(enc.parameters()), snapshot(enc)
    mu, log_var = enc(x)
    loss = -D.Normal(mu, (0.5 * log_var).exp()).log_prob(z).sum(-1).mean()
    grads = torch.autograd.grad(loss, params)
    torch.testing.assert_close(ws.sleep(4), loss.detach())
    assert_one_adagrad_step(ws.sleep_opt, params, before, grads)
    assert all(torch.equal(p, p0) for p, p0 in zip(dec.parameters(), dec0))


def test_warm_up_only_accumulates_each_phases_own_network():
    """train.adagrad_warmup (anglepy's warm-up; PAPER.md, Optimizer): the first steps only accumulate sum g^2.
    Wake-sleep has two optimizers, one per network; each accumulates (g + theta/N)^2 for the network its phase
    trains, and nothing moves."""
    cfg = config(WakeSleepConfig())
    cfg.train.adagrad_warmup = 1
    enc, dec = nets(cfg)
    ws = WakeSleep(cfg, enc, dec, N_TRAIN, torch.Generator().manual_seed(0))
    before = snapshot(enc, dec)
    ws.step(torch.rand(4, 6))
    assert all(torch.equal(p, p0) for p, p0 in zip([*enc.parameters(), *dec.parameters()], before))
    assert all(ws.wake_opt.opt.state[p]["sum"].min() > 0 for p in dec.parameters())
    assert all(ws.sleep_opt.opt.state[p]["sum"].min() > 0 for p in enc.parameters())


class Recording(models.BernoulliDecoder):
    """Records every z that log p(x|z) is evaluated at: HMC's start and leapfrog points, then the updates'."""

    def __init__(self, *a):
        super().__init__(*a)
        self.calls = []

    def log_prob(self, x, z):
        self.calls.append(z.detach().clone())
        return super().log_prob(x, z)


def mcem(n_updates=5, n_train=10, decoder=None, n_z=2):
    cfg = config(MCEMConfig(n_updates=n_updates), n_z=n_z)
    dec = decoder or Recording(n_z, 5, 6)
    if decoder is None:
        models.init_normal_(dec, 0.5)
    return MCEM(cfg, None, dec, n_train, torch.Generator().manual_seed(4)), dec


def test_mcem_chains_persist_per_datapoint_and_feed_the_decoder_updates():
    """Appendix E: one persistent chain per training point. A minibatch's transitions start from the states its
    points' chains were left in (by index, wherever the point sits in the minibatch), only those chains move,
    and the decoder updates use the new states."""
    alg, dec = mcem()
    x = torch.rand(10, 6, generator=torch.Generator().manual_seed(1))
    for idx in (torch.tensor([7, 2, 5]), torch.tensor([5, 9]), torch.tensor([2, 5, 7, 0])):
        chains, dec.calls = alg.z.clone(), []
        alg.step(x[idx], idx)
        torch.testing.assert_close(dec.calls[0], chains[idx])  # the transition starts at the stored states
        torch.testing.assert_close(dec.calls[-1], alg.z[idx])  # the updates use the states the chains are left in
        rest = torch.ones(10, dtype=torch.bool)
        rest[idx] = False
        assert torch.equal(alg.z[rest], chains[rest])  # the other chains wait
    assert not torch.equal(alg.z[[2, 5, 7]], torch.randn(3, 2, generator=torch.Generator().manual_seed(4)))


def test_mcem_makes_the_papers_five_decoder_updates_per_iteration():
    """Appendix E: '5 Adagrad weight updates' on each sample."""
    alg, dec = mcem()
    assert alg.n_updates == 5
    x, idx = torch.rand(3, 6), torch.tensor([0, 4, 8])
    for i in range(1, 3):
        dec.calls = []
        alg.step(x, idx)
        assert alg.opt.n_steps == 5 * i
        assert all(int(alg.opt.opt.state[p]["step"]) == 5 * i for p in dec.parameters())
        assert len(dec.calls) == 1 + 10 + 5  # start, 10 leapfrog points (appendix E), 5 updates


def test_mcem_decoder_update_is_a_weight_prior_step_on_minus_mean_log_p_x_given_z():
    alg, dec = mcem(n_updates=1)
    x, idx = torch.rand(3, 6, generator=torch.Generator().manual_seed(2)), torch.tensor([1, 3, 6])
    theta0 = copy.deepcopy(dec)  # the gradient is taken at the parameters before the step
    alg.step(x, idx)
    loss = -D.Bernoulli(logits=theta0.logits(dec.calls[-1]), validate_args=False).log_prob(x).sum(-1).mean()
    grads = torch.autograd.grad(loss, list(theta0.parameters()))
    for p, p0, g in zip(dec.parameters(), theta0.parameters(), grads):
        g = g + p0.detach() / 10
        torch.testing.assert_close(alg.opt.opt.state[p]["sum"], g * g)


class FlatInZ(nn.Module):
    """log p(x|z) that does not depend on z: the posterior is then the prior N(0, I) exactly."""

    def __init__(self, n_x=3):
        super().__init__()
        self.c = nn.Parameter(torch.zeros(n_x))

    def log_prob(self, x, z):
        return D.Normal(self.c, 1.0).log_prob(x).sum(-1) + 0 * z.sum(-1)


def test_mcem_targets_the_posterior_prior_included():
    """HMC on log p(z) + log p(x|z) keeps chains in N(0, I) when p(x|z) ignores z; on log p(x|z) alone the
    10 leapfrog steps would make a random walk (variance about 2 after one transition)."""
    n = 4000
    alg, _ = mcem(n_train=n, decoder=FlatInZ())
    idx = torch.arange(n)
    alg.step(torch.rand(n, 3), idx)
    assert (alg.z.var(0) - 1).abs().max() < 0.12 and alg.z.mean(0).abs().max() < 0.08, alg.z.var(0)


@pytest.mark.parametrize("n_leapfrog", [1, 3])
def test_hmc_transition_is_leapfrog_then_metropolis_by_hand(n_leapfrog):
    """Neal (2011): momentum v ~ N(0, I); leapfrog v += e/2 g, (z += e v, v += e g) ..., with a final half step;
    accept with probability min(1, exp(H0 - H1)), H = -log pi(z) + |v|^2 / 2. The test reads the leapfrog
    positions off the target (it records where it is evaluated), recovers v from the first one and recomputes
    the rest, the acceptance probability and the accept rate."""
    B, e = 20_000, 0.9
    scale = torch.tensor([1.0, 0.7])  # pi = N(0, diag scale^2)
    calls = []
    log_pi = lambda z: D.Normal(0.0, scale).log_prob(z).sum(-1)  # noqa: E731

    def recorded_log_pi(z):
        calls.append(z.detach().clone())
        return log_pi(z)

    grad = lambda z: -z / scale**2  # noqa: E731
    z0 = scale * torch.randn(B, 2, generator=torch.Generator().manual_seed(0))
    z_new, accept_prob = hmc_step(recorded_log_pi, z0, e, n_leapfrog, torch.Generator().manual_seed(1), jitter=0.0)
    assert len(calls) == n_leapfrog + 1
    torch.testing.assert_close(calls[0], z0)
    v0 = (calls[1] - z0) / e - 0.5 * e * grad(z0)  # z1 = z0 + e (v0 + e/2 g(z0))
    assert abs(v0.mean()) < 0.03 and (v0.var(0) - 1).abs().max() < 0.05  # v ~ N(0, I)
    z, v = z0, v0 + 0.5 * e * grad(z0)
    for k in range(n_leapfrog):
        z = z + e * v
        torch.testing.assert_close(calls[k + 1], z)
        v = v + (0.5 if k == n_leapfrog - 1 else 1.0) * e * grad(z)
    h0 = -log_pi(z0) + 0.5 * v0.square().sum(-1)
    h1 = -log_pi(z) + 0.5 * v.square().sum(-1)
    expected = (h0 - h1).clamp(max=0).exp()
    torch.testing.assert_close(accept_prob, expected)
    accepted, rejected = (z_new == calls[-1]).all(-1), (z_new == z0).all(-1)  # the proposal as computed
    assert (accepted | rejected).all() and accepted[expected == 1].all()
    p = expected.mean()
    assert 0.55 < p < 0.95, p  # room for an accept rule that is wrong to show
    assert abs(accepted.double().mean() - p) < 4 * math.sqrt(p * (1 - p) / B)
