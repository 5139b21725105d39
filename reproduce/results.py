"""Stored runs, found and loaded, and the runs each figure draws.

A job stores <results>/<sweep>/<run_id>.yaml (its meta and resolved config), .parquet (its tidy rows) and,
with log.save_weights, .weights.pt. `read` is the one loader of a stored run (used by the report,
reproduce.table, a sweep's summary and resume); `load_rows` and `load_runs` gather a results folder for the
report, and the selection below (`select`, `fig2_rows`, `fig3_rows`, `pick`) is the one place that decides
which sweep a figure takes each curve from. Reads files only: never trains, never imports W&B."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch
import yaml

from reproduce.config import WHEN_ABSENT, AlgorithmConfig, Config, DatasetConfig, MCEMConfig, ModelConfig, flatten, plain

COLUMNS = ["run_id", "sweep", "dataset", "algorithm", "n_z", "n_train", "seed", "n_seen", "split", "metric", "value", "wall_s"]
SPLITS = ["train", "test"]
PANELS = {"mnist": (3, 5, 10, 20, 200), "frey": (2, 5, 10, 20)}  # Figure 2's panels (dataset: n_z)
ML_METRICS = ("marginal_ll_hmc", "marginal_ll_is")  # Figure 3, in order of preference
SWEEPS = {"fig2": "fig2_1e8,fig2_1e7,fig2", "fig3": "fig3_end,fig3_1e7,fig3", "fig45": "fig45_1e7,fig2_1e7,fig45"}  # default preference per figure


def note(msg: str) -> None:
    print(f"[report] {msg}")


# ----------------------------------------------------------------------------------------------- one run
def stored_config(stored: dict) -> Config:
    """A job's stored (plain, resolved) config back as a validated Config; keys newer than it keep defaults
    (or their WHEN_ABSENT value). Raises KeyError, ValueError or TypeError for a config of another schema."""
    from omegaconf import OmegaConf

    algorithm = AlgorithmConfig.by_name()[stored["algorithm"]["name"]]
    schema = OmegaConf.structured(Config(dataset=DatasetConfig(), model=ModelConfig(), algorithm=algorithm()))
    flat, absent = flatten(stored), OmegaConf.create()
    for key, value in WHEN_ABSENT.items():
        if key not in flat and OmegaConf.select(schema, key) is not None:
            OmegaConf.update(absent, key, value)
    return OmegaConf.to_object(OmegaConf.merge(schema, stored, absent))


@dataclass
class StoredRun:
    """One stored run: its meta (status, commit, final numbers) and its config as stored."""

    path: Path  # <results>/<sweep>/<run_id>.yaml
    meta: dict
    stored: dict  # the resolved config as written (plain dicts)

    @property
    def run_id(self) -> str:
        return self.path.stem

    @property
    def sweep(self) -> str:
        return self.path.parent.name

    @property
    def parquet(self) -> Path:
        return self.path.with_suffix(".parquet")

    @property
    def weights(self) -> Path | None:
        weights = self.path.with_name(self.path.stem + ".weights.pt")
        return weights if weights.exists() else None

    @functools.cached_property
    def config(self) -> Config | None:
        """The stored config as a Config (stored_config), or None for a config of another schema."""
        try:
            return stored_config(self.stored)
        except (KeyError, ValueError, TypeError):
            return None

    def flat(self) -> dict:
        """The config flattened ("model.n_z": 3), with keys newer than it at the values it ran with."""
        return flatten(plain(self.config)) if self.config is not None else flatten(self.stored)

    def rows(self, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(self.parquet, columns=columns)

    def state(self) -> dict:
        """The final weights: {"encoder": state_dict, "decoder": state_dict}, on the CPU."""
        return torch.load(self.weights, map_location="cpu", weights_only=True)


def read(path: Path) -> StoredRun | None:
    """The stored run of a meta file, or None where it cannot be read."""
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict):
        return None
    return StoredRun(Path(path), doc["meta"], doc.get("config") or {})


def find(results: Path, sweeps: list[str] | None = None) -> Iterator[StoredRun]:
    """The readable stored runs under <results>/<sweep>/, of these sweeps (None: every sweep)."""
    paths = (sorted(Path(results).glob("*/*.yaml")) if sweeps is None
             else [p for s in sweeps for p in sorted((Path(results) / s).glob("*.yaml"))])
    return (run for run in map(read, paths) if run is not None)


# ----------------------------------------------------------------------------------------------- a results folder
def load_rows(results: Path) -> pd.DataFrame:
    """Every results/<sweep>/<run_id>.parquet, concatenated; n_train as nullable Int64."""
    files = sorted(Path(results).glob("*/*.parquet"))
    if not files:
        return pd.DataFrame({c: pd.Series(dtype="Int64" if c == "n_train" else object) for c in COLUMNS})
    df = pd.concat((pd.read_parquet(p) for p in files), ignore_index=True)
    df["n_train"] = pd.to_numeric(df["n_train"]).astype("Int64")
    for c in ("n_z", "seed", "n_seen"):
        df[c] = df[c].astype("int64")
    df["value"] = df["value"].astype(float)
    key = ["sweep", "dataset", "algorithm", "n_z", "n_train", "seed", "metric"]
    shared = df.groupby(key, dropna=False).run_id.nunique()
    for k, n in shared[shared > 1].items():
        note(f"{n} runs share {dict(zip(key, k))}; they differ in other config and are averaged together")
    return df


def load_runs(results: Path) -> pd.DataFrame:
    """One row per stored run with a model: identity, status, config (None if of another schema), weights file,
    wall time, the StoredRun itself, and how it counted samples (`counting`)."""
    rows = []
    for run in find(results):
        s = run.stored
        if not s.get("model") or not s.get("dataset"):
            continue
        rows.append({"run_id": run.run_id, "sweep": run.sweep, "status": run.meta.get("status"),
                     "dataset": s["dataset"]["name"], "algorithm": (s.get("algorithm") or {}).get("name"),
                     "n_z": int(s["model"]["n_z"]), "seed": s.get("seed", 0), "config": run.config,
                     "weights": run.weights, "wall_s": run.meta.get("wall_s"), "stored": run, **counting(run.config)})
    return pd.DataFrame(rows, columns=["run_id", "sweep", "status", "dataset", "algorithm", "n_z", "seed", "config", "weights",
                                       "wall_s", "stored", "count", "gradients"])


def counting(cfg: Config | None) -> dict:
    """How a run counted its samples (MCEM: algorithm.count) and the decoder gradients per datapoint of one of
    its iterations (1 for every other algorithm)."""
    if cfg is None or not isinstance(cfg.algorithm, MCEMConfig):
        return {"count": "datapoint", "gradients": 1}
    return {"count": cfg.algorithm.count.value, "gradients": cfg.algorithm.gradients_per_iteration()}


# ----------------------------------------------------------------------------------------------- selection
def recount(df: pd.DataFrame, runs: pd.DataFrame, count: str) -> pd.DataFrame:
    """Rows with n_seen in `count` units: an MCEM run counted the other way is rescaled by its gradients per
    iteration (count=gradient: n_seen x 16 for a run that counted datapoints; count=datapoint: / 16)."""
    info = runs.set_index("run_id")[["count", "gradients"]]
    stored = df.run_id.map(info["count"]).fillna("datapoint")
    factor = df.run_id.map(info["gradients"]).fillna(1).astype(float)
    scale = np.where(stored == count, 1.0, np.where(count == "gradient", factor, 1 / factor))
    return df.assign(n_seen=(df.n_seen * scale).round().astype("int64"))


CURVE = ["dataset", "n_z", "n_train", "algorithm"]  # one curve of a figure: each from the first preferred sweep that has it


def preference(sweep: str | None) -> list[str]:
    """'fig2_1e7,fig2' -> ['fig2_1e7', 'fig2']: sweeps in order of preference ('' or 'all': none)."""
    return [] if not sweep or sweep == "all" else [s.strip() for s in sweep.split(",") if s.strip()]


def select(df: pd.DataFrame, sweep: str | None, what: str, by: list[str] | None = None) -> pd.DataFrame:
    """Rows of the first sweep of the preference list that has any, per group of `by` columns (e.g. per panel:
    a panel the first sweep lacks comes from the next); rows of every sweep only where no preferred sweep has any."""
    wanted = preference(sweep)
    if not wanted or df.empty:
        return df
    if by and df.sweep.isin(wanted).any():
        return pd.concat(g[g.sweep == next(s for s in wanted if (g.sweep == s).any())]
                         for _, g in df[df.sweep.isin(wanted)].groupby(by, dropna=False))
    for s in wanted:
        if (df.sweep == s).any():
            return df[df.sweep == s]
    note(f"{what}: no runs in sweeps {wanted}; using matching runs of sweeps {sorted(df.sweep.unique())}")
    return df


def fig2_rows(df: pd.DataFrame, sweep: str | None = "fig2", per_curve: bool = True) -> pd.DataFrame:
    """Lower bounds of full-training-set runs on Figure 2's panels (other datasets, e.g. synthetic: any n_z), each
    curve from the first preferred sweep that has it (per_curve=False: from every preferred sweep; both: from every
    sweep where no preferred one has any)."""
    d = df[(df.metric == "lower_bound") & df.n_train.isna()]
    d = d[[PANELS.get(ds) is None or nz in PANELS[ds] for ds, nz in zip(d.dataset, d.n_z)]]
    if not per_curve and not d.empty and d.sweep.isin(preference(sweep)).any():
        return d[d.sweep.isin(preference(sweep))]
    return select(d, sweep, "Figure 2", by=CURVE)


def most_seeds(at: pd.DataFrame, sweep: str | None) -> pd.DataFrame:
    """Rows at one point, each curve from the sweep with the most runs there (ties: the first preferred), so that
    a point several sweeps pass keeps its seeds (1e7: the seeds of fig2_1e7, not the one run of fig2_1e8)."""
    rank = {s: i for i, s in enumerate(preference(sweep))}
    keep = []
    for _, g in at.groupby(CURVE, dropna=False):
        runs = g.groupby("sweep").run_id.nunique()
        keep.append(g[g.sweep == min(runs.index, key=lambda s: (-runs[s], rank.get(s, len(rank))))])
    return pd.concat(keep) if keep else at


def fig3_estimates(df: pd.DataFrame, sweep: str | None, what: str = "Figure 3") -> pd.DataFrame:
    """Every marginal-likelihood estimate (HMC and IS) of MNIST runs on a training subset, of the preferred sweep."""
    return select(df[df.metric.isin(ML_METRICS) & df.n_train.notna() & (df.dataset == "mnist")], sweep, what, by=CURVE)


def fig3_rows(df: pd.DataFrame, sweep: str | None = "fig3") -> pd.DataFrame:
    """Marginal likelihoods of MNIST runs on a training subset: per run the HMC estimate, else the IS one."""
    d = fig3_estimates(df, sweep)
    if d.empty:
        return d
    has_hmc = d.groupby("run_id").metric.transform(lambda m: (m == ML_METRICS[0]).any())
    return d[d.metric == np.where(has_hmc, ML_METRICS[0], ML_METRICS[1])]


def with_weights(runs: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    """Runs of these datasets that did not fail and saved their final weights."""
    if runs.empty:
        return runs
    return runs[runs.weights.notna() & runs.config.notna() & runs.dataset.isin(datasets) & (runs.status != "failed")]


def pick(runs: pd.DataFrame, sweep: str | None) -> pd.DataFrame:
    """One run per (dataset, n_z): from the first sweep of the preference list that has one, AEVB first,
    then the lowest seed."""
    wanted = preference(sweep)
    rank = runs.sweep.map({s: i for i, s in enumerate(wanted)}).fillna(len(wanted))
    runs = runs.assign(_sweep=rank, _other_alg=runs.algorithm != "aevb")
    runs = runs.sort_values(["_sweep", "_other_alg", "seed", "run_id"])
    return runs.groupby(["dataset", "n_z"], sort=False).head(1).drop(columns=["_sweep", "_other_alg"])


def value_at(curve: pd.DataFrame, n: float) -> float | None:
    """A curve's mean at n samples seen, read off it as off Figure 3's linear axis: linear between its two
    evaluations around n (n itself where it was evaluated there); None outside the curve."""
    curve = curve.sort_values("n_seen")
    return float(np.interp(n, curve.n_seen, curve["mean"])) if curve.n_seen.min() <= n <= curve.n_seen.max() else None
