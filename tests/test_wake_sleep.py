"""Wake-sleep: each phase moves only its own network; sleep moves q toward the exact posterior."""
import torch
from torch import nn

from baselines.wake_sleep import ReweightedWakeSleep, WakeSleep
from reproduce.config import Config, DatasetConfig, ModelConfig, RWSConfig, TrainConfig, WakeSleepConfig
from conftest import LinearGaussian
from reproduce.models import GaussianEncoder, build


def cfg(algorithm=None, lr=0.05):
    return Config(dataset=DatasetConfig(), model=ModelConfig(n_z=2, n_hidden=16),
                  algorithm=algorithm or WakeSleepConfig(), train=TrainConfig(lr=lr))


def params(m: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in m.parameters()]


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def make(algorithm_cls=WakeSleep, algorithm=None):
    enc, dec = build(ModelConfig(n_z=2, n_hidden=16, init_std=0.1), 12)
    return algorithm_cls(cfg(algorithm), enc, dec, 1000, torch.Generator().manual_seed(0))


def test_wake_moves_only_the_decoder_and_sleep_only_the_encoder():
    ws, x = make(), torch.rand(10, 12)
    enc0, dec0 = params(ws.encoder), params(ws.decoder)
    ws.wake(x)
    assert same(params(ws.encoder), enc0) and not same(params(ws.decoder), dec0)
    dec1 = params(ws.decoder)
    ws.sleep(10)
    assert same(params(ws.decoder), dec1) and not same(params(ws.encoder), enc0)


def test_rws_step_moves_both_and_is_finite():
    rws, x = make(ReweightedWakeSleep, RWSConfig(K=4)), torch.rand(10, 12)
    enc0, dec0 = params(rws.encoder), params(rws.decoder)
    m = rws.step(x)
    assert all(torch.isfinite(v) for v in m.values())
    assert not same(params(rws.encoder), enc0) and not same(params(rws.decoder), dec0)


def kl_to_posterior(enc, dec, x):
    mu_q, lv_q = enc(x)
    mu_p, lv_p = dec.posterior(x)
    return (0.5 * (lv_p - lv_q + (lv_q.exp() + (mu_q - mu_p) ** 2) / lv_p.exp() - 1)).sum(-1).mean()


def test_sleep_moves_q_toward_the_exact_posterior():
    torch.manual_seed(0)
    enc, dec = GaussianEncoder(12, 32, 2), LinearGaussian()
    ws = WakeSleep(cfg(lr=0.1), enc, dec, 10_000, torch.Generator().manual_seed(0))
    x = dec.sample(torch.randn(500, 2))
    with torch.no_grad():
        before = kl_to_posterior(enc, dec, x).item()
    for _ in range(500):
        ws.sleep(100)
    with torch.no_grad():
        after = kl_to_posterior(enc, dec, x).item()
    assert after < 0.01 * before and after < 0.15, (before, after)
