"""`python -m reproduce.report [--results results] [--out results/figures]`: the paper's Figures 2-5 and an
ours-vs-paper table, from the local results files only. Never trains, never imports wandb.

Runs are found by their columns (and, for Figures 4/5, by the config beside their weights); a sweep name
only narrows the search when that sweep has matching runs. A figure whose data is absent is skipped with a note.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from reproduce import claims, figures, readme, tables
from reproduce.paper import TOL, load_reference
from reproduce.results import SWEEPS, load_rows, load_runs, note

FIGURES = {"fig2": "figure2", "fig3": "figure3", "fig45": "figures 4 and 5"}


def default_results(mine: Path = Path("runs"), published: Path = Path("results")) -> Path:
    """Your runs (the default log.results_dir) when there are any, else the results this repository publishes."""
    chosen = mine if any(mine.glob("*/*.parquet")) else published
    note(f"reading {chosen}/ ({'your runs' if chosen == mine else 'the published results; yours go to runs/'}); "
         "--results DIR picks another")
    return chosen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reproduce.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=None,
                   help="results dir (default: runs/, your runs, when it holds any; else results/, the published ones)")
    p.add_argument("--out", type=Path, default=None, help="output dir (default: <results>/figures)")
    p.add_argument("--reference", type=Path, default=None, help="the paper's values (default: reproduce/reference.csv)")
    for key, what in FIGURES.items():
        p.add_argument(f"--{key}-sweep", default=SWEEPS[key], metavar="SWEEPS",
                       help=f"sweeps to draw {what} from, in order of preference (default: {SWEEPS[key]}; 'all': every sweep)")
    p.add_argument("--seed", type=int, default=0, help="seed of Figure 5's samples (default: 0)")
    p.add_argument("--tol", type=float, default=TOL, help=f"max ratio of samples seen, ours vs paper (default: {TOL})")
    return p


def main(argv: list[str] | None = None) -> dict[str, list[Path]]:
    p = parser()
    args = p.parse_args(argv)
    if args.results is not None and not args.results.is_dir():
        p.error(f"--results {args.results}: no such folder (your runs are in runs/, the published ones in results/)")
    results = args.results if args.results is not None else default_results()
    out = args.out if args.out is not None else results / "figures"
    df, runs, ref = load_rows(results), load_runs(results), load_reference(args.reference)
    status = runs.status.fillna("unknown").value_counts().to_dict() if len(runs) else {}
    note(f"{df.run_id.nunique()} runs, {len(df)} rows under {results}; status {status}")
    written = {"figure2": figures.figure2(df, ref, out, args.fig2_sweep),
               "figure3": [p for count in ("gradient", "datapoint") for p in figures.figure3(df, ref, out, args.fig3_sweep, runs, count)],
               "figure4": figures.figure4(runs, out, args.fig45_sweep),
               "figure5": figures.figure5(runs, out, args.fig45_sweep, args.seed),
               **write_tables(df, runs, ref, out, args)}
    if (df.algorithm == "full_vb").any():  # beyond the paper: only where such runs exist
        written["figure_full_vb"] = figures.figure_full_vb(df, out)
    written["pages"] = readme.refresh(only=[p for paths in written.values() for p in paths])  # README, docs/
    return written


def write_tables(df, runs, ref, out: Path, args: argparse.Namespace) -> dict[str, list[Path]]:
    """The report's markdown tables (ours vs the paper, Figure 3's ends, the claims) under `out`."""
    sweeps = {"fig2": args.fig2_sweep, "fig3": args.fig3_sweep}
    written = {"comparison": tables.comparison(df, ref, out, sweeps, args.tol, runs),
               "figure2_table": tables.fig2_table(df, ref, out, args.fig2_sweep),
               "figure3_table": tables.fig3_table(df, ref, out, args.fig3_sweep, runs),
               "figure3_gap": tables.fig3_gap_table(df, out, args.fig3_sweep, runs),
               "claims": claims.write(df, runs, ref, out, sweeps)}
    if (df.sweep == "bf16_1e7").any():  # train.precision=bf16 beside fp32: only where such runs exist
        written["bf16_equivalence"] = tables.precision_table(df, out)
    return written


if __name__ == "__main__":
    main()
