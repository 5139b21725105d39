"""The paper's optimizer (sec. 5): Adagrad, with the N(0, I) parameter prior as weight decay 1/N."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from reproduce.config import TrainConfig


class Adagrad:
    """Adagrad (Duchi et al. 2010), as the paper (sec. 5), with the N(0, I) parameter prior as weight decay.

    `warmup` steps only accumulate sum g^2 without moving the parameters (the authors' anglepy code does
    this; the paper is silent), which shrinks the first steps."""

    def __init__(self, params: Iterable[nn.Parameter], lr: float, weight_decay: float, warmup: int = 0):
        self.params = list(params)
        # fused: one pass over each parameter (CPU and CUDA); foreach took half of a CPU training step
        fused = fused_kernel(self.params[0].device) or None  # None: torch's default (foreach) where it has none
        self.opt = torch.optim.Adagrad(self.params, lr=lr, weight_decay=weight_decay, fused=fused)
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


def fused_kernel(device: torch.device) -> bool:
    """torch has a fused Adagrad kernel for this device type (CPU from torch 2.4, CUDA only in later releases)."""
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key("aten::_fused_adagrad_", device.type.upper())
    except RuntimeError:
        return device.type == "cpu"


def adagrad(train: TrainConfig, params: Iterable[nn.Parameter], n_train: int) -> Adagrad:
    """The paper's optimizer for a per-datapoint loss: prior N(0, I) on theta = weight decay 1/N."""
    wd = 1.0 / n_train if train.weight_prior else 0.0
    return Adagrad(params, train.lr, wd, train.adagrad_warmup)
