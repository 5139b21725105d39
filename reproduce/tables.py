"""The report's markdown tables (ours vs the paper; Figures 2 and 3 at matched points), all through `markdown`."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from reproduce.paper import ALGORITHMS, TOL, compare, paper_value
from reproduce.results import ML_METRICS, SPLITS, fig2_rows, fig3_estimates, most_seeds, note, recount, value_at


def markdown(table: pd.DataFrame, formats: dict[str, str] | None = None) -> str:
    """A pipe table: the header, then one line per row; a column in `formats` through its format string,
    missing values (None, NaN) as empty cells, the rest as str()."""
    formats = formats or {}

    def cell(column: str, v) -> str:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return ""
        return formats[column].format(v) if column in formats else str(v)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(cell(c, v) for c, v in zip(table.columns, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write(out: Path, name: str, text: str, echo: bool = False) -> list[Path]:
    """<out>/<name> holding text (also printed if echo)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    path.write_text(text)
    if echo:
        print(text)
    note(f"wrote {path}")
    return [path]


def comparison(df: pd.DataFrame, ref: pd.DataFrame, out: Path, sweeps: dict[str, str | None] | None = None,
               tol: float = TOL, runs: pd.DataFrame | None = None) -> list[Path]:
    """<out>/comparison.md: ours vs the paper at matched samples seen; also printed."""
    table = compare(df, ref, sweeps, tol, runs)
    if table.empty:
        note("comparison table skipped: no run matches a reference point")
        return []
    text = ("# Ours vs the paper at matched samples seen\n\n"
            f"Each run's evaluation nearest the paper's samples seen (within x{tol}); ours = mean over seeds, "
            "sd = their standard deviation, diff = ours - paper. Paper values: reproduce/reference.csv.\n\n"
            + markdown(table, {"paper": "{:.1f}", "ours": "{:.1f}", "sd": "{:.1f}", "diff": "{:+.1f}"}))
    return write(out, "comparison.md", text, echo=True)


def mean_sd(v: pd.Series) -> str:
    """'-101.2 ± 0.4' over seeds ('-101.2' for one; '' for none)."""
    return "" if v.empty else f"{v.mean():.1f}" + (f" ± {v.std():.1f}" if len(v) > 1 else "")


def fig2_table(df: pd.DataFrame, ref: pd.DataFrame, out: Path, sweep: str | None, points=(1e6, 1e7, 1e8)) -> list[Path]:
    """<out>/figure2_table.md: per panel, each algorithm's bound at each of `points` samples seen (train / test;
    mean ± sd over seeds, each curve from the sweep with the most seeds there), the paper's in brackets."""
    d = fig2_rows(df, sweep, per_curve=False)
    if d.empty:
        return []
    parts = []
    for point in points:
        at = most_seeds(d[np.abs(np.log(d.n_seen / point)) <= math.log(TOL)], sweep)
        if not at.empty:
            parts.append(f"\n**{point:.0e} samples** (ours, the paper's in brackets; ± sd over seeds where there are several)\n\n"
                         + markdown(fig2_at(at, ref, point)))
    return write(out, "figure2_table.md", "# Figure 2 at matched samples seen\n" + "".join(parts))


def fig2_at(at: pd.DataFrame, ref: pd.DataFrame, point: float) -> pd.DataFrame:
    """One row per panel, a column per algorithm and split: our bound near `point` and the paper's there."""
    algs = [a for a in ALGORITHMS if a in set(at.algorithm)]
    rows = []
    for (dataset, n_z), cell in at.groupby(["dataset", "n_z"]):
        row = {"dataset": dataset, "n_z": n_z}
        for a in algs:
            for split in SPLITS:
                v = cell[(cell.algorithm == a) & (cell.split == split)].value
                p = paper_value(ref, dataset, a, n_z, None, split, "lower_bound", int(point))
                row[f"{a} {split}"] = "" if v.empty else mean_sd(v) + (f" ({p:g})" if p is not None else "")
        rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "n_z", *(f"{a} {s}" for a in algs for s in SPLITS)])


def fig3_table(df: pd.DataFrame, ref: pd.DataFrame, out: Path, sweep: str | None, runs: pd.DataFrame) -> list[Path]:
    """<out>/figure3_table.md: each Figure 3 curve at its last point, HMC and IS log p(x) (train / test), the
    paper's value at the same samples seen and at its own last point, and the run's wall time."""
    d = fig3_estimates(df, sweep, "Figure 3 table")
    if d.empty:
        return []
    d, wall = recount(d, runs, "gradient"), runs.set_index("run_id").wall_s
    order = {a: i for i, a in enumerate(ALGORITHMS)}  # the paper's algorithm order; others after
    curves = sorted(d.groupby(["n_train", "algorithm", "n_z"]), key=lambda g: (g[0][0], order.get(g[0][1], len(order)), g[0][2]))
    rows = [fig3_last(g, ref, wall, n_train, algorithm, n_z, split) for (n_train, algorithm, n_z), g in curves for split in SPLITS]
    text = ("# Figure 3 at each curve's last point\n\n"
            "Marginal log-likelihood per datapoint, MNIST, the HMC estimator (appendix D) and IS; MCEM's samples count "
            "decoder gradients. Paper: its value at our last point where it has one, and at its own last point.\n\n")
    return write(out, "figure3_table.md", text + markdown(pd.DataFrame(rows)))


def fig3_last(g: pd.DataFrame, ref: pd.DataFrame, wall: pd.Series, n_train, algorithm: str, n_z: int, split: str) -> dict:
    """One Figure 3 curve (its runs' rows g) at each run's last point, on one split."""
    last = g[g.n_seen == g.groupby("run_id").n_seen.transform("max")]
    at = last[last.split == split]
    n_seen, first = int(at.n_seen.max()), int(at.n_seen.min())
    here = paper_value(ref, "mnist", algorithm, n_z, int(n_train), split, "marginal_ll", n_seen)
    final = ref[(ref.figure == "fig3") & (ref.n_train == n_train) & (ref.algorithm == algorithm)
                & (ref.n_z == n_z) & (ref.split == split)].sort_values("n_seen").tail(1)
    minutes = wall.reindex(at.run_id.unique()).astype(float) / 60
    return {"N_train": n_train, "algorithm": algorithm, "n_z": n_z, "seeds": at.run_id.nunique(),
            "samples": f"{f'{first:.3g}–' if first != n_seen else ''}{n_seen:.3g}", "split": split,
            "HMC": mean_sd(at[at.metric == ML_METRICS[0]].value), "IS": mean_sd(at[at.metric == ML_METRICS[1]].value),
            "paper here": "" if here is None else f"{here:g}",
            "paper last (samples)": "" if final.empty else f"{final.value.iloc[0]:g} ({final.n_seen.iloc[0]:.2g})",
            "wall (min)": f"{minutes.mean():.0f}"}


def fig3_gap_table(df: pd.DataFrame, out: Path, sweep: str | None, runs: pd.DataFrame) -> list[Path]:
    """<out>/figure3_gap.md: per N_train, every Figure 3 curve (the paper's three and any beyond them) read at the
    last point all of them reach: train and test HMC and IS log p(x), the train - test gap, and the test gap to
    AEVB (mean over seeds; linear between evaluations where a curve was not evaluated there)."""
    d = fig3_estimates(df, sweep, "Figure 3 gap table")
    if d.empty:
        return []
    d = recount(d, runs, "gradient")
    c = d.groupby(["n_train", "algorithm", "metric", "split", "n_seen"]).value.mean().rename("mean").reset_index()
    order = {a: i for i, a in enumerate(ALGORITHMS)}
    rows = []
    for n_train, cell in c.groupby("n_train"):
        n = cell.groupby("algorithm").n_seen.max().min()  # the last point every curve reaches
        at = {(a, m, s): value_at(g, n) for (a, m, s), g in cell.groupby(["algorithm", "metric", "split"])}
        for a in sorted(set(cell.algorithm), key=lambda a: (order.get(a, len(order)), a)):
            row = {"N_train": int(n_train), "samples": f"{n:.3g}", "algorithm": a}
            for m in ML_METRICS:
                name = m.removeprefix("marginal_ll_").upper()
                train, test = at.get((a, m, "train")), at.get((a, m, "test"))
                aevb = at.get(("aevb", m, "test"))
                row |= {f"{name} train": train, f"{name} test": test,
                        f"{name} train - test": None if train is None or test is None else train - test,
                        f"{name} test - AEVB's": None if test is None or aevb is None or a == "aevb" else test - aevb}
            rows.append(row)
    text = ("# Figure 3 at the last common point\n\n"
            "Per N_train, every curve read at the last samples seen that all of them reach (MCEM counting decoder "
            "gradients): marginal log-likelihood per datapoint by HMC (appendix D) and IS, train - test (the "
            "overfitting gap), and the test value minus AEVB's.\n\n")
    table = pd.DataFrame(rows)
    return write(out, "figure3_gap.md", text + markdown(table, {c: "{:+.1f}" if "-" in c else "{:.1f}"
                                                                for c in table.columns if c not in ("N_train", "samples", "algorithm")}))


def precision_table(df: pd.DataFrame, out: Path, bf16_sweep: str = "bf16_1e7", fp32_sweep: str = "fig2_1e7",
                    first: float = 1e6) -> list[Path]:
    """<out>/bf16_equivalence.md: each curve of the bf16 sweep beside the same curve's fp32 seeds, train and test,
    at every common evaluation from `first` samples on. Within: the bf16 mean inside the fp32 seeds' range
    (min to max), or within 1 nat of a lone fp32 seed."""
    d = df[(df.metric == "lower_bound") & df.sweep.isin([bf16_sweep, fp32_sweep]) & (df.n_seen >= first)]
    d = d[d.set_index(["dataset", "n_z", "algorithm"]).index.isin(d[d.sweep == bf16_sweep].set_index(["dataset", "n_z", "algorithm"]).index)]
    if d.empty or not (d.sweep == fp32_sweep).any():
        return []
    stats = d.groupby(["dataset", "n_z", "algorithm", "split", "n_seen", "sweep"]).value.agg(["mean", "std", "min", "max", "count"]).unstack("sweep").dropna(subset=[("mean", bf16_sweep), ("mean", fp32_sweep)])
    rows = []
    for (dataset, n_z, algorithm, split, n_seen), s in stats.iterrows():
        b, f, n = s[("mean", bf16_sweep)], s[("mean", fp32_sweep)], int(s[("count", fp32_sweep)])
        within = (s[("min", fp32_sweep)] <= b <= s[("max", fp32_sweep)]) if n > 1 else abs(b - f) <= 1.0
        rows.append({"dataset": dataset, "n_z": n_z, "algorithm": algorithm, "split": split, "samples": f"{n_seen:.3g}",
                     f"fp32 ({fp32_sweep})": f"{f:.1f}" if n == 1 else f"{f:.1f} ± {s[('std', fp32_sweep)]:.1f}",
                     "fp32 seeds": n, f"bf16 ({bf16_sweep})": f"{b:.1f}", "bf16 seeds": int(s[("count", bf16_sweep)]),
                     "bf16 - fp32": f"{b - f:+.1f}", "within": "yes" if within else "**no**"})
    table = pd.DataFrame(rows)
    text = ("# train.precision=bf16 beside fp32\n\n"
            f"The lower bound of each curve of {bf16_sweep} (bf16) and of the same jobs in {fp32_sweep} (fp32), at every "
            f"common evaluation from {first:.0e} samples on; within: the bf16 mean inside the fp32 seeds' range (min to "
            f"max), or within 1 nat where there is one fp32 seed. {(table.within == 'yes').sum()} of {len(table)} within.\n\n"
            + markdown(table))
    return write(out, "bf16_equivalence.md", text)
