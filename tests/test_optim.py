"""The paper's Adagrad with the N(0, I) parameter prior: the update rule, the warm-up, the weight decay."""
import pytest
import torch

from reproduce.optim import Adagrad


def test_adagrad_update_is_the_papers_rule_with_prior_as_weight_decay():
    w = torch.nn.Parameter(torch.tensor([0.5, -1.0]))
    opt, n, lr, s = Adagrad([w], lr=0.1, weight_decay=1 / 50), 50, 0.1, torch.zeros(2)
    expected = w.detach().clone()
    for target in ([1.0, 2.0], [0.0, -3.0], [2.0, 0.5]):
        t = torch.tensor(target)
        loss = 0.5 * (w - t).square().sum()  # per-datapoint loss; its prior term is ||w||^2 / (2N)
        g = (expected - t) + expected / n
        s += g * g
        expected -= lr * g / (s.sqrt() + 1e-10)
        opt.step(loss)
        torch.testing.assert_close(w.detach(), expected)


def test_warmup_only_accumulates():
    w = torch.nn.Parameter(torch.tensor([0.5, -1.0]))
    opt = Adagrad([w], lr=0.1, weight_decay=0.0, warmup=2)
    for _ in range(2):
        opt.step((w**2).sum())
    torch.testing.assert_close(w.detach(), torch.tensor([0.5, -1.0]))
    torch.testing.assert_close(opt.opt.state[w]["sum"], 2 * (2 * torch.tensor([0.5, -1.0])) ** 2)
    opt.step((w**2).sum())
    assert not torch.equal(w.detach(), torch.tensor([0.5, -1.0]))


def test_compiled_step_follows_the_eager_step(one_thread):
    """train.compile=true (on in budget=paper) traces the same loss, softplus included."""
    from reproduce import algorithms, models
    from reproduce.config import AEVBConfig, Config, DatasetConfig, Decoder, ModelConfig, TrainConfig

    x = torch.rand(100, 12, generator=torch.Generator().manual_seed(0))
    params = []
    for decoder in (Decoder.bernoulli, Decoder.gaussian):
        for compile in (False, True):
            torch.manual_seed(0)
            cfg = Config(dataset=DatasetConfig(), model=ModelConfig(n_z=3, n_hidden=16, decoder=decoder),
                         algorithm=AEVBConfig(), train=TrainConfig(compile=compile))
            enc, dec = models.build(cfg.model, 12)
            flat = lambda: torch.cat([p.detach().flatten() for p in [*enc.parameters(), *dec.parameters()]])
            init = flat()
            alg = algorithms.build(cfg, enc, dec, 1000, torch.Generator().manual_seed(1))
            losses = [alg.step(x)["loss"].item() for _ in range(5)]
            params.append((losses, flat() - init))
        (l_eager, d_eager), (l_comp, d_comp) = params[-2:]
        assert l_comp == pytest.approx(l_eager, rel=1e-5)
        assert d_eager.abs().max() > 1e-3  # the steps moved the parameters
        torch.testing.assert_close(d_comp, d_eager, rtol=1e-3, atol=1e-6)
