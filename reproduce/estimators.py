"""Evaluation over whole sets, under no_grad and in chunks. They take models, never an algorithm."""
from __future__ import annotations

import torch

from reproduce.objectives import sgvb_b


@torch.no_grad()
def elbo(encoder, decoder, x: torch.Tensor, chunk: int = 5000, generator=None) -> torch.Tensor:
    """Per-datapoint lower bound (estimator B, L = 1) of every row of x; [N, n_x] -> [N]."""
    return torch.cat([sgvb_b(encoder, decoder, xc, 1, generator).elbo for xc in x.split(chunk)])
