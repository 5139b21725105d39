"""A job's identity and files: the run id (keyed by what the job is, not where or how it runs), the results,
meta, weights, checkpoint and lock paths, a finished run found by its stored config, one writer per job (its
lock), and atomic writes."""
from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import json
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import filelock
import yaml

from reproduce.config import WHEN_ABSENT, Config, SweepError, flatten, plain

REPO = Path(__file__).resolve().parent.parent

# Settings that say how a job runs or where its outputs go, not what it computes: left out of its identity.
NOT_IDENTITY = ("log.", "train.log_every", "train.threads", "train.checkpoint_every", "train.compile", "train.cuda_graph",
                "eval.chunk", "eval.compile")
# Where a job runs: held at these values inside the identity (the values every published run was made with),
# so that run ids made before these keys left the identity stay valid.
PLACE = {"dataset.root": None, "device": "cpu"}
# Keys left out of the run id's digest while at these values (keys added after runs were published with them), so
# that a job's id, and the checkpoint it resumes from, stay the same across that addition.
DIGEST_OMITS = {"train.precision": "fp32", "algorithm.theta_noise": "minibatch"}
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
    at the first job's start, so a long sweep records the code it runs even if HEAD moves meanwhile. The
    checkpoints/ folder does not count: a long run's unfinished jobs commit their checkpoints there so that any
    checkout resumes them (results/make_paper_end.sh), and each job then rewrites its own. A copy of
    the suite whose .git is absent or stale (a device machine, a container) records $REPRODUCE_COMMIT instead,
    which whoever made the copy sets (results/make_fig2_1e8_gpu.sh, after checking every file against the
    commit's blobs)."""
    if os.environ.get("REPRODUCE_COMMIT"):
        return os.environ["REPRODUCE_COMMIT"]
    try:
        git = ["git", "-C", str(REPO)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "-uno", "--", ".", ":!checkpoints"], capture_output=True,
                               text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


class ResultsError(SweepError):
    """A results or checkpoint folder that cannot be made or written; the message names it and the setting."""


def temporary(path: Path) -> Path:
    """A name beside path that no other writer uses (pid and a random part): <name>.<pid>-<hex>.tmp."""
    return path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write through a temporary file of a unique name and rename, so that a crash never leaves a partial file
    and two writers never rename each other's file; a write that fails removes its temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Job:
    """Paths and identity of one job: <results_dir>/<sweep>/<run_id>.{parquet,yaml,weights.pt} and
    <checkpoint_dir>/<sweep>/<run_id>.pt, relative to root (the directory the command started in)."""

    def __init__(self, cfg: Config, root: Path = Path(".")):
        self.cfg, self.id, self.root = cfg, run_id(cfg), root
        self.results = root / cfg.log.results_dir / cfg.log.sweep
        self.parquet = self.results / f"{self.id}.parquet"
        self.meta = self.results / f"{self.id}.yaml"
        self.weights = self.results / f"{self.id}.weights.pt"
        self.checkpoint = root / cfg.log.checkpoint_dir / cfg.log.sweep / f"{self.id}.pt"
        self.lock_file = self.results / f"{self.id}.lock"

    def make_folders(self) -> None:
        """The results and checkpoint folders, or a ResultsError naming the setting (e.g. a file in the way)."""
        for folder, key in ((self.results, "log.results_dir"), (self.checkpoint.parent, "log.checkpoint_dir")):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                value = getattr(self.cfg.log, key.split(".")[1])
                raise ResultsError(f"cannot make the folder {folder} ({key}={value}): {e.strerror or e}. "
                                   f"Set {key} to a folder you can write to.") from e

    @contextmanager
    def lock(self) -> Iterator[bool]:
        """Hold this job's lock for the block, yielding True; False (not held) where another process holds it.

        One writer per job: a run holds it from before it reads the job's files until it is done with them. It
        is an OS file lock (fcntl.flock through filelock), which the OS releases when its process ends, however
        it ends (kill -9 included): a lock file left by a dead run is free and taken over, never waited for."""
        self.make_folders()
        held = filelock.FileLock(self.lock_file, timeout=0)
        try:
            held.acquire()
            mine = True
        except filelock.Timeout:
            mine = False
        try:
            yield mine
        finally:
            if mine:
                held.release()

    def running_elsewhere(self) -> bool:
        """Whether another process holds this job's lock now."""
        with self.lock() as mine:
            return not mine

    def finished(self) -> Path | None:
        """The results of a finished run of this job, found by its stored config (same_job), so that results
        written before an option was added to the schema are still recognised. A finished run whose files
        cannot be read is reported and not counted: the job runs again."""
        from reproduce import results  # here, not at the top: the command line starts without pandas

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
        """Temporary files of atomic writes that a crash interrupted: never read, so removed (under the job's
        lock, so no live writer's)."""
        for path in (self.parquet, self.meta, self.weights, self.checkpoint):
            for tmp in path.parent.glob(glob.escape(path.name) + "*.tmp"):  # <name>.tmp (older) and <name>.<pid>-<hex>.tmp
                tmp.unlink(missing_ok=True)
