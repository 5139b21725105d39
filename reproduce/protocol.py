"""The one protocol of every learning algorithm (AEVB, full VB, wake-sleep, RWS, MCEM), with its defaults.

An algorithm owns its optimizers and implements `step(x, idx) -> dict of tensors` (x: the minibatch, idx: its
indices in the training set, for per-datapoint state such as MCEM's chains; no .item(): the loop decides when
to sync), `state_dict()` / `load_state_dict()`, and exposes `encoder` (None where it has none) and `decoder`,
so that evaluation is the same code for all of them."""
from __future__ import annotations

import torch
from torch import nn


class Algorithm:
    """What the training loop (train.py) and the evaluation (evaluate.py) call; a subclass overrides step,
    state_dict and load_state_dict, and count or extra_metrics where it differs from the defaults here."""

    encoder: nn.Module | None = None  # q(z|x); None for an algorithm without one (MCEM)
    decoder: nn.Module
    count: int = 1  # training samples one step counts per minibatch datapoint (MCEM: algorithm.count)

    def step(self, x: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError

    def extra_metrics(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """Metrics of this algorithm beyond the common ones, on one evaluation split (full VB: full_vb_bound)."""
        return {}

