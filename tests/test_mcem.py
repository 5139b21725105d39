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


def test_the_mcem_count_is_explicit_and_old_runs_keep_theirs():
    """algorithm.count: 16 decoder gradients per datapoint per iteration (10 leapfrog + 1, 5 updates) by default,
    1 with count=datapoint; a run stored before the option existed counted datapoints and stays that job."""
    import torch
    from baselines.mcem import MCEM
    from reproduce.config import MCEMCount
    from reproduce.jobs import plain, same_job
    from reproduce.results import stored_config
    from reproduce.models import build
    enc, dec = build(ModelConfig(n_z=2, n_hidden=4), 6)
    make = lambda **a: Config(dataset=DatasetConfig(), model=ModelConfig(n_z=2), algorithm=MCEMConfig(**a))  # noqa: E731
    assert MCEM(make(), enc, dec, 10, torch.Generator()).count == 10 + 1 + 5
    assert MCEM(make(count=MCEMCount.datapoint), enc, dec, 10, torch.Generator()).count == 1
    old = plain(make(count=MCEMCount.datapoint))
    del old["algorithm"]["count"]
    assert same_job(old, make(count=MCEMCount.datapoint)) and not same_job(old, make())
    assert stored_config(old).algorithm.count is MCEMCount.datapoint
