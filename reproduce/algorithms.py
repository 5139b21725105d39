"""Learning algorithms behind one protocol; AEVB lives here, the baselines in baselines/.

Every algorithm owns its optimizers and implements `step(x, idx) -> dict of tensors` (x: the minibatch,
idx: its indices in the training set, for per-datapoint state such as MCEM's chains; no .item(): the loop
decides when to sync), `state_dict()` / `load_state_dict()`, and exposes `encoder` (None where it has
none) and `decoder`, so that evaluation is the same code for all of them."""
from __future__ import annotations

import importlib
from typing import Iterable, Protocol

import torch
from torch import nn

from reproduce.config import Config
from reproduce.objectives import ESTIMATORS

# name -> "module:Class"; imported lazily so that baselines/ may import from here
REGISTRY = {
    "aevb": "reproduce.algorithms:AEVB",
    "wake_sleep": "baselines.wake_sleep:WakeSleep",
    "rws": "baselines.wake_sleep:ReweightedWakeSleep",
    "mcem": "baselines.mcem:MCEM",
    "full_vb": "reproduce.full_vb:FullVB",
}


class Algorithm(Protocol):
    encoder: nn.Module
    decoder: nn.Module

    def step(self, x: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class Adagrad:
    """Adagrad (Duchi et al. 2010), as the paper (sec. 5), with the N(0, I) parameter prior as weight decay.

    `warmup` steps only accumulate sum g^2 without moving the parameters (the authors' anglepy code does
    this; the paper is silent), which shrinks the first steps."""

    def __init__(self, params: Iterable[nn.Parameter], lr: float, weight_decay: float, warmup: int = 0):
        self.params = list(params)
        # fused: one pass over each parameter (CPU and CUDA); foreach took half of a CPU training step
        self.opt = torch.optim.Adagrad(self.params, lr=lr, weight_decay=weight_decay, fused=True)
        self.weight_decay, self.warmup, self.n_steps = weight_decay, warmup, 0

    def step(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.n_steps < self.warmup:
            with torch.no_grad():
                for p in self.params:
                    g = p.grad + self.weight_decay * p
                    self.opt.state[p]["sum"].addcmul_(g, g)
        else:
            self.opt.step()
        self.n_steps += 1

    def state_dict(self) -> dict:
        return {"opt": self.opt.state_dict(), "n_steps": self.n_steps}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["opt"])
        self.n_steps = state["n_steps"]


def adagrad(cfg: Config, params: Iterable[nn.Parameter], n_train: int) -> Adagrad:
    """The paper's optimizer for a per-datapoint loss: prior N(0, I) on theta = weight decay 1/N."""
    wd = 1.0 / n_train if cfg.train.weight_prior else 0.0
    return Adagrad(params, cfg.train.lr, wd, cfg.train.adagrad_warmup)


class AEVB:
    """Auto-Encoding VB (Algorithm 1): one Adagrad step on -SGVB for encoder and decoder jointly."""

    def __init__(self, cfg: Config, encoder: nn.Module, decoder: nn.Module, n_train: int, generator: torch.Generator):
        self.encoder, self.decoder, self.generator = encoder, decoder, generator
        self.estimator = ESTIMATORS[cfg.algorithm.estimator.value]
        self.L, self.n_z = cfg.algorithm.L, cfg.model.n_z
        self.opt = adagrad(cfg, [*encoder.parameters(), *decoder.parameters()], n_train)
        self.loss = torch.compile(self._loss, dynamic=False) if cfg.train.compile else self._loss

    def _loss(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """-SGVB, per datapoint; eps [L, M, n_z] comes in from outside so that the function compiles."""
        return -self.estimator(self.encoder, self.decoder, x, self.L, eps=eps).elbo.mean()

    def step(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        eps = torch.randn((self.L, len(x), self.n_z), generator=self.generator, device=x.device)
        loss = self.loss(x, eps)
        self.opt.step(loss)
        return {"loss": loss.detach()}

    def state_dict(self) -> dict:
        return {"encoder": self.encoder.state_dict(), "decoder": self.decoder.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.encoder.load_state_dict(state["encoder"])
        self.decoder.load_state_dict(state["decoder"])
        self.opt.load_state_dict(state["opt"])


def build(cfg: Config, encoder: nn.Module, decoder: nn.Module, n_train: int, generator: torch.Generator) -> Algorithm:
    """The algorithm named by cfg.algorithm.name, built from the registry."""
    module, cls = REGISTRY[cfg.algorithm.name].split(":")
    return getattr(importlib.import_module(module), cls)(cfg, encoder, decoder, n_train, generator)
