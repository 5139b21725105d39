"""`python -m reproduce.bench`: training throughput and GFLOP/s of our step next to the fp32 sgemm ceiling
and a plain eager loop of the same model, measured in the same run; a whole run's time split; IS throughput.

GFLOP/s count 6 x (multiply-adds of the forward matmuls) per training sample (forward 2, backward 4), the
convention of the issue's 62 GFLOP/s figure, although our step skips the input gradient of the first layer."""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from reproduce import algorithms, graphed, marginal_likelihood, models
from reproduce.config import (COMPILE_MODES, AEVBConfig, Config, Dataset, DatasetConfig, Decoder, EvalConfig, LogConfig,
                              ModelConfig, TrainConfig, WandbMode, check_device)

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
}


def sgemm_gflops(m: int = 1000, k: int = 784, n: int = 500, seconds: float = 2.0, device: str = "cpu") -> float:
    """The fp32 matmul ceiling at the paper's layer shape (1000 x 784 x 500)."""
    a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
    return 2 * m * k * n * timed(lambda: a @ b, seconds, device) / 1e9


def timed(fn, seconds: float, device: str, windows: int = 5) -> float:
    """Calls per second of fn after a warm-up: the best of `windows` equal windows over about `seconds`
    (as timeit: other load on a shared machine only ever slows a window down). On a GPU it syncs every 50
    calls, as the training loop (train.log_every), so that launches overlap the kernels as they do there."""
    per_sync = 50 if device.startswith("cuda") else 5
    for _ in range(5):
        fn()
    sync(device)
    best = 0.0
    for _ in range(windows):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / windows:
            for _ in range(per_sync):
                fn()
            n += per_sync
            sync(device)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_flops(n_x: int, n_h: int, n_z: int, decoder: Decoder) -> int:
    n_out = n_x * (2 if decoder is Decoder.gaussian else 1)
    return 6 * (n_x * n_h + n_h * 2 * n_z + n_z * n_h + n_h * n_out)


def config(case: str, device: str, compile: bool = False, graph: bool = False, compile_mode: str = "default") -> Config:
    n_x, n_h, n_z, dec = CASES[case]
    name = Dataset.frey if case.startswith("frey") else Dataset.mnist
    return Config(dataset=DatasetConfig(name=name), model=ModelConfig(n_z=n_z, n_hidden=n_h, decoder=dec),
                  algorithm=AEVBConfig(), train=TrainConfig(compile=compile, compile_mode=compile_mode, cuda_graph=graph),
                  device=device)


def ours(case: str, device: str, seconds: float, compile: bool = False, fused: bool = True, graph: bool = False,
         compile_mode: str = "default") -> float:
    """Samples/s of the suite's own training step: index sampling from device data + AEVB.step
    (fused=False: the foreach Adagrad the suite used before, for the before/after table; graph=True: the
    same step captured as one CUDA graph, train.cuda_graph)."""
    cfg = config(case, device, compile, graph, compile_mode if compile and not graph else "default")
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

    return 100 * timed(graphed.GraphedStep(alg, data, 100, False, gen) if graph else step, seconds, device)


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


RUN_EVALS = {  # name: eval settings of the whole-run split (bound and active units on all 60k points always)
    "curves": dict(is_k=0, is_k_final=0),  # Fig. 2's curves only
    "curves+IS": dict(is_k=0, is_k_final=100, is_subset=1000),  # and a final IS k = 100 on 1000 points
    "budget=cpu": dict(is_k=100, is_k_final=1000, is_subset=1000),  # conf/budget/cpu.yaml as shipped
}


def run_split(device: str, budget: int, evals: str, wandb: str = "offline") -> dict:
    """A whole MNIST n_z = 20 run (real data when $REPRODUCE_DATA has it) on the default log-spaced schedule,
    logging to parquet and W&B: wall time split into training, evaluation, logging (result rows and
    checkpoints) and set-up (data, W&B init and finish)."""
    from reproduce import train
    from reproduce.data import DataError

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(dataset=DatasetConfig(), model=ModelConfig(), algorithm=AEVBConfig(),
                     train=TrainConfig(budget=budget), eval=EvalConfig(**RUN_EVALS[evals]),
                     log=LogConfig(results_dir="results", wandb=WandbMode(wandb), progress=False), device=device)
        t0 = time.perf_counter()
        try:
            train.run(cfg, root=Path(tmp))
        except DataError:
            return {}
        total = time.perf_counter() - t0
        import yaml

        (meta,) = Path(tmp).rglob("results/*/*.yaml")
        m = yaml.safe_load(meta.read_text())["meta"]
        train_s = m["n_seen"] / m["train_samples_per_s"]
        return {"train": train_s, "eval": m["eval_s"], "log": m["log_s"], "setup": total - train_s - m["eval_s"] - m["log_s"],
                "rate": m["train_samples_per_s"]}


def paper_run_overhead(device: str, rate: float, is_rate: float) -> tuple[float, float]:
    """Training and evaluation hours of one paper-scale MNIST n_z = 20 run (2.5e8 samples, default eval:
    the bound on all 60k points and IS k = 100 on 10k per split at each point, k = 5000 at the end), from
    the measured step rate, IS rate and a timed bound pass over 60k points."""
    from reproduce import evaluate

    enc, dec = (m.to(device) for m in models.build(ModelConfig(), 784))
    x = torch.rand(60_000, 784, device=device)
    t0 = time.perf_counter()
    marginal_likelihood.elbo_and_mean_var(enc, dec, x)
    sync(device)
    bound_s = time.perf_counter() - t0
    cfg = Config(train=TrainConfig(budget=250_000_000))
    n_points, e = len(evaluate.schedule(cfg)), cfg.eval
    eval_s = n_points * (bound_s + 2 * e.is_subset * e.is_k / is_rate) + 2 * e.is_subset * e.is_k_final / is_rate
    return cfg.train.budget / rate / 3600, eval_s / 3600


def is_throughput(device: str, n: int, k: int) -> float:
    """Datapoint-samples/s of log_px_is on the MNIST n_z = 20 model."""
    enc, dec = (m.to(device) for m in models.build(ModelConfig(), 784))
    x = torch.rand(n, 784, device=device)
    t0 = time.perf_counter()
    marginal_likelihood.log_px_is(enc, dec, x, k)
    sync(device)
    return n * k / (time.perf_counter() - t0)


def _n(v: float, fmt: str = ",.0f") -> str:
    return "-" if v != v else format(v, fmt)  # NaN: not measured


def attempt(fn, *args, **kw) -> float:
    """fn's rate, or NaN with the error on stderr: one mode failing (a capture error, a missing compiler) must
    not lose the other measurements of a device session."""
    try:
        return fn(*args, **kw)
    except Exception as e:
        print(f"[bench] {fn.__name__}{args[:1]} {kw} failed: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr)
        return float("nan")


def best_mode(m: dict[str, float]) -> str:
    return max((k for k in m if m[k] == m[k]), key=m.get, default="eager")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seconds", type=float, default=5.0, help="timing window per measurement")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--compile", action="store_true", help="also time the torch.compile'd step")
    p.add_argument("--compile-mode", default="default", choices=COMPILE_MODES, help="torch.compile mode of that column")
    p.add_argument("--graph", action="store_true", help="also time the step captured as one CUDA graph (train.cuda_graph;"
                   " CUDA only), and with --compile the graphed compiled step")
    p.add_argument("--skip-baselines", action="store_true", help="skip the plain eager loop and foreach Adagrad columns")
    p.add_argument("--jobs", type=int, default=0, help="also time this many one-thread jobs at once (0: skip)")
    p.add_argument("--jobs-mode", default="best", choices=["best", *MODES], help="step of those jobs (best: each case's fastest)")
    p.add_argument("--json", default=None, help="also write the measured rates and estimates to this JSON file")
    p.add_argument("--run-budget", type=int, default=1_000_000, help="samples of the whole-run split (0: skip)")
    p.add_argument("--run-evals", default=",".join(RUN_EVALS), help=f"eval settings of that run: {', '.join(RUN_EVALS)}")
    p.add_argument("--run-wandb", default="offline", help="W&B mode of that run (offline: its logging cost counts)")
    p.add_argument("--is-n", type=int, default=200)
    p.add_argument("--is-k", type=int, default=1000)
    a = p.parse_args(argv)
    check_device(a.device)
    if a.graph and torch.device(a.device).type != "cuda":
        p.error(f"--graph captures CUDA graphs: it needs --device cuda (not {a.device})")
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"device={a.device} threads={torch.get_num_threads()} torch={torch.__version__}"
          + (f" gpu={torch.cuda.get_device_name(a.device)}" if a.device.startswith("cuda") else ""))
    ceiling = sgemm_gflops(seconds=a.seconds, device=a.device)
    print(f"fp32 sgemm ceiling (1000x784x500): {ceiling:.1f} GFLOP/s\n")
    modes = ["compiled"] * a.compile + ["graphed"] * a.graph + ["graphed+compiled"] * (a.graph and a.compile)
    print("| case | ours samples/s | ours GFLOP/s | % of sgemm | plain eager samples/s | ours / plain | foreach Adagrad samples/s |"
          + "".join(f" {m} samples/s |" for m in modes) + " best |")
    print("|---|---|---|---|---|---|---|" + "---|" * len(modes) + "---|")
    measured, jobs, hours, is_rate = {}, {}, {}, 0.0  # measured: case -> {mode: samples/s}

    def dump() -> None:  # after every case, so that a run cut short by its timeout keeps what it measured
        if a.json:
            Path(a.json).write_text(json.dumps({"device": a.device, "torch": torch.__version__, "seconds": a.seconds,
                                                "sgemm_gflops": ceiling, "rates": measured, "jobs": jobs,
                                                "fig2_hours": hours, "is_rate": is_rate}, indent=1))

    for case in filter(None, a.cases.split(",")):
        m = measured[case] = {"eager": attempt(ours, case, a.device, a.seconds)}
        s_plain = float("nan") if a.skip_baselines else attempt(plain, case, a.device, a.seconds)
        s_foreach = float("nan") if a.skip_baselines else attempt(ours, case, a.device, a.seconds, fused=False)
        for mode in modes:
            m[mode] = attempt(ours, case, a.device, a.seconds, compile_mode=a.compile_mode, **MODES[mode])
        gf = m["eager"] * step_flops(*CASES[case]) / 1e9
        best = best_mode(m)
        print(f"| {case} | {m['eager']:,.0f} | {gf:.1f} | {100 * gf / ceiling:.0f}% | {_n(s_plain)} | {_n(m['eager'] / s_plain, '.2f')} |"
              f" {_n(s_foreach)} |" + "".join(f" {_n(m[mode])} |" for mode in modes) + f" {best} |")
        dump()
    rates = {case: m[best_mode(m)] for case, m in measured.items()}  # each case's best mode
    if set(CASES) <= set(rates):
        hours["one job"] = paper_fig2_hours(rates)
        how = "eager" if not modes else "best mode per case: " + ", ".join(f"{c} {best_mode(m)}" for c, m in measured.items())
        print(f"\npaper-scale Figure 2 on this device, one job at a time: {hours['one job']:.1f} h of training ({how})")
    if a.jobs:
        print(f"\n{a.jobs} one-thread jobs at once ({a.jobs_mode}):\n\n| case | samples/s per job | total samples/s | total / one job above | step |\n|---|---|---|---|---|")
        for case, m in measured.items():
            mode = best_mode(m) if a.jobs_mode == "best" else a.jobs_mode
            each = concurrent(case, a.device, a.seconds, a.jobs, compile_mode=a.compile_mode, **MODES[mode])
            jobs[case] = {"mode": mode, "each": each, "total": sum(each)}
            one = m.get(mode, float("nan"))
            print(f"| {case} | {' + '.join(f'{r:,.0f}' for r in each)} | {sum(each):,.0f} | {_n(sum(each) / one, '.2f')} | {mode} |")
            dump()
        if set(CASES) <= set(jobs):
            hours[f"{a.jobs} jobs"] = paper_fig2_hours({c: j["total"] for c, j in jobs.items()})
            print(f"\npaper-scale Figure 2 on this device, {a.jobs} jobs at a time: {hours[f'{a.jobs} jobs']:.1f} h of training")
    if hours:
        way = min(hours, key=hours.get)
        print(f"\npaper-scale Figure 2, best measured way on this device ({way}): {hours[way]:.2f} h of training"
              f" ({3.3e9 / hours[way] / 3600:,.0f} samples/s over the 3.3e9)")
    is_rate = is_throughput(a.device, a.is_n, a.is_k) if a.is_n else 0.0
    if is_rate:
        print(f"\nIS log p(x), MNIST n_z=20, n={a.is_n}, k={a.is_k}: {is_rate:,.0f} datapoint-samples/s")
    if a.run_budget:
        print(f"\nwhole run, MNIST n_z=20, {a.run_budget:,} samples, parquet + W&B {a.run_wandb} (seconds; % of training):\n")
        print("| evaluation | training | evaluation | logging | set-up | eval + logging |")
        print("|---|---|---|---|---|---|")
        for evals in filter(None, a.run_evals.split(",")):
            m = run_split(a.device, a.run_budget, evals, a.run_wandb)
            if not m:
                print("(no MNIST under $REPRODUCE_DATA: whole-run split skipped)")
                break
            pct = lambda v: f"{v:.1f} ({100 * v / m['train']:.0f}%)"
            print(f"| {evals} | {m['train']:.1f} ({m['rate']:,.0f}/s) | {pct(m['eval'])} | {pct(m['log'])} | {m['setup']:.1f} |"
                  f" {100 * (m['eval'] + m['log']) / m['train']:.0f}% |")
    dump()
    if is_rate and "mnist-nz20" in rates:
        train_h, eval_h = paper_run_overhead(a.device, rates["mnist-nz20"], is_rate)
        print(f"\npaper-scale MNIST n_z=20 run (2.5e8 samples, default eval), estimated from the rates above:"
              f" training {train_h:.2f} h, evaluation {eval_h:.2f} h ({100 * eval_h / train_h:.0f}%)")


if __name__ == "__main__":
    main()
