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
import yaml

from reproduce.jobs import flatten, plain, stored_config
from reproduce.report import SPLITS, load_reference, nearest, paper_value


def resolved(stored: dict) -> dict:
    """A stored config flattened, with keys newer than it at the values it ran with (jobs.stored_config)."""
    try:
        return flatten(plain(stored_config(stored)))
    except (KeyError, ValueError, TypeError):  # not a config of this schema: match on what it holds
        return flatten(stored)


def runs_matching(results: Path, sweeps: list[str], where: dict[str, str]) -> list[tuple[str, dict]]:
    """(parquet path, flattened config) of every run of these sweeps whose config matches `where` (as strings)."""
    out = []
    for sweep in sweeps:
        for meta in sorted((results / sweep).glob("*.yaml")):
            cfg = resolved((yaml.safe_load(meta.read_text()) or {}).get("config") or {})
            parquet = meta.with_suffix(".parquet")
            if parquet.exists() and all(str(cfg.get(k)) == v for k, v in where.items()):
                out.append((str(parquet), cfg))
    return out


def at(curve: pd.DataFrame, point: float, tol: float = 1.1) -> float | None:
    """The value at the evaluation nearest `point` samples seen, within a factor tol; else None."""
    i = nearest(curve.n_seen, point, tol)
    return None if i is None else float(curve.value.iloc[i])


def table(results: Path, sweeps: list[str], where: dict[str, str], by: list[str], points: list[float],
          metric: str = "lower_bound") -> str:
    """The markdown table: one row per matching run (by its `by` settings), `train / test` at each point."""
    runs = runs_matching(results, sweeps, where)
    if not runs:
        raise SystemExit(f"no runs in {results} sweeps {sweeps} match {where}")
    head = "| " + " | ".join(by + ["sweep"] + [f"{p:.2g}" for p in points]) + " |"
    lines = [head, "|" + "---|" * (len(by) + 1 + len(points))]
    for parquet, cfg in sorted(runs, key=lambda r: [str(r[1].get(k)) for k in by]):
        df = pd.read_parquet(parquet)
        df = df[df.metric == metric]
        cells = []
        for p in points:
            v = [at(df[df.split == s].sort_values("n_seen"), p) for s in SPLITS]
            cells.append("" if v == [None, None] else " / ".join("" if x is None else f"{x:.1f}" for x in v))
        lines.append("| " + " | ".join([str(cfg.get(k)) for k in by] + [Path(parquet).parent.name] + cells) + " |")
    dataset, algorithm, n_z = (where.get(k) for k in ("dataset.name", "algorithm.name", "model.n_z"))
    if metric == "lower_bound" and dataset and algorithm and n_z:
        ref = load_reference()
        paper = [[paper_value(ref, dataset, algorithm, int(n_z), None, s, metric, int(p)) for s in SPLITS] for p in points]
        cells = ["" if v == [None, None] else " / ".join("" if x is None else f"{x:g}" for x in v) for v in paper]
        lines.append("| " + " | ".join(["paper"] + [""] * len(by) + cells) + " |")
    return "\n".join(lines)


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
