"""The paper's MLP encoder and decoders (sec. 5, appendix C). Pure nn.Modules, no training logic."""
from __future__ import annotations

import math

import torch
from torch import nn

from reproduce.config import Decoder, LogVar, ModelConfig

LOG_2PI = math.log(2 * math.pi)


class _Softplus(torch.autograd.Function):
    """softplus(y) = log(1 + e^y) = relu(y) - log sigmoid(|y|), with d/dy = sigmoid(y).

    F.softplus and binary_cross_entropy_with_logits run log1p element by element on the CPU, several times
    slower than the vectorised sigmoid and log here (docs/performance.md has the measurement). The rewrite
    loses log1p's accuracy only where e^-|y| < float eps: under 1e-7 per element."""

    generate_vmap_rule = True  # usable under torch.func transforms (vmap), like the F.softplus it replaces

    @staticmethod
    def forward(y: torch.Tensor) -> torch.Tensor:
        return y.relu() - torch.sigmoid(y.abs()).log()

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return grad * torch.sigmoid(y)


def softplus(y: torch.Tensor) -> torch.Tensor:
    """log(1 + e^y), elementwise; see _Softplus for why not F.softplus."""
    return _Softplus.apply(y)


class _Tanh(torch.autograd.Function):
    """tanh(y) = 2 sigmoid(2y) - 1, with d/dy = 1 - tanh(y)^2 from the output (as torch's own tanh backward).

    torch.tanh runs several times slower than this on the CPU (docs/performance.md has the measurement). The
    rewrite's absolute error stays under 2e-7
    (float32 rounding of 2 sigmoid(2y)); relative error grows only where |tanh(y)| < 1e-6."""

    generate_vmap_rule = True

    @staticmethod
    def forward(y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(y * 2).mul_(2).sub_(1)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, out)


def tanh(y: torch.Tensor) -> torch.Tensor:
    """tanh, elementwise; see _Tanh for why not torch.tanh."""
    return _Tanh.apply(y)


def linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """layer(x) in the layer's own dtype: a no-op normally; under train.precision=bf16 (torch.autocast runs the
    product in bfloat16) it brings the output back to float32, so that activations, log-likelihood sums, the KL
    and every other reduction stay float32."""
    return layer(x).to(layer.weight.dtype)


def init_normal_(module: nn.Module, std: float) -> None:
    """Every parameter ~ N(0, std^2), weights and biases alike (sec. 5: std 0.01)."""
    for p in module.parameters():
        nn.init.normal_(p, 0.0, std)


class GaussianEncoder(nn.Module):
    """q(z|x) = N(mu, diag sigma^2) from one tanh hidden layer (appendix C.2)."""

    def __init__(self, n_x: int, n_hidden: int, n_z: int):
        super().__init__()
        self.hidden = nn.Linear(n_x, n_hidden)
        self.out = nn.Linear(n_hidden, 2 * n_z)  # mu and log sigma^2 in one matmul

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = linear(self.out, tanh(linear(self.hidden, x))).chunk(2, dim=-1)
        return mu, log_var  # [B, n_z] each

    def log_prob(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log q(z|x) summed over latents; z [..., B, n_z] -> [..., B]."""
        mu, log_var = self(x)
        return gaussian_log_prob(z, mu, log_var)


class BernoulliDecoder(nn.Module):
    """p(x|z) Bernoulli with sigmoid means from one tanh hidden layer (appendix C.1); x may be grey levels."""

    def __init__(self, n_z: int, n_hidden: int, n_x: int):
        super().__init__()
        self.hidden = nn.Linear(n_z, n_hidden)
        self.out = nn.Linear(n_hidden, n_x)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        return linear(self.out, tanh(linear(self.hidden, z)))  # [..., n_x]

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) = sum_i x_i log y_i + (1 - x_i) log(1 - y_i); -> [...]."""
        logits = self.logits(z)  # [..., n_x]; log y = l - softplus(l), log(1 - y) = -softplus(l)
        return (x * logits - softplus(logits)).sum(-1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(z))

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(self.mean(z), generator=generator)


class GaussianDecoder(nn.Module):
    """p(x|z) = N(mu, diag sigma^2), mu = sigmoid(.) in (0, 1), per-pixel log sigma^2 output (appendix C.2).

    log sigma^2 is softly floored at `min_log_var` (min + softplus(raw - min)); the paper is silent, and
    without a floor the variance of nearly constant pixels collapses and the bound diverges to +inf.
    `log_var=LogVar.bias` makes raw log sigma^2 one learned value per pixel, the same for every z."""

    def __init__(self, n_z: int, n_hidden: int, n_x: int, min_log_var: float = -12.0, log_var: LogVar = LogVar.output):
        super().__init__()
        self.hidden = nn.Linear(n_z, n_hidden)
        self.out = nn.Linear(n_hidden, (2 if log_var is LogVar.output else 1) * n_x)
        self.log_var_bias = nn.Parameter(torch.zeros(n_x)) if log_var is LogVar.bias else None  # [n_x]
        self.min_log_var = min_log_var

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = linear(self.out, tanh(linear(self.hidden, z)))  # [..., 2 n_x] (output) or [..., n_x] (bias)
        a, b = (out, self.log_var_bias.expand_as(out)) if self.log_var_bias is not None else out.chunk(2, dim=-1)
        log_var = self.min_log_var + softplus(b - self.min_log_var)
        return torch.sigmoid(a), log_var  # [..., n_x] each

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mu, log_var = self(z)
        return gaussian_log_prob(x, mu, log_var)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return self(z)[0]

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mu, log_var = self(z)
        return mu + (0.5 * log_var).exp() * torch.randn(mu.shape, generator=generator, device=mu.device)


def gaussian_log_prob(x: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(x; mu, diag exp(log_var)) summed over the last dim."""
    return -0.5 * (LOG_2PI + log_var + (x - mu).square() * (-log_var).exp()).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log p(z) for p(z) = N(0, I), summed over the last dim."""
    return -0.5 * (LOG_2PI + z.square()).sum(-1)


def networks(cfg: ModelConfig, n_x: int) -> tuple[GaussianEncoder, nn.Module]:
    """Encoder and decoder of the paper's sizes, as constructed (PyTorch's default init)."""
    encoder = GaussianEncoder(n_x, cfg.n_hidden, cfg.n_z)
    if cfg.decoder is Decoder.bernoulli:
        return encoder, BernoulliDecoder(cfg.n_z, cfg.n_hidden, n_x)
    return encoder, GaussianDecoder(cfg.n_z, cfg.n_hidden, n_x, cfg.min_log_var, cfg.log_var)


def build(cfg: ModelConfig, n_x: int) -> tuple[GaussianEncoder, nn.Module]:
    """Encoder and decoder of the paper's sizes, initialised N(0, init_std^2)."""
    encoder, decoder = networks(cfg, n_x)
    init_normal_(encoder, cfg.init_std)
    init_normal_(decoder, cfg.init_std)
    return encoder, decoder


def activations(*nets: nn.Module) -> int:
    """Floats one datapoint's forward pass makes: the output width of every layer (the sizes of its biases)."""
    return sum(p.numel() for net in nets if isinstance(net, nn.Module) for p in net.parameters() if p.dim() == 1)


def training_bytes(cfg: ModelConfig, n_x: int, rows: int, itemsize: int = 4) -> int:
    """Memory of one training step, estimated: the parameters, their gradients and two more copies (Adagrad's
    sum of squares, the update), and `rows` datapoint-samples of activations (each layer's output, kept for
    backward, and its gradient). Counted on the meta device, so that nothing is allocated."""
    with torch.device("meta"):
        nets = networks(cfg, n_x)
    params = sum(p.numel() for net in nets for p in net.parameters())
    return itemsize * (4 * params + 2 * rows * activations(*nets))
