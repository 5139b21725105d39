"""Monte Carlo EM (appendix E): its decoder updates raise the exact log-likelihood of a linear-Gaussian model."""
import torch

from baselines.mcem import MCEM
from conftest import LinearGaussian
from reproduce.config import Config, DatasetConfig, MCEMConfig, ModelConfig, TrainConfig


def test_mcem_raises_the_exact_log_likelihood():
    torch.manual_seed(0)
    truth, model = LinearGaussian(sigma=0.5), LinearGaussian(sigma=0.5)
    with torch.no_grad():
        model.W.mul_(0.1)  # start far from the truth
        x = truth.sample(torch.randn(500, 2))  # [N, n_x]
    cfg = Config(dataset=DatasetConfig(), model=ModelConfig(n_z=2), algorithm=MCEMConfig(), train=TrainConfig(lr=0.05))
    gen = torch.Generator().manual_seed(0)
    mcem = MCEM(cfg, None, model, len(x), gen)
    before = model.log_px(x).mean().item()
    accept = []
    for _ in range(300):
        idx = torch.randint(0, len(x), (100,), generator=gen)
        accept.append(mcem.step(x[idx], idx)["accept"].item())
    after = model.log_px(x).mean().item()
    assert after > before + 1.0, (before, after)
    assert after < truth.log_px(x).mean().item() + 0.5  # and no better than the truth, up to noise
    assert abs(sum(accept[-100:]) / 100 - 0.9) < 0.1  # step sizes adapted toward 90% acceptance
    assert mcem.encoder is None
