"""A whole run's time split (training, evaluation, logging, set-up), IS log p(x) throughput, and the evaluation
cost of a paper-scale run estimated from them."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
import yaml

from reproduce import evaluate, marginal_likelihood, models, train
from reproduce.bench.timing import sync
from reproduce.config import AEVBConfig, Config, DatasetConfig, EvalConfig, LogConfig, ModelConfig, TrainConfig, WandbMode
from reproduce.data import DataError

RUN_EVALS = {  # name: eval settings of the whole-run split (bound and active units on all 60k points always)
    "curves": dict(is_k=0, is_k_final=0),  # Fig. 2's curves only
    "curves+IS": dict(is_k=0, is_k_final=100, is_subset=1000),  # and a final IS k = 100 on 1000 points
    "budget=cpu": dict(is_k=100, is_k_final=1000, is_subset=1000),  # conf/budget/cpu.yaml as shipped
}


def run_split(device: str, budget: int, evals: str, wandb: str = "offline") -> dict:
    """A whole MNIST n_z = 20 run (real data when $REPRODUCE_DATA has it) on the default log-spaced schedule,
    logging to parquet and W&B: wall time split into training, evaluation, logging (result rows and
    checkpoints) and set-up (data, W&B init and finish)."""
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
        (meta,) = Path(tmp).rglob("results/*/*.yaml")
        m = yaml.safe_load(meta.read_text())["meta"]
        train_s = m["n_seen"] / m["train_samples_per_s"]
        return {"train": train_s, "eval": m["eval_s"], "log": m["log_s"], "setup": total - train_s - m["eval_s"] - m["log_s"],
                "rate": m["train_samples_per_s"]}


def paper_run_overhead(device: str, rate: float, is_rate: float) -> tuple[float, float]:
    """Training and evaluation hours of one paper-scale MNIST n_z = 20 run (2.5e8 samples, default eval:
    the bound on all 60k points and IS k = 100 on 10k per split at each point, k = 5000 at the end), from
    the measured step rate, IS rate and a timed bound pass over 60k points."""
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
