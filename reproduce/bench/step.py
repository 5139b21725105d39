"""The training step's throughput: the suite's own step (eager, compiled, CUDA-graphed) per Figure 2 case, a plain
eager loop of the same model beside it, several jobs at once, and the paper-scale Figure 2 time they imply.

GFLOP/s count 6 x (multiply-adds of the forward matmuls) per training sample (forward 2, backward 4), the usual
convention for a training step, although our step skips the input gradient of the first layer."""
from __future__ import annotations

import multiprocessing as mp

import torch
import torch.nn.functional as F
from torch import nn

from reproduce import algorithms, graphed, models, train
from reproduce.bench.timing import attempt, timed
from reproduce.config import AEVBConfig, Config, Dataset, DatasetConfig, Decoder, ModelConfig, Precision, TrainConfig

CASES = {  # name: (n_x, n_hidden, n_z, decoder)
    "mnist-nz3": (784, 500, 3, Decoder.bernoulli),
    "mnist-nz20": (784, 500, 20, Decoder.bernoulli),
    "mnist-nz200": (784, 500, 200, Decoder.bernoulli),
    "frey-nz10": (560, 200, 10, Decoder.gaussian),
}
MODES = {  # how our step runs: keyword arguments of ours()
    "eager": {},
    "compiled": {"compile": True},  # train.compile (mode: --compile-mode)
    "graphed": {"graph": True},  # train.cuda_graph: the whole step one CUDA graph (reproduce/graphed.py)
    "graphed+compiled": {"graph": True, "compile": True},  # both: the graph replays the compiled loss's kernels
    "bf16": {"precision": Precision.bf16},  # train.precision=bf16: other numbers, so never a case's "best" mode
}


def step_flops(n_x: int, n_h: int, n_z: int, decoder: Decoder) -> int:
    n_out = n_x * (2 if decoder is Decoder.gaussian else 1)
    return 6 * (n_x * n_h + n_h * 2 * n_z + n_z * n_h + n_h * n_out)


def config(case: str, device: str, compile: bool = False, graph: bool = False, compile_mode: str = "default",
           precision: Precision = Precision.fp32) -> Config:
    n_x, n_h, n_z, dec = CASES[case]
    name = Dataset.frey if case.startswith("frey") else Dataset.mnist
    return Config(dataset=DatasetConfig(name=name), model=ModelConfig(n_z=n_z, n_hidden=n_h, decoder=dec), algorithm=AEVBConfig(),
                  train=TrainConfig(compile=compile, compile_mode=compile_mode, cuda_graph=graph, precision=precision), device=device)


def ours(case: str, device: str, seconds: float, compile: bool = False, fused: bool = True, graph: bool = False,
         compile_mode: str = "default", precision: Precision = Precision.fp32) -> float:
    """Samples/s of the suite's own training step: index sampling from device data + AEVB.step under the
    training loop's precision context (fused=False: torch's foreach Adagrad instead of the fused kernel;
    graph=True: the same step captured as one CUDA graph, train.cuda_graph)."""
    cfg = config(case, device, compile, graph, compile_mode if compile and not graph else "default", precision)
    n_x = CASES[case][0]
    data = torch.rand(50_000, n_x, device=device)
    enc, dec = (m.to(device) for m in models.build(cfg.model, n_x))
    gen = torch.Generator(device).manual_seed(0)
    alg = algorithms.build(cfg, enc, dec, len(data), gen)
    if not fused:
        alg.opt.opt = torch.optim.Adagrad(alg.opt.params, lr=cfg.train.lr, weight_decay=1 / len(data), foreach=True)

    def step():
        idx = torch.randint(0, len(data), (100,), generator=gen, device=device)
        alg.step(data[idx], idx)

    take_step = graphed.GraphedStep(alg, data, 100, False, gen) if graph else step

    def step_in_precision():
        with train.autocast(cfg):
            take_step()

    return 100 * timed(step_in_precision, seconds, device)


class PlainVAE(nn.Module):
    """The same model written the plain eager way (pytorch/examples vae/main.py style)."""

    def __init__(self, n_x: int, n_h: int, n_z: int, gaussian: bool = False):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(n_x, n_h), nn.Linear(n_h, n_z), nn.Linear(n_h, n_z)
        self.fc3, self.fc4 = nn.Linear(n_z, n_h), nn.Linear(n_h, n_x)
        self.fc5 = nn.Linear(n_h, n_x) if gaussian else None  # per-pixel log variance

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        h = torch.tanh(self.fc3(z))
        recon = torch.sigmoid(self.fc4(h))
        if self.fc5 is None:
            nll = F.binary_cross_entropy(recon, x, reduction="sum")
        else:
            nll = F.gaussian_nll_loss(recon, x, self.fc5(h).exp(), full=True, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (nll + kld) / len(x)


def plain(case: str, device: str, seconds: float) -> float:
    """Samples/s of a plain eager loop: shuffled minibatches, Adagrad, loss.item() every step."""
    n_x, n_h, n_z, decoder = CASES[case]
    model = PlainVAE(n_x, n_h, n_z, decoder is Decoder.gaussian).to(device)
    opt = torch.optim.Adagrad(model.parameters(), lr=0.02, weight_decay=1 / 50_000)
    data = torch.rand(50_000, n_x, device=device)

    def step():
        loss = model(data[torch.randint(0, len(data), (100,), device=device)])
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()

    return 100 * timed(step, seconds, device)


def _concurrent_worker(case: str, device: str, seconds: float, threads: int, barrier, out, kw: dict) -> None:
    torch.set_num_threads(threads)
    barrier.wait()  # start timing together, so that every window sees all the jobs running
    out.put(attempt(ours, case, device, seconds, **kw))


def concurrent(case: str, device: str, seconds: float, jobs: int, threads: int = 1, **kw) -> list[float]:
    """Samples/s of each of `jobs` training processes running at once on one device (several jobs per core
    set or per GPU, as a sweep's launcher runs them); kw: ours()'s step options (MODES)."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(jobs), ctx.Queue()
    procs = [ctx.Process(target=_concurrent_worker, args=(case, device, seconds, threads, barrier, out, kw)) for _ in range(jobs)]
    for p in procs:
        p.start()
    rates = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return rates


def paper_fig2_hours(rates: dict[str, float]) -> float:
    """Training hours of the paper-scale Fig. 2 (MNIST 2.5e8 and Frey 1e8 samples per curve, AEVB and
    wake-sleep) from measured AEVB rates (one job's, or the total of jobs run at once): n_z 5 and 10 at the
    n_z = 20 rate (dominated by the same 784 x 500 layers), Frey at the n_z = 10 rate, wake-sleep assumed to
    cost what AEVB does."""
    mnist = {3: "mnist-nz3", 5: "mnist-nz20", 10: "mnist-nz20", 20: "mnist-nz20", 200: "mnist-nz200"}
    seconds = sum(2.5e8 / rates[c] for c in mnist.values()) + 4 * 1e8 / rates["frey-nz10"]
    return 2 * seconds / 3600


def measure_case(case: str, device: str, seconds: float, modes: list[str], baselines: bool = True,
                 compile_mode: str = "default") -> dict[str, float]:
    """Samples/s of one case: our step eager and in each of `modes` (MODES), and with baselines the plain eager
    loop ("plain") and our step on torch's foreach Adagrad ("foreach"); NaN where one was not measured or failed."""
    m = {"eager": attempt(ours, case, device, seconds)}
    m["plain"] = attempt(plain, case, device, seconds) if baselines else float("nan")
    m["foreach"] = attempt(ours, case, device, seconds, fused=False) if baselines else float("nan")
    for mode in modes:
        m[mode] = attempt(ours, case, device, seconds, compile_mode=compile_mode, **MODES[mode])
    return m


def best_mode(m: dict[str, float]) -> str:
    """The fastest of our step's modes that ran (the baselines are not ours)."""
    return max((k for k in m if k in MODES and k != "bf16" and m[k] == m[k]), key=m.get, default="eager")
