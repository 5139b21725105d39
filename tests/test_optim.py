"""The paper's Adagrad with the N(0, I) parameter prior: the update rule, the warm-up, the weight decay."""
import torch

from reproduce.algorithms import Adagrad


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
