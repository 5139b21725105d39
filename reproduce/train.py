"""The training loop: minibatches by random index, scheduled evaluation, checkpoints and resume."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from reproduce import algorithms, data as data_mod, graphed, models
from reproduce.evaluate import evaluate, schedule, splits as eval_splits
from reproduce.config import Config, check_device
from reproduce.log import ParquetSink, WandbSink, atomic_write, run_id as make_run_id, run_prefix, same_job, write_meta


class Job:
    """Paths and identity of one job: results/<sweep>/<run_id>.{parquet,yaml}, checkpoints/<sweep>/<run_id>.pt."""

    def __init__(self, cfg: Config, root: Path):
        self.id = make_run_id(cfg)
        self.results = root / cfg.log.results_dir / cfg.log.sweep
        self.parquet = self.results / f"{self.id}.parquet"
        self.meta = self.results / f"{self.id}.yaml"
        self.checkpoint = root / cfg.log.checkpoint_dir / cfg.log.sweep / f"{self.id}.pt"
        self.weights = self.results / f"{self.id}.weights.pt"

    def finished(self, cfg: Config) -> Path | None:
        """The results of a finished run of this job, found by its resolved config (log.same_job), so that
        results written before an option was added to the schema are still recognised."""
        for meta in sorted(self.results.glob(f"{run_prefix(cfg)}-*.yaml")):
            doc = yaml.safe_load(meta.read_text())
            if doc["meta"].get("status") == "done" and same_job(doc["config"], cfg):
                return meta.with_suffix(".parquet")
        return None


def save_checkpoint(job: Job, algorithm, gen: torch.Generator, n_seen: int, rows: list, wall_s: float, wandb_id: str) -> None:
    job.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    state = {"algorithm": algorithm.state_dict(), "generator": gen.get_state(), "n_seen": n_seen,
             "rows": rows, "wall_s": wall_s, "wandb_id": wandb_id}
    atomic_write(job.checkpoint, lambda p: torch.save(state, p))


def check_finite(metrics: dict[str, float], step: int, n_seen: int) -> None:
    for name, value in metrics.items():
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite {name}={value} at step {step} ({n_seen} samples seen)")


def check_parameters(algorithm, step: int, n_seen: int) -> None:
    """Before a checkpoint, so that a NaN state is never saved (one host sync per parameter tensor)."""
    for net in (algorithm.encoder, algorithm.decoder):
        for name, p in (net.named_parameters() if net is not None else ()):
            if not torch.isfinite(p).all():
                raise FloatingPointError(f"non-finite parameter {type(net).__name__}.{name} at step {step} ({n_seen} samples seen)")


def run(cfg: Config, root: Path = Path("."), name: str | None = None) -> Path:
    """Train one job to cfg.train.budget samples, evaluating on the log-spaced schedule; resumes from
    its checkpoint and skips a finished job. Returns the results parquet path."""
    job = Job(cfg, root)
    if done := job.finished(cfg):
        print(f"[reproduce] {job.id} already finished: {done}", file=sys.stderr)
        return done
    check_device(cfg.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    data = data_mod.load(cfg.dataset, cfg.device)
    encoder, decoder = (m.to(cfg.device) for m in models.build(cfg.model, data.n_x))
    gen = torch.Generator(cfg.device).manual_seed(cfg.seed)
    algorithm = algorithms.build(cfg, encoder, decoder, len(data.train), gen)
    n_seen, rows, wall0, wandb_id = 0, [], 0.0, f"{job.id}-{int(time.time())}"
    if job.checkpoint.exists():
        state = torch.load(job.checkpoint, weights_only=False)
        algorithm.load_state_dict(state["algorithm"])
        gen.set_state(state["generator"])
        n_seen, rows, wall0, wandb_id = state["n_seen"], state["rows"], state["wall_s"], state["wandb_id"]
        print(f"[reproduce] resuming {job.id} at {n_seen} samples", file=sys.stderr)
    write_meta(job.meta, cfg, status="running", run_id=job.id)
    sinks = [ParquetSink(job.parquet, rows)]
    if cfg.log.wandb != "disabled":
        sinks.append(WandbSink(cfg, name or job.id, wandb_id, root))
    try:
        summary = train_loop(cfg, job, data, algorithm, gen, sinks, n_seen, wall0, wandb_id)
    except BaseException as e:
        write_meta(job.meta, cfg, status="failed", run_id=job.id, error=repr(e))
        for s in sinks[1:]:
            s.finish(exit_code=1)
        raise
    if cfg.log.save_weights:
        torch.save({"encoder": encoder.state_dict(), "decoder": decoder.state_dict()}, job.weights)
    write_meta(job.meta, cfg, status="done", run_id=job.id, **summary)
    for s in sinks[1:]:
        s.finish(exit_code=0, summary={f"final/{k}": v for k, v in summary.items()}, rows=sinks[0].rows)
    job.checkpoint.unlink(missing_ok=True)
    return job.parquet


def train_loop(cfg: Config, job: Job, data, algorithm, gen, sinks, n_seen: int, wall0: float, wandb_id: str) -> dict:
    """Sec. 5: M random training points per step, n_seen += M; evaluation and checkpoints by n_seen."""
    M, N, budget, log_every = cfg.train.batch_size, len(data.train), cfg.train.budget, cfg.train.log_every
    splits, train_x, dynamic = eval_splits(data, cfg), data.train, data.binarize_dynamic
    points = [p for p in schedule(cfg) if p > n_seen]
    next_ckpt = n_seen + cfg.train.checkpoint_every
    t0, step, last, last_eval = time.time() - wall0, n_seen // M, {}, {}
    n_start, t_start, eval_s, log_s = n_seen, time.time(), 0.0, 0.0
    bar = tqdm(total=budget, initial=n_seen, unit="sample", unit_scale=True, disable=not cfg.log.progress,
               desc=job.id, mininterval=1.0, file=sys.stderr)
    graphed_step = graphed.GraphedStep(algorithm, train_x, M, dynamic, gen) if cfg.train.cuda_graph else None
    while points:
        if graphed_step is not None:  # the same draws and update as below, replayed from one CUDA graph
            metrics = graphed_step()
        else:
            idx = torch.randint(0, N, (M,), generator=gen, device=train_x.device)  # with replacement
            x = train_x[idx]  # [M, n_x]
            if dynamic:
                x = torch.bernoulli(x, generator=gen)
            metrics = algorithm.step(x, idx)
        n_seen, step = n_seen + M, step + 1
        if step % log_every == 0:
            m = {k: v.item() for k, v in metrics.items()}  # the loop's only host sync between evaluations
            check_finite(m, step, n_seen)
            bar.update(n_seen - bar.n)
            bar.set_postfix(loss=f"{m['loss']:.2f}", **{k: f"{v:.2f}" for k, v in last.items()}, refresh=False)
        if n_seen >= points[0]:
            points.pop(0)
            t_eval = time.time()
            last_eval = evaluate(algorithm, splits, cfg, n_seen, final=not points)
            eval_s += time.time() - t_eval
            check_finite({f"{s}/{k}": v for (s, k), v in last_eval.items()}, step, n_seen)
            t_log = time.time()
            rows = [row(cfg, job.id, n_seen, s, k, v, time.time() - t0) for (s, k), v in last_eval.items()]
            for sink in sinks:
                sink.write(rows)
            log_s += time.time() - t_log
            last = {f"{s}_lb": v for (s, k), v in last_eval.items() if k == "lower_bound"}
            next_ckpt = n_seen  # checkpoint right after every evaluation, so its rows are never redone
        if n_seen >= next_ckpt:
            t_log = time.time()
            check_parameters(algorithm, step, n_seen)
            save_checkpoint(job, algorithm, gen, n_seen, sinks[0].rows, time.time() - t0, wandb_id)
            next_ckpt = n_seen + cfg.train.checkpoint_every
            log_s += time.time() - t_log
    bar.update(n_seen - bar.n)
    bar.close()
    train_s = time.time() - t_start - eval_s - log_s  # this session's training time
    return {"n_seen": n_seen, "wall_s": round(time.time() - t0, 2), "eval_s": round(eval_s, 2), "log_s": round(log_s, 2),
            "train_samples_per_s": round((n_seen - n_start) / max(train_s, 1e-9), 1),
            **{f"{s}_{k}": v for (s, k), v in last_eval.items()}}


def row(cfg: Config, run_id: str, n_seen: int, split: str, metric: str, value: float, wall_s: float) -> dict:
    return {"run_id": run_id, "sweep": cfg.log.sweep, "dataset": cfg.dataset.name.value, "algorithm": cfg.algorithm.name,
            "n_z": cfg.model.n_z, "n_train": cfg.dataset.n_train, "seed": cfg.seed, "n_seen": n_seen,
            "split": split, "metric": metric, "value": value, "wall_s": wall_s}
