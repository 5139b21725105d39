"""A job's identity and files: the run id (keyed by what the job is, not where or how it runs), the results,
meta, weights and checkpoint paths, a finished run found by its stored config, and atomic writes."""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import yaml

from reproduce import results
from reproduce.config import Config, flatten, plain
from reproduce.results import WHEN_ABSENT

REPO = Path(__file__).resolve().parent.parent

# Settings that say how a job runs or where its outputs go, not what it computes: left out of its identity.
NOT_IDENTITY = ("log.", "train.log_every", "train.threads", "train.checkpoint_every", "train.compile", "train.cuda_graph",
                "eval.chunk", "eval.compile")
# Where a job runs: held at these values inside the identity (the values every published run was made with),
# so that run ids made before these keys left the identity stay valid.
PLACE = {"dataset.root": None, "device": "cpu"}
# Keys left out of the run id's digest while at these values (keys added after runs were published with them), so
# that a job's id, and the checkpoint it resumes from, stay the same across that addition.
DIGEST_OMITS = {"train.precision": "fp32"}
# Command-line overrides that choose neither what a job is nor are config keys of it.
NOT_IN_NAME = ("sweep", "launcher", "hydra.")


def is_identity_key(key: str) -> bool:
    """Whether a flattened config key is part of what a job is (the one list behind run ids and job names)."""
    return not key.startswith(NOT_IDENTITY) and key not in PLACE


def identity(cfg: Config) -> dict[str, Any]:
    """The settings that make a job what it is: the resolved config less how and where it runs."""
    flat = flatten(plain(cfg))
    return {k: PLACE.get(k, v) for k, v in flat.items() if not k.startswith(NOT_IDENTITY)}


def schema_defaults(cfg: Config) -> dict[str, Any]:
    """The schema default of every identity key, for the config sections this job uses."""
    sections = {f.name: type(getattr(cfg, f.name))() for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, f.name))}
    top = {f.name: f.default for f in dataclasses.fields(cfg) if f.name not in sections}
    return {k: v for k, v in flatten(plain({**top, **sections})).items() if is_identity_key(k)}


def same_job(stored: dict, cfg: Config) -> bool:
    """A stored resolved config is this job: equal on every identity key it has; keys added to the schema
    since it was written must be at their defaults (so results survive new options)."""
    stored, defaults = flatten(stored), {**schema_defaults(cfg), **WHEN_ABSENT}
    return all(stored.get(k, defaults.get(k)) == v for k, v in identity(cfg).items() if is_identity_key(k))


def run_prefix(cfg: Config) -> str:
    n = "" if cfg.dataset.n_train is None else f"-n{cfg.dataset.n_train}"
    return f"{cfg.dataset.name.value}-{cfg.algorithm.name}-nz{cfg.model.n_z}{n}-s{cfg.seed}"


def run_id(cfg: Config) -> str:
    """Readable and keyed by the job's identity: the same job has the same id wherever it runs."""
    keyed = {k: v for k, v in identity(cfg).items() if DIGEST_OMITS.get(k, object()) != v}
    digest = hashlib.sha1(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:8]
    return f"{run_prefix(cfg)}-{digest}"


def job_name(overrides: list[str]) -> str:
    """A job's readable name (W&B run name) from its command-line overrides: those that say what it is."""
    def key(o: str) -> str:
        return o.split("=", 1)[0].lstrip("+~")

    kept = [o.lstrip("+~") for o in overrides if is_identity_key(key(o)) and not key(o).startswith(NOT_IN_NAME)]
    return ",".join(sorted(kept, key=key))


@functools.cache
def git_commit() -> str:
    """HEAD of the suite's repository, with '-dirty' when tracked files differ from it; read once per process,
    at the first job's start, so a long sweep records the code it runs even if HEAD moves meanwhile."""
    try:
        git = ["git", "-C", str(REPO)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "-uno"], capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write through a temporary file and rename, so a crash never leaves a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


class Job:
    """Paths and identity of one job: <results_dir>/<sweep>/<run_id>.{parquet,yaml,weights.pt} and
    <checkpoint_dir>/<sweep>/<run_id>.pt, relative to root (the directory the command started in)."""

    def __init__(self, cfg: Config, root: Path = Path(".")):
        self.cfg, self.id = cfg, run_id(cfg)
        self.results = root / cfg.log.results_dir / cfg.log.sweep
        self.parquet = self.results / f"{self.id}.parquet"
        self.meta = self.results / f"{self.id}.yaml"
        self.weights = self.results / f"{self.id}.weights.pt"
        self.checkpoint = root / cfg.log.checkpoint_dir / cfg.log.sweep / f"{self.id}.pt"

    def finished(self) -> Path | None:
        """The results of a finished run of this job, found by its stored config (same_job), so that results
        written before an option was added to the schema are still recognised. A finished run whose files
        cannot be read is reported and not counted: the job runs again."""
        for meta in sorted(self.results.glob(f"{run_prefix(self.cfg)}-*.yaml")):
            run = results.read(meta)
            if run is None:
                print(f"[reproduce] {meta} cannot be read; not counted as a finished run", file=sys.stderr)
                continue
            if run.meta.get("status") == "done" and same_job(run.stored, self.cfg):
                try:
                    run.rows(columns=["n_seen"])
                except Exception as e:
                    print(f"[reproduce] the results of finished run {run.run_id} cannot be read ({run.parquet}: "
                          f"{type(e).__name__}); training the job again", file=sys.stderr)
                    continue
                return run.parquet
        return None

    def write_meta(self, **meta: Any) -> None:
        """The resolved config and the git commit beside the job's results."""
        doc = {"meta": {"commit": git_commit(), "run_id": self.id, **meta}, "config": plain(self.cfg)}
        atomic_write(self.meta, lambda p: p.write_text(yaml.safe_dump(doc, sort_keys=False)))

    def remove_leftovers(self) -> None:
        """Temporary files of an atomic write that a crash interrupted: never read, so removed."""
        for path in (self.parquet, self.meta, self.weights, self.checkpoint):
            path.with_name(path.name + ".tmp").unlink(missing_ok=True)
