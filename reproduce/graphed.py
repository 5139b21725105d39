"""`train.cuda_graph=true`: the whole AEVB training step captured once as a CUDA graph and replayed.

A batch-100 step of the paper's MLPs is a few dozen kernels of microseconds each, so on a GPU it is bound by
kernel launches and Python, not by arithmetic. Captured, one step is one graph launch of

    idx ~ U{0..N-1}^M (with replacement) -> x = train_x[idx] -> (dynamic binarization) -> eps ~ N(0, I)
    -> -SGVB (the AEVB loss, compiled or not) -> gradients -> Adagrad update -> loss into a static tensor

with no host sync: the loop reads the static loss only every `train.log_every` steps.

Random numbers. Every draw takes the job's own CUDA generator (the one `train.run` seeds and checkpoints),
registered with the graph before capture (`CUDAGraph.register_generator_state`). Under capture each draw
records its Philox offset relative to a per-replay base; each replay sets that base to the generator's
offset and advances the generator by the graph's total (Note [CUDA Graph-safe RNG states], ATen's
CUDAGeneratorImpl.h). The draws come in the plain loop's order (indices, binarization, eps), so replay k
draws exactly what the eager step k would, and `gen.get_state()` in a checkpoint is the state after the last
replay: a checkpoint resumes under either path.

Adagrad. `torch.optim.Adagrad` has no `capturable` option and its `step()` runs host-side bookkeeping,
so the update is written here as in-place foreach ops on the optimizer's own state tensors (`sum`, and
`step`, which fused Adagrad keeps on the device): torch's rule with lr_decay = 0,
g = grad + wd * p; sum += g^2; p -= lr * g / (sqrt(sum) + eps). The optimizer's `state_dict()` is then the
plain path's. Steps inside `train.adagrad_warmup` (accumulation only) run eagerly, before any capture.

Capture follows the torch.cuda.graphs recipe: a few real training steps on a side stream (cuBLAS handles,
autograd and torch.compile warm up there), then capture, then `graph.replay()` once per step. Every call is
exactly one training step: capture itself executes nothing. On a CPU tensor (the tests) or with
`capture=False` the same `_step` body runs eagerly."""
from __future__ import annotations

import torch

from reproduce.algorithms import AEVB


def adagrad_(params: list[torch.Tensor], grads: list[torch.Tensor], sums: list[torch.Tensor], steps: list[torch.Tensor],
             lr: float, weight_decay: float, eps: float) -> None:
    """torch.optim.Adagrad's update (lr_decay = 0) in place, as CUDA-graph-capturable foreach ops."""
    with torch.no_grad():
        g = torch._foreach_add(grads, params, alpha=weight_decay) if weight_decay else list(grads)
        torch._foreach_addcmul_(sums, g, g)  # sum += g^2
        std = torch._foreach_sqrt(sums)
        torch._foreach_add_(std, eps)
        torch._foreach_addcdiv_(params, g, std, value=-lr)  # p -= lr * g / (sqrt(sum) + eps)
        if steps:  # (foreach ops refuse empty lists)
            torch._foreach_add_(steps, 1)


class GraphedStep:
    """One AEVB training step per call (draws included), replayed from a CUDA graph after warm-up."""

    def __init__(self, algorithm: AEVB, train_x: torch.Tensor, batch_size: int, dynamic: bool,
                 generator: torch.Generator, capture: bool | None = None, side_steps: int = 3):
        if not isinstance(algorithm, AEVB):
            raise TypeError(f"train.cuda_graph captures the AEVB step only, not {type(algorithm).__name__}")
        self.capture = train_x.is_cuda if capture is None else capture
        if self.capture and not train_x.is_cuda:
            raise RuntimeError(f"train.cuda_graph needs CUDA tensors; the data is on {train_x.device}")
        self.alg, self.train_x, self.M, self.dynamic, self.gen = algorithm, train_x, batch_size, dynamic, generator
        group = algorithm.opt.opt.param_groups[0]
        self.lr, self.weight_decay, self.eps = group["lr"], group["weight_decay"], group["eps"]
        self.loss = torch.zeros((), device=train_x.device)  # static: the graph writes each step's loss here
        # Adagrad's step counts: on the device with fused Adagrad (counted in the graph), else CPU scalars,
        # counted here after each step. Read once: build this after loading a checkpoint.
        steps = [algorithm.opt.opt.state[p]["step"] for p in algorithm.opt.params]
        self.host_steps = [s for s in steps if s.device != train_x.device]
        self.graph: torch.cuda.CUDAGraph | None = None
        self.side_steps, self.n_side = side_steps, 0

    def draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The plain loop's minibatch: indices with replacement, gather, optional dynamic binarization."""
        idx = torch.randint(0, len(self.train_x), (self.M,), generator=self.gen, device=self.train_x.device)
        x = self.train_x[idx]  # [M, n_x]
        if self.dynamic:
            x = torch.bernoulli(x, generator=self.gen)
        return x, idx

    def _step(self) -> None:
        """The captured body: draws, -SGVB, gradients, Adagrad update, loss into the static tensor."""
        alg, params = self.alg, self.alg.opt.params
        x, _ = self.draw()
        eps = torch.randn((alg.L, self.M, alg.n_z), generator=self.gen, device=x.device)  # as AEVB.step
        loss = alg.loss(x, eps)
        grads = torch.autograd.grad(loss, params)
        state = alg.opt.opt.state  # re-read: load_state_dict replaces these tensors (before any capture)
        steps = [] if self.host_steps else [state[p]["step"] for p in params]  # host-side ones: counted in __call__
        adagrad_(list(params), list(grads), [state[p]["sum"] for p in params], steps, self.lr, self.weight_decay, self.eps)
        self.loss.copy_(loss.detach())

    def __call__(self) -> dict[str, torch.Tensor]:
        opt = self.alg.opt
        if opt.n_steps < opt.warmup:  # Adagrad warm-up: the plain eager step, never captured
            x, idx = self.draw()
            return self.alg.step(x, idx)
        if self.graph is not None:
            self.graph.replay()
        elif not self.capture:
            self._step()
        elif self.n_side < self.side_steps:
            self._side_stream_step()
        else:
            self._capture()
            self.graph.replay()
        if self.host_steps:
            torch._foreach_add_(self.host_steps, 1)
        opt.n_steps += 1
        return {"loss": self.loss}

    def _side_stream_step(self) -> None:
        stream = torch.cuda.Stream(self.train_x.device)
        stream.wait_stream(torch.cuda.current_stream(self.train_x.device))
        with torch.cuda.stream(stream):
            self._step()
        torch.cuda.current_stream(self.train_x.device).wait_stream(stream)
        self.n_side += 1

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.gen)  # before capture begins; the default generator is always registered
        with torch.cuda.graph(graph):
            self._step()
        self.graph = graph
