"""Learning algorithms behind one protocol (reproduce/protocol.py); AEVB lives here, the baselines in
baselines/, and `build` makes the one a config names."""
from __future__ import annotations

import torch
from torch import nn

from reproduce.config import Config
from reproduce.objectives import SGVB
from reproduce.optim import adagrad
from reproduce.protocol import Algorithm


class AEVB(Algorithm):
    """Auto-Encoding VB (Algorithm 1): one Adagrad step on -SGVB for encoder and decoder jointly."""

    def __init__(self, cfg: Config, encoder: nn.Module, decoder: nn.Module, n_train: int, generator: torch.Generator):
        self.encoder, self.decoder, self.generator = encoder, decoder, generator
        self.estimator = SGVB[cfg.algorithm.estimator]
        self.L, self.n_z = cfg.algorithm.L, cfg.model.n_z
        self.opt = adagrad(cfg.train, [*encoder.parameters(), *decoder.parameters()], n_train)
        self.loss = torch.compile(self._loss, dynamic=False, mode=cfg.train.compile_mode) if cfg.train.compile else self._loss

    def _loss(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """-SGVB, per datapoint; eps [L, M, n_z] comes in from outside so that the function compiles."""
        return -self.estimator(self.encoder, self.decoder, x, self.L, eps=eps).elbo.mean()

    def step(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        eps = torch.randn((self.L, len(x), self.n_z), generator=self.generator, device=x.device)
        loss = self.loss(x, eps)
        self.opt.step(loss)
        return {"loss": loss.detach()}


from baselines.iwae import IWAE  # noqa: E402  (baselines import the optimizer, not this module)
from baselines.mcem import MCEM  # noqa: E402
from baselines.wake_sleep import ReweightedWakeSleep, WakeSleep  # noqa: E402
from reproduce.full_vb import FullVB  # noqa: E402

REGISTRY: dict[str, type[Algorithm]] = {"aevb": AEVB, "wake_sleep": WakeSleep, "rws": ReweightedWakeSleep, "mcem": MCEM,
                                        "full_vb": FullVB, "iwae": IWAE}


def build(cfg: Config, encoder: nn.Module, decoder: nn.Module, n_train: int, generator: torch.Generator) -> Algorithm:
    """The algorithm named by cfg.algorithm.name; what its checkpoints would hold is checked before any training."""
    algorithm = REGISTRY[cfg.algorithm.name](cfg, encoder, decoder, n_train, generator)
    if missing := [name for name in algorithm.saved if not hasattr(algorithm, name)]:
        raise TypeError(f"{type(algorithm).__name__}.saved names {missing}, which it does not have: list the attributes "
                        f"a checkpoint must hold (its modules, optimizers and persistent tensors)")
    return algorithm
