"""`python -m reproduce.table`: one metric of chosen runs at chosen samples seen, one row per run, keyed by the
config settings that differ between them, with the paper's Figure 2 curve as the last row where it has one.

    python -m reproduce.table --sweeps frey_lr_1e7,fig2_1e7 --where dataset.name=frey model.n_z=10 algorithm.name=aevb \\
        --by train.lr train.adagrad_warmup

prints a markdown table of the train / test lower bound at 1e5, 1e6 and 1e7 samples (--points), e.g. a step-size
comparison. Runs are read from <results>/<sweep>/<run_id>.{yaml,parquet}, finished or not."""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from reproduce import results
from reproduce.paper import TOL, load_reference, nearest, paper_value
from reproduce.results import SPLITS
from reproduce.tables import markdown


def at(curve: pd.DataFrame, point: float, tol: float = TOL) -> float | None:
    """The value at the evaluation nearest `point` samples seen, within a factor tol; else None."""
    i = nearest(curve.n_seen, point, tol)
    return None if i is None else float(curve.value.iloc[i])


def cells(values: list[list[float | None]], fmt: str) -> list[str]:
    """'train / test' per point ('' where neither)."""
    return ["" if v == [None, None] else " / ".join("" if x is None else format(x, fmt) for x in v) for v in values]


def table(results_dir: Path, sweeps: list[str], where: dict[str, str], by: list[str], points: list[float],
          metric: str = "lower_bound") -> str:
    """The markdown table: one row per matching run (by its `by` settings), `train / test` at each point."""
    runs = [(run, run.flat()) for run in results.find(results_dir, sweeps) if run.parquet.exists()]
    runs = [(run, cfg) for run, cfg in runs if all(str(cfg.get(k)) == v for k, v in where.items())]
    if not runs:
        raise SystemExit(f"no runs in {results_dir} sweeps {sweeps} match {where}")
    rows = []
    for run, cfg in sorted(runs, key=lambda r: [str(r[1].get(k)) for k in by]):
        df = run.rows()
        df = df[df.metric == metric]
        values = [[at(df[df.split == s].sort_values("n_seen"), p) for s in SPLITS] for p in points]
        rows.append([str(cfg.get(k)) for k in by] + [run.sweep] + cells(values, ".1f"))
    dataset, algorithm, n_z = (where.get(k) for k in ("dataset.name", "algorithm.name", "model.n_z"))
    if metric == "lower_bound" and dataset and algorithm and n_z:
        ref = load_reference()
        paper = [[paper_value(ref, dataset, algorithm, int(n_z), None, s, metric, int(p)) for s in SPLITS] for p in points]
        rows.append(["paper"] + [""] * len(by) + cells(paper, "g"))
    return markdown(pd.DataFrame(rows, columns=by + ["sweep"] + [f"{p:.2g}" for p in points])).rstrip("\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m reproduce.table", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--sweeps", required=True, help="comma-separated sweep folders under --results")
    p.add_argument("--where", nargs="*", default=[], metavar="KEY=VALUE", help="config settings every run must have")
    p.add_argument("--by", nargs="+", required=True, metavar="KEY", help="config settings that name each row")
    p.add_argument("--points", default="1e5,1e6,1e7", help="samples seen (default: 1e5,1e6,1e7)")
    p.add_argument("--metric", default="lower_bound")
    a = p.parse_args(argv)
    bad = [w for w in a.where if "=" not in w]
    if bad:
        p.error(f"--where takes KEY=VALUE, got {bad}")
    where = dict(w.split("=", 1) for w in a.where)
    print(table(a.results, [s for s in a.sweeps.split(",") if s], where, a.by, [float(x) for x in a.points.split(",")], a.metric))


if __name__ == "__main__":
    main()
