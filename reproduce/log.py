"""Result sinks with one method, write(rows): tidy parquet (the science) and W&B (a mirror of it)."""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import netrc
import os
import subprocess
import sys
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
    if isinstance(cfg, dict):
        return {k: plain(v) for k, v in cfg.items()}
    if isinstance(cfg, enum.Enum):
        return cfg.value
    return cfg


NOT_IDENTITY = ("log.", "train.log_every", "train.threads", "train.checkpoint_every", "train.compile", "train.cuda_graph",
               "eval.chunk")


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def identity(cfg: Config) -> dict[str, Any]:
    """The settings that make a job what it is: the resolved config less where and how it runs."""
    return {k: v for k, v in flatten(plain(cfg)).items() if not k.startswith(NOT_IDENTITY)}


def schema_defaults(cfg: Config) -> dict[str, Any]:
    """The schema default of every identity key, for the config sections this job uses."""
    sections = {f.name: type(getattr(cfg, f.name))() for f in dataclasses.fields(cfg) if dataclasses.is_dataclass(getattr(cfg, f.name))}
    top = {f.name: f.default for f in dataclasses.fields(cfg) if f.name not in sections}
    return {k: v for k, v in flatten(plain({**top, **sections})).items() if not k.startswith(NOT_IDENTITY)}


def same_job(stored: dict, cfg: Config) -> bool:
    """A stored resolved config is this job: equal on every key it has; keys added to the schema since
    it was written must be at their defaults (so results survive new options)."""
    stored, defaults = flatten(stored), schema_defaults(cfg)
    return all(stored.get(k, defaults.get(k)) == v for k, v in identity(cfg).items())


def run_id(cfg: Config) -> str:
    """Readable and keyed by the resolved config (logging options excluded): same config, same id."""
    digest = hashlib.sha1(json.dumps(identity(cfg), sort_keys=True).encode()).hexdigest()[:8]
    return f"{run_prefix(cfg)}-{digest}"


def run_prefix(cfg: Config) -> str:
    n = "" if cfg.dataset.n_train is None else f"-n{cfg.dataset.n_train}"
    return f"{cfg.dataset.name.value}-{cfg.algorithm.name}-nz{cfg.model.n_z}{n}-s{cfg.seed}"


def git_commit() -> str:
    """HEAD of the suite's repository, with '-dirty' when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "-uno"], capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


COMMIT = git_commit()  # at import: the code this process runs, even if HEAD moves during a long sweep


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
    doc = {"meta": {"commit": COMMIT, **meta}, "config": plain(cfg)}
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


def read_wandb_run(run_dir: Path) -> dict[str, Any]:
    """Read back an offline W&B run directory's transaction log (run-<id>.wandb): the run record's
    id, name, group, job_type, config, every history row, summary and exit code. A leveldb-style log
    (github.com/google/leveldb/blob/main/doc/log_format.md) of wandb_internal_pb2.Record messages."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = Path(run_dir).glob("run-*.wandb")
    out: dict[str, Any] = {"history": [], "summary": {}, "config": {}, "exit_code": None}
    for data in _leveldb_records(path.read_bytes()):
        rec = pb.Record()
        rec.ParseFromString(data)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            r = rec.run
            out.update(id=r.run_id, name=r.display_name, group=r.run_group, job_type=r.job_type,
                       config={i.key: json.loads(i.value_json) for i in r.config.update})
        elif kind == "history":
            out["history"].append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item})
        elif kind == "summary":
            out["summary"].update({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "exit":
            out["exit_code"] = rec.exit.exit_code
    return out


def _leveldb_records(buf: bytes, block: int = 32768):
    """Yield the payloads of a leveldb log: 7-byte file header, then per block records of
    crc32 (4) | length (2) | type (1: full, 2: first, 3: middle, 4: last) | data."""
    import struct

    pos, part = 7, b""
    while pos + 7 <= len(buf):
        if block - pos % block < 7:  # a block's trailer: too short for a record header
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", buf[pos : pos + 7])
        data, pos = buf[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            break
        part = data if kind in (1, 2) else part + data
        if kind in (1, 4):
            yield part
            part = b""
