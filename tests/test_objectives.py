"""Estimators and likelihoods against closed forms and torch.distributions (float64, seeded)."""
import pytest
import torch
from torch import distributions as D

from reproduce.models import BernoulliDecoder, GaussianDecoder, GaussianEncoder, init_normal_, softplus
from reproduce.objectives import gaussian_kl, reparameterize, sgvb_a, sgvb_b

pytestmark = pytest.mark.usefixtures("float64")


def models(n_x=6, n_h=8, n_z=3, decoder=BernoulliDecoder):
    enc, dec = GaussianEncoder(n_x, n_h, n_z), decoder(n_z, n_h, n_x)
    init_normal_(enc, 0.5)
    init_normal_(dec, 0.5)
    return enc, dec


def test_analytic_kl_matches_monte_carlo():
    mu, log_var = torch.randn(4, 3), torch.randn(4, 3)
    z = reparameterize(mu, log_var, 200_000)  # [L, 4, 3]
    q, p = D.Normal(mu, (0.5 * log_var).exp()), D.Normal(0.0, 1.0)
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    torch.testing.assert_close(gaussian_kl(mu, log_var), mc, atol=0.02, rtol=0.01)
    torch.testing.assert_close(gaussian_kl(mu, log_var), D.kl_divergence(q, p).sum(-1))


def test_sgvb_a_mean_matches_sgvb_b():
    enc, dec = models()
    x = torch.rand(5, 6)
    a = sgvb_a(enc, dec, x, L=100_000).elbo
    b = sgvb_b(enc, dec, x, L=100_000).elbo
    torch.testing.assert_close(a, b, atol=0.03, rtol=0)
    # and the two differ per draw: A samples the KL, so it has more variance than B
    a1 = torch.stack([sgvb_a(enc, dec, x).elbo for _ in range(200)])
    b1 = torch.stack([sgvb_b(enc, dec, x).elbo for _ in range(200)])
    assert (a1.var(0) > b1.var(0)).all()


def test_bernoulli_log_prob_matches_torch_distributions():
    _, dec = models()
    z, x = torch.randn(2, 5, 3), (torch.rand(5, 6) < 0.5).double()
    expected = D.Bernoulli(logits=dec.logits(z)).log_prob(x).sum(-1)  # [2, 5]
    torch.testing.assert_close(dec.log_prob(x, z), expected)


def test_gaussian_log_prob_matches_torch_distributions():
    _, dec = models(decoder=GaussianDecoder)
    z, x = torch.randn(2, 5, 3), torch.rand(5, 6)
    mu, log_var = dec(z)
    assert ((mu > 0) & (mu < 1)).all()
    expected = D.Normal(mu, (0.5 * log_var).exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(dec.log_prob(x, z), expected)


def test_encoder_log_prob_matches_torch_distributions():
    enc, _ = models()
    x, z = torch.rand(5, 6), torch.randn(5, 3)
    mu, log_var = enc(x)
    torch.testing.assert_close(enc.log_prob(z, x), D.Normal(mu, (0.5 * log_var).exp()).log_prob(z).sum(-1))


class Bound(torch.nn.Module):
    def __init__(self, enc, dec):
        super().__init__()
        self.enc, self.dec = enc, dec

    def forward(self, x):
        g = torch.Generator().manual_seed(1)  # the same eps on every call
        return sgvb_b(self.enc, self.dec, x, L=2, generator=g).elbo


def test_gradcheck_of_sgvb_b():
    bound = Bound(*models(n_x=4, n_h=3, n_z=2))
    names = [n for n, _ in bound.named_parameters()]
    x = torch.rand(3, 4)
    f = lambda *ps: torch.func.functional_call(bound, dict(zip(names, ps)), (x,))  # noqa: E731
    assert torch.autograd.gradcheck(f, tuple(p.detach().requires_grad_() for p in bound.parameters()))


def test_gaussian_decoder_log_var_floor():
    dec = GaussianDecoder(2, 3, 4, min_log_var=-5.0)
    with torch.no_grad():
        dec.out.bias[4:] = -100.0
    assert (dec(torch.zeros(1, 2))[1] >= -5.0).all()


def test_gaussian_decoder_bias_log_var_is_one_learned_value_per_pixel():
    """model.log_var=bias: log p(x|z) is N(x; sigmoid(W tanh(.) + b), exp(floored bias)), the same variance for
    every z (oracle: torch.distributions.Normal), and the bias gets the gradient of every pixel's density."""
    from reproduce.config import LogVar
    dec = GaussianDecoder(2, 3, 4, min_log_var=-5.0, log_var=LogVar.bias)
    with torch.no_grad():
        dec.log_var_bias.copy_(torch.tensor([-1.0, 0.0, 0.5, -7.0]))
    z, x = torch.randn(6, 2), torch.rand(6, 4)
    mu = torch.sigmoid(dec.out(torch.tanh(dec.hidden(z))))
    log_var = -5.0 + torch.nn.functional.softplus(dec.log_var_bias + 5.0)  # the soft floor, via torch's softplus
    ref = torch.distributions.Normal(mu, (0.5 * log_var).exp()).log_prob(x).sum(-1)
    torch.testing.assert_close(dec.log_prob(x, z), ref)
    assert (dec(z)[1] == dec(z[:1])[1]).all() and dec.out.out_features == 4
    dec.log_prob(x, z).sum().backward()
    assert (dec.log_var_bias.grad != 0).all()


def test_softplus_matches_torch_in_value_and_gradient():
    y = torch.cat([torch.linspace(-60, 60, 241), torch.tensor([-1e4, 0.0, 1e4])]).requires_grad_()
    ours, ref = softplus(y), torch.logaddexp(y, torch.zeros(()))  # F.softplus is linear above 20
    torch.testing.assert_close(ours, ref, atol=1e-15, rtol=1e-12)
    (g,) = torch.autograd.grad(ours.sum(), y)
    torch.testing.assert_close(g, torch.sigmoid(y.detach()))
    assert torch.autograd.gradcheck(softplus, torch.randn(7).mul(5).requires_grad_())


def test_tanh_matches_torch_in_value_and_gradient():
    from reproduce.models import tanh
    y = torch.cat([torch.linspace(-30, 30, 6001), torch.tensor([-1e4, 0.0, 1e-9, 1e4])]).double().requires_grad_()
    torch.testing.assert_close(tanh(y), torch.tanh(y), atol=1e-15, rtol=1e-12)
    (g,) = torch.autograd.grad(tanh(y).sum(), y)
    torch.testing.assert_close(g, 1 - torch.tanh(y.detach()).square())
    assert torch.autograd.gradcheck(tanh, torch.randn(7, dtype=torch.float64).mul(3).requires_grad_())
    y32 = torch.linspace(-30, 30, 100_001, dtype=torch.float32)
    assert (tanh(y32).double() - torch.tanh(y32.double())).abs().max() < 2e-7  # the docstring's bound


def test_softplus_float32_error_is_that_of_torch():
    y = torch.linspace(-30, 30, 10_001, dtype=torch.float32)
    exact = torch.logaddexp(y.double(), torch.zeros((), dtype=torch.float64))
    err = (softplus(y).double() - exact).abs().max()
    err_torch = (torch.nn.functional.softplus(y, threshold=100).double() - exact).abs().max()
    assert err <= 1.5 * err_torch  # both are rounding of a float32 result (half an ulp at 30 is 1e-6)
