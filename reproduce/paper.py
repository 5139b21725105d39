"""The paper's values (reproduce/reference.csv, read off its Figures 2 and 3) and the match of our evaluations
to them at the nearest samples seen."""
from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from reproduce.results import SWEEPS, fig2_rows, fig3_rows, most_seeds, note, recount

ALGORITHMS = ("aevb", "wake_sleep", "mcem", "rws")  # the paper's algorithms in its order, then ours beyond it
TOL = 1.1  # the largest ratio of samples seen, ours vs the paper's, that counts as the same point


def load_reference(path: Path | None = None) -> pd.DataFrame:
    """The paper's values (figure, dataset, algorithm, n_z, n_train, n_seen, split, metric, value)."""
    src = path if path is not None else resources.files("reproduce") / "reference.csv"
    with open(src) as f:
        return pd.read_csv(f, dtype={"n_train": "Int64"})


def nearest(n_seen, point: float, tol: float = TOL) -> int | None:
    """Position of the entry of n_seen nearest `point` samples seen on a log axis, or None beyond a factor tol."""
    dist = np.abs(np.log(np.clip(np.asarray(n_seen, dtype=float), 1, None) / max(point, 1)))
    if dist.size == 0:
        return None
    i = int(dist.argmin())
    return i if dist[i] <= math.log(tol) else None


def paper_value(ref: pd.DataFrame, dataset: str, algorithm: str, n_z: int, n_train: int | None, split: str, metric: str,
                n_seen: int, tol: float = TOL) -> float | None:
    """The paper's value for one curve at its point nearest n_seen (within x tol), or None: Figure 2's
    lower bound (full training set), Figure 3's marginal likelihood (n_train given) for our IS or HMC."""
    if n_train is None:
        want = ref[(ref.figure == "fig2") & ref.n_train.isna() & (ref.metric == metric)]
    else:
        want = ref[(ref.figure == "fig3") & (ref.n_train == n_train) & (ref.metric == "marginal_ll") & metric.startswith("marginal_ll")]
    want = want[(want.dataset == dataset) & (want.algorithm == algorithm) & (want.n_z == n_z) & (want.split == split)]
    i = nearest(want.n_seen, n_seen, tol)
    return None if i is None else float(want.value.iloc[i])


def compare(df: pd.DataFrame, ref: pd.DataFrame, sweeps: dict[str, str | None] | None = None,
            tol: float = TOL, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per reference point we have: each run's value at its n_seen nearest the paper's (within x tol), from the
    sweep with the most runs there (as figure2_table.md), then mean and sd over runs (seeds); diff = ours - paper.
    MCEM's samples in the default count (given runs)."""
    sweeps = {**SWEEPS, **(sweeps or {})}
    ours = figure_rows(df, sweeps, runs)
    rows, missed = [], 0
    for r in ref.itertuples(index=False):
        m = ours[(ours.figure == r.figure) & (ours.dataset == r.dataset) & (ours.algorithm == r.algorithm)
                 & (ours.n_z == r.n_z) & (ours.split == r.split) & (ours.metric == r.metric)]
        m = m[m.n_train.isna()] if pd.isna(r.n_train) else m[m.n_train == r.n_train]
        if m.empty:
            continue
        hits = [run.iloc[i] for _, run in m.groupby("run_id") if (i := nearest(run.n_seen, r.n_seen, tol)) is not None]
        if not hits:
            missed += 1
            continue
        rows.append(matched(r, most_seeds(pd.DataFrame(hits), sweeps[r.figure])))
    if missed:
        note(f"{missed} reference points have runs but no evaluation within x{tol} of the paper's samples seen")
    return pd.DataFrame(rows, columns=["figure", "dataset", "algorithm", "n_z", "n_train", "split", "metric", "n_seen paper",
                                       "n_seen ours", "paper", "ours", "sd", "seeds", "diff"])


def figure_rows(df: pd.DataFrame, sweeps: dict[str, str | None], runs: pd.DataFrame | None) -> pd.DataFrame:
    """Our rows of Figures 2 and 3 in the reference's terms (figure, metric), Figure 3's estimator apart; Figure 2's
    from every preferred sweep (compare takes each point from the one with the most seeds)."""
    f3 = fig3_rows(df, sweeps["fig3"])
    f3 = recount(f3, runs, "gradient") if runs is not None and not f3.empty else f3
    return pd.concat([fig2_rows(df, sweeps["fig2"], per_curve=False).assign(figure="fig2", estimator=""),
                      f3.assign(figure="fig3", estimator=f3.metric.str.removeprefix("marginal_ll_"), metric="marginal_ll")])


def matched(r, hits: pd.DataFrame) -> dict:
    """One reference point r beside the runs' evaluations nearest it (hits: one row per run)."""
    seen = sorted(set(hits.n_seen))
    metric = r.metric + "".join(f" ({e})" for e in sorted(set(hits.estimator)) if e)
    return {"figure": r.figure, "dataset": r.dataset, "algorithm": r.algorithm, "n_z": r.n_z,
            "n_train": "" if pd.isna(r.n_train) else int(r.n_train), "split": r.split, "metric": metric,
            "n_seen paper": f"{r.n_seen:.3g}", "n_seen ours": f"{seen[0]:.3g}" + (f"–{seen[-1]:.3g}" if len(seen) > 1 else ""),
            "paper": r.value, "ours": hits.value.mean(), "sd": hits.value.std() if len(hits) > 1 else float("nan"),
            "seeds": len(hits), "diff": hits.value.mean() - r.value}
