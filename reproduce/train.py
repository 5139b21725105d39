"""The training loop: minibatches by random index, scheduled evaluation, checkpoints and resume."""
from __future__ import annotations

import math
import os
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from reproduce import algorithms, data as data_mod, graphed, models
from reproduce.config import Config, ConfigError, Precision, ReproduceError, check_device
from reproduce.evaluate import evaluate, schedule, splits as eval_splits
from reproduce.jobs import Job, atomic_write
from reproduce.protocol import Algorithm
from reproduce.sinks import Sinks, row, run_columns

PROGRESS_EVERY_S = 20.0  # seconds between progress notes in the job's meta file (read by a sweep's monitor)
MANY_EVALUATIONS = 200  # a schedule of more evaluation points is named before training (each is a pass over the data)


class CheckpointError(ReproduceError, RuntimeError):
    """A checkpoint that cannot be read; the message names the file and what to do."""


@dataclass
class TrainState:
    """Where a job stands: samples seen, result rows so far, wall time, its W&B run id. Saved with the
    algorithm's state and the random generator in the job's checkpoint, and resumed from it."""

    n_seen: int = 0
    rows: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    wandb_id: str = ""

    @classmethod
    def resume(cls, job: Job, algorithm, gen: torch.Generator) -> "TrainState":
        """The state in the job's checkpoint, loaded into algorithm and gen; a fresh state where there is none."""
        if not job.checkpoint.exists():
            return cls(wandb_id=f"{job.id}-{int(time.time())}")
        try:
            saved = torch.load(job.checkpoint, weights_only=False)
            algorithm.load_state_dict(saved["algorithm"])
            gen.set_state(saved["generator"])
        except Exception as e:
            raise CheckpointError(
                f"the checkpoint {job.checkpoint} cannot be read ({type(e).__name__}: {e}). Delete it to train "
                f"this job again from zero, or restore a good copy of it to resume.") from e
        print(f"[reproduce] resuming {job.id} at {saved['n_seen']} samples", file=sys.stderr)
        return cls(**{k: saved[k] for k in ("n_seen", "rows", "wall_s", "wandb_id")})

    def save(self, job: Job, algorithm, gen: torch.Generator) -> None:
        state = {"algorithm": algorithm.state_dict(), "generator": gen.get_state(), **asdict(self)}
        atomic_write(job.checkpoint, lambda p: torch.save(state, p))


class Clock:
    """Seconds spent per phase (train is the remainder), for a run's time split."""

    def __init__(self, wall0: float = 0.0):
        self.t0, self.start, self.spent = time.time() - wall0, time.time(), defaultdict(float)

    @contextmanager
    def phase(self, name: str):
        t = time.time()
        yield
        self.spent[name] += time.time() - t

    def wall(self) -> float:
        """Wall time of the job, its resumed parts included."""
        return time.time() - self.t0

    def train_s(self) -> float:
        """Training time since this process started (or resumed) the job."""
        return time.time() - self.start - sum(self.spent.values())


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


def check_batch(cfg: Config, n_train: int) -> None:
    """A minibatch larger than the training set would repeat points within every step."""
    if cfg.train.batch_size > n_train:
        raise ConfigError(f"config value train.batch_size={cfg.train.batch_size} is invalid: larger than the "
                         f"{n_train} training points of {cfg.dataset.name.value}")


def machine_memory(device: str) -> int | None:
    """Bytes of memory where a job runs: the machine's RAM for the CPU, the GPU's own for CUDA; None where
    unknown (no such GPU here, e.g. a login node submitting GPU jobs, or no sysconf)."""
    d = torch.device(device)
    if d.type == "cuda":
        visible = torch.cuda.is_available() and (d.index or 0) < torch.cuda.device_count()
        return torch.cuda.get_device_properties(d.index or 0).total_memory if visible else None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if d.type == "cpu" else None
    except (AttributeError, ValueError, OSError):
        return None


def preflight(cfg: Config) -> None:
    """What a job will cost, checked before it runs (cli.py; callbacks.ValidateSweep for every job of a sweep),
    not when stored results are read: a model whose training step does not fit this machine's memory is
    refused, with the estimate; a schedule of many evaluations, or one that starts past the budget, is named."""
    m, e, t = cfg.model, cfg.eval, cfg.train
    rows = t.batch_size * max(getattr(cfg.algorithm, "L", 1), getattr(cfg.algorithm, "K", 1))  # datapoint-samples per step
    need = models.training_bytes(m, math.prod(data_mod.IMAGE_SHAPE[cfg.dataset.name.value]), rows)
    have = machine_memory(cfg.device)
    if have is not None and need > have:
        raise ConfigError(f"config value model.n_z={m.n_z} is invalid with model.n_hidden={m.n_hidden}: one training step "
                          f"needs about {need / 2**30:.1f} GiB (parameters, gradients, Adagrad state and a minibatch's "
                          f"activations), more than the {have / 2**30:.1f} GiB of memory of {cfg.device} here")
    n = len(schedule(cfg))
    if n > MANY_EVALUATIONS:
        print(f"[reproduce] note: {n} evaluations (eval.start={e.start} to train.budget={t.budget}, "
              f"{f'eval.every={e.every}' if e.every else f'eval.per_decade={e.per_decade}'}), each a pass over the "
              "evaluation sets: they will take most of the job's time", file=sys.stderr)
    if e.start > t.budget:
        print(f"[reproduce] note: eval.start={e.start} is past train.budget={t.budget}: one evaluation, at the end",
              file=sys.stderr)


def run(cfg: Config, root: Path = Path("."), name: str | None = None) -> Path | None:
    """Train one job to cfg.train.budget samples, evaluating on the log-spaced schedule; resumes from
    its checkpoint and skips a finished job. Returns the results parquet path, or None where the job is
    running elsewhere (another process holds its lock: it is skipped, not waited for)."""
    job = Job(cfg, root)
    with job.lock() as mine:
        if not mine:
            print(f"[reproduce] {job.id} is running elsewhere (another process holds its lock {job.lock_file}); "
                  "skipped: rerun when it has ended to use its results", file=sys.stderr)
            return None
        if done := job.finished():
            print(f"[reproduce] {job.id} already finished: {done}", file=sys.stderr)
            return done
        return train_job(cfg, job, name)


def train_job(cfg: Config, job: Job, name: str | None) -> Path:
    """run() under the job's lock: load, resume, train, and mark the job done (or failed)."""
    check_device(cfg.device)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.seed)
    data = data_mod.load(cfg.dataset, cfg.device)
    check_batch(cfg, len(data.train))
    encoder, decoder = (m.to(cfg.device) for m in models.build(cfg.model, data.n_x))
    gen = torch.Generator(cfg.device).manual_seed(cfg.seed)
    algorithm = algorithms.build(cfg, encoder, decoder, len(data.train), gen)
    job.remove_leftovers()
    state = TrainState.resume(job, algorithm, gen)
    job.write_meta(status="running", n_seen=state.n_seen, budget=cfg.train.budget, n_start=state.n_seen)
    sinks = Sinks(cfg, job, state.rows, name or job.id, state.wandb_id, job.root)
    try:
        summary = train_loop(cfg, job, data, algorithm, gen, state, sinks)
    except BaseException as e:
        job.write_meta(status="failed", n_seen=state.n_seen, budget=cfg.train.budget, error=repr(e))
        sinks.finish(exit_code=1)
        raise
    if cfg.log.save_weights:
        weights = {"encoder": encoder.state_dict(), "decoder": decoder.state_dict()}
        atomic_write(job.weights, lambda p: torch.save(weights, p))
    job.write_meta(status="done", **summary)
    sinks.finish(exit_code=0, summary=summary)
    job.checkpoint.unlink(missing_ok=True)
    return job.parquet


def plain_step(algorithm, train_x: torch.Tensor, M: int, dynamic: bool, gen: torch.Generator):
    """Sec. 5: a step on M random training points (with replacement), binarized afresh if dynamic."""
    def step() -> dict[str, torch.Tensor]:
        idx = torch.randint(0, len(train_x), (M,), generator=gen, device=train_x.device)
        x = train_x[idx]  # [M, n_x]
        if dynamic:
            x = torch.bernoulli(x, generator=gen)
        return algorithm.step(x, idx)
    return step


def autocast(cfg: Config):
    """The step's matrix products in bfloat16 under train.precision=bf16 (float32 weights, optimizer state and
    reductions: models.py casts every Linear output back to float32); a no-op context under fp32."""
    return torch.autocast(torch.device(cfg.device).type, dtype=torch.bfloat16, enabled=cfg.train.precision is Precision.bf16)


def train_loop(cfg: Config, job: Job, data, algorithm: Algorithm, gen: torch.Generator, state: TrainState, sinks: Sinks) -> dict:
    """Sec. 5: M random training points per step, n_seen += M (x count); evaluation and checkpoints by n_seen."""
    M, budget = cfg.train.batch_size, cfg.train.budget
    per_step = M * algorithm.count  # training samples counted per step
    sets, train_x, dynamic = eval_splits(data, cfg), data.train, data.binarize_dynamic
    columns = run_columns(cfg, job.id)  # of every result row
    points = [p for p in schedule(cfg) if p > state.n_seen]
    n_start, step, next_ckpt, clock = state.n_seen, state.n_seen // per_step, state.n_seen + cfg.train.checkpoint_every, Clock(state.wall_s)
    last, last_eval, noted = {}, {}, time.time()
    bar = tqdm(total=budget, initial=state.n_seen, unit="sample", unit_scale=True, disable=not cfg.log.progress,
               desc=job.id, mininterval=1.0, file=sys.stderr)
    # one training step: the plain one, or the same draws and update replayed from one CUDA graph
    take_step = (graphed.GraphedStep if cfg.train.cuda_graph else plain_step)(algorithm, train_x, M, dynamic, gen)
    while points:
        with autocast(cfg):
            metrics = take_step()
        state.n_seen, step = state.n_seen + per_step, step + 1
        if step % cfg.train.log_every == 0:
            m = {k: v.item() for k, v in metrics.items()}  # the loop's only host sync between evaluations
            check_finite(m, step, state.n_seen)
            bar.update(state.n_seen - bar.n)
            bar.set_postfix(loss=f"{m['loss']:.2f}", **{k: f"{v:.2f}" for k, v in last.items()}, refresh=False)
            if time.time() - noted > PROGRESS_EVERY_S:
                with clock.phase("log"):
                    job.write_meta(status="running", n_seen=state.n_seen, budget=budget, n_start=n_start)
                noted = time.time()
        if state.n_seen >= points[0]:
            points.pop(0)
            with clock.phase("eval"):
                last_eval = evaluate(algorithm, sets, cfg, state.n_seen, final=not points)
            check_finite({f"{s}/{k}": v for (s, k), v in last_eval.items()}, step, state.n_seen)
            with clock.phase("log"):
                sinks.write([row(columns, state.n_seen, s, k, v, clock.wall()) for (s, k), v in last_eval.items()])
            last = {f"{s}_lb": v for (s, k), v in last_eval.items() if k == "lower_bound"}
            next_ckpt = state.n_seen  # checkpoint right after every evaluation, so its rows are never redone
        if state.n_seen >= next_ckpt:
            with clock.phase("log"):
                check_parameters(algorithm, step, state.n_seen)
                state.rows, state.wall_s = sinks.rows, clock.wall()
                state.save(job, algorithm, gen)
                job.write_meta(status="running", n_seen=state.n_seen, budget=budget, n_start=n_start)
            next_ckpt = state.n_seen + cfg.train.checkpoint_every
    bar.update(state.n_seen - bar.n)
    bar.close()
    return {"n_seen": state.n_seen, "n_start": n_start, "wall_s": round(clock.wall(), 2), "eval_s": round(clock.spent["eval"], 2),
            "log_s": round(clock.spent["log"], 2),
            "train_samples_per_s": round((state.n_seen - n_start) / max(clock.train_s(), 1e-9), 1),
            **{f"{s}_{k}": v for (s, k), v in last_eval.items()}}
