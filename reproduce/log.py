"""Result sinks with one method, write(rows): tidy parquet (the science) and W&B (a mirror of it)."""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import netrc
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from reproduce.config import Config

COLUMNS = ["run_id", "sweep", "dataset", "algorithm", "n_z", "n_train", "seed", "n_seen", "split", "metric", "value", "wall_s"]
REPO = Path(__file__).resolve().parent.parent


def plain(cfg: Any) -> Any:
    """A config dataclass as plain dicts, lists and strings (enums by value)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, enum.Enum):
        return cfg.value
    return cfg


def run_id(cfg: Config) -> str:
    """Readable and keyed by the resolved config (logging options excluded): same config, same id."""
    d = plain(cfg)
    d.pop("log")
    for k in ("log_every", "threads", "checkpoint_every"):
        d["train"].pop(k)
    digest = hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:8]
    n = "" if cfg.dataset.n_train is None else f"-n{cfg.dataset.n_train}"
    return f"{cfg.dataset.name.value}-{cfg.algorithm.name}-nz{cfg.model.n_z}{n}-s{cfg.seed}-{digest}"


def git_commit() -> str:
    """HEAD of the suite's repository, with '-dirty' when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "-uno"], capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def atomic_write(path: Path, write) -> None:
    """Write through a temporary file and rename, so a crash never leaves a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


class ParquetSink:
    """All rows of one job in results/<sweep>/<run_id>.parquet, rewritten atomically at each write."""

    def __init__(self, path: Path, rows: list[dict] | None = None):
        self.path, self.rows = path, list(rows or [])

    def write(self, rows: list[dict]) -> None:
        self.rows += rows
        frame = pd.DataFrame(self.rows, columns=COLUMNS)
        atomic_write(self.path, lambda p: frame.to_parquet(p, index=False))


def write_meta(path: Path, cfg: Config, **meta: Any) -> None:
    """The resolved config and the git commit beside the job's results."""
    doc = {"meta": {"commit": git_commit(), **meta}, "config": plain(cfg)}
    atomic_write(path, lambda p: p.write_text(yaml.safe_dump(doc, sort_keys=False)))


def wandb_mode(requested: str) -> str:
    """auto: online when an API key is known (env or ~/.netrc), else offline; never a login prompt."""
    if requested != "auto":
        return requested
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
        self.run = wandb.init(
            project=cfg.log.wandb_project, id=wandb_id, resume="allow", mode=wandb_mode(cfg.log.wandb),
            name=name, group=cfg.log.sweep, job_type=cfg.algorithm.name, config=plain(cfg), dir=str(directory),
            tags=[cfg.dataset.name.value, cfg.algorithm.name, f"n_z={cfg.model.n_z}"],
            settings=wandb.Settings(silent=True, init_timeout=60),
        )
        self.run.define_metric("n_seen")
        self.run.define_metric("*", step_metric="n_seen")

    def write(self, rows: list[dict]) -> None:
        logged: dict[str, Any] = {}
        for r in rows:
            logged[f"{r['split']}/{r['metric']}"] = r["value"]
            logged["n_seen"] = r["n_seen"]
        self.run.log(logged)

    def finish(self, exit_code: int = 0, summary: dict | None = None) -> None:
        self.run.summary.update(summary or {})
        self.run.finish(exit_code=exit_code)
