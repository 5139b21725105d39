"""Where result rows go, each with write(rows): tidy parquet (the science) and W&B (a mirror of it)."""
from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from reproduce.config import Config, WandbMode, plain
from reproduce.jobs import Job, atomic_write
from reproduce.results import COLUMNS


def run_columns(cfg: Config, run_id: str) -> dict[str, Any]:
    """The columns every result row of one job shares (COLUMNS up to seed)."""
    return {"run_id": run_id, "sweep": cfg.log.sweep, "dataset": cfg.dataset.name.value, "algorithm": cfg.algorithm.name,
            "n_z": cfg.model.n_z, "n_train": cfg.dataset.n_train, "seed": cfg.seed}


def row(run: dict[str, Any], n_seen: int, split: str, metric: str, value: float, wall_s: float) -> dict[str, Any]:
    """One tidy result row (COLUMNS): the job's columns (run_columns) and one evaluated value."""
    return {**run, "n_seen": n_seen, "split": split, "metric": metric, "value": value, "wall_s": wall_s}


class ParquetSink:
    """All rows of one job in <results>/<sweep>/<run_id>.parquet, rewritten atomically at each write."""

    def __init__(self, path: Path, rows: list[dict] | None = None):
        self.path, self.rows = path, list(rows or [])

    def write(self, rows: list[dict]) -> None:
        self.rows += rows
        frame = pd.DataFrame(self.rows, columns=COLUMNS)
        atomic_write(self.path, lambda p: frame.to_parquet(p, index=False))


def wandb_mode(requested: WandbMode) -> str:
    """auto: online when an API key is known (env or ~/.netrc), else offline; never a login prompt."""
    if requested is not WandbMode.auto:
        return requested.value
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        return "online" if netrc.netrc().authenticators("api.wandb.ai") else "offline"
    except (OSError, netrc.NetrcParseError):
        return "offline"


class WandbSink:
    """One W&B run per job, mirroring the parquet rows with samples seen as the step axis."""

    def __init__(self, cfg: Config, name: str, wandb_id: str, directory: Path):
        import wandb

        directory.mkdir(parents=True, exist_ok=True)
        kwargs = dict(project=cfg.log.wandb_project, id=wandb_id, resume="allow", name=name, group=cfg.log.sweep,
                      job_type=cfg.algorithm.name, config=plain(cfg), dir=str(directory),
                      tags=[cfg.dataset.name.value, cfg.algorithm.name, f"n_z={cfg.model.n_z}"])
        mode = wandb_mode(cfg.log.wandb)
        try:
            self.run = wandb.init(mode=mode, settings=wandb.Settings(silent=True, init_timeout=60), **kwargs)
        except Exception as e:  # a key but no network: keep the run offline rather than lose or stall the job
            if mode != "online":
                raise
            print(f"[reproduce] W&B online init failed ({e}); logging offline instead", file=sys.stderr)
            self.run = wandb.init(mode="offline", settings=wandb.Settings(silent=True), **kwargs)
        self.run.define_metric("n_seen")
        self.run.define_metric("*", step_metric="n_seen")

    def write(self, rows: list[dict]) -> None:
        logged: dict[str, Any] = {}
        for r in rows:
            logged[f"{r['split']}/{r['metric']}"] = r["value"]
            logged["n_seen"] = r["n_seen"]
        self.run.log(logged)

    def finish(self, exit_code: int = 0, summary: dict | None = None, rows: list[dict] | None = None) -> None:
        """Final estimates into the summary, the job's curves as an image; always finishes the run."""
        import wandb

        try:
            self.run.summary.update(summary or {})
            if rows:
                self.run.log({"curves": wandb.Image(curve_figure(rows))})
        finally:
            self.run.finish(exit_code=exit_code)


class Sinks:
    """A job's sinks by name: the parquet file (always) and its W&B run (unless log.wandb=disabled)."""

    def __init__(self, cfg: Config, job: Job, rows: list[dict], name: str, wandb_id: str, root: Path):
        self.parquet = ParquetSink(job.parquet, rows)
        self.wandb = None if cfg.log.wandb is WandbMode.disabled else WandbSink(cfg, name, wandb_id, root)

    @property
    def rows(self) -> list[dict]:
        return self.parquet.rows

    def write(self, rows: list[dict]) -> None:
        self.parquet.write(rows)
        if self.wandb:
            self.wandb.write(rows)

    def finish(self, exit_code: int, summary: dict | None = None) -> None:
        if self.wandb:
            final = {f"final/{k}": v for k, v in (summary or {}).items()}
            self.wandb.finish(exit_code=exit_code, summary=final, rows=self.rows if exit_code == 0 else None)


def curve_figure(rows: list[dict]):
    """The job's metrics against samples seen (log x), train solid and test dashed, as in Figure 2."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    df = pd.DataFrame(rows, columns=COLUMNS)
    grid = sns.relplot(df, kind="line", x="n_seen", y="value", style="split", col="metric",
                       facet_kws={"sharey": False}, height=3, style_order=["train", "test"])
    grid.set(xscale="log", xlabel="# training samples evaluated")
    return grid.figure
