"""The one protocol of every learning algorithm (AEVB, full VB, wake-sleep, RWS, MCEM), with its defaults.

An algorithm owns its optimizers and implements `step(x, idx) -> dict of tensors` (x: the minibatch, idx: its
indices in the training set, for per-datapoint state such as MCEM's chains; no .item(): the loop decides when
to sync), names in `saved` the attributes a checkpoint holds, and exposes `encoder` (None where it has none) and
`decoder`, so that evaluation is the same code for all of them."""
from __future__ import annotations

import torch
from torch import nn


class Algorithm:
    """What the training loop (train.py) and the evaluation (evaluate.py) call; a subclass overrides step, and
    saved, count or extra_metrics where it differs from the defaults here."""

    encoder: nn.Module | None = None  # q(z|x); None for an algorithm without one (MCEM)
    decoder: nn.Module
    count: int = 1  # training samples one step counts per minibatch datapoint (MCEM: algorithm.count)
    saved: tuple[str, ...] = ("encoder", "decoder", "opt")  # the attributes a checkpoint holds, by name

    def step(self, x: torch.Tensor, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Everything a resumed job needs: each attribute in `saved`, by its own state_dict where it has one
        (modules, optimizers), else as it is (tensors such as MCEM's chains)."""
        return {name: (a.state_dict() if hasattr(a := getattr(self, name), "state_dict") else a) for name in self.saved}

    def load_state_dict(self, state: dict) -> None:
        for name in self.saved:
            if hasattr(a := getattr(self, name), "load_state_dict"):
                a.load_state_dict(state[name])
            else:
                setattr(self, name, state[name])

    def extra_metrics(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """Metrics of this algorithm beyond the common ones, on one evaluation split (full VB: full_vb_bound)."""
        return {}

