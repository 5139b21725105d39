"""The paper's claims of its experiments section (sec. 5), each checked on the results it is given and marked
holds / fails / not enough data, with the numbers behind it. Written by `python -m reproduce.report`."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from reproduce.results import CURVE, fig2_rows, fig3_rows, note, recount, select, value_at
from reproduce.tables import markdown, write as write_table

HOLDS, FAILS, NO_DATA = "holds", "fails", "not enough data"


def curves(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per (dataset, n_z, n_train, algorithm, split, n_seen)."""
    key = ["dataset", "n_z", "n_train", "algorithm", "split", "n_seen"]
    return rows.groupby(key, dropna=False).value.agg(["mean", "std", "count"]).reset_index()


def aevb_beats_wake_sleep(fig2: pd.DataFrame) -> dict:
    """AEVB reaches a higher bound than wake-sleep at every n_z and dataset, at every common samples-seen
    point after the first decade of the curve (train and test)."""
    c, margins = curves(fig2), []
    for (dataset, n_z, split), cell in c.groupby(["dataset", "n_z", "split"]):
        a, w = (cell[cell.algorithm == alg].set_index("n_seen")["mean"] for alg in ("aevb", "wake_sleep"))
        common = a.index.intersection(w.index)
        common = common[common >= 10 * cell.n_seen.min()]
        margins += [(a[n] - w[n], dataset, n_z, split, n) for n in common]
    if not margins:
        return verdict(NO_DATA, "no panel has both algorithms past its first decade")
    worst = min(margins)
    failed = sorted({(d, z, s) for m, d, z, s, _ in margins if m <= 0})
    cells = len({(d, z, s) for _, d, z, s, _ in margins})
    evidence = (f"{cells - len(failed)}/{cells} panel-splits hold at all {len(margins)} common points; smallest margin "
                f"{worst[0]:+.1f} nats ({worst[1]} n_z={worst[2]} {worst[3]} at {worst[4]:.3g})")
    if failed:
        evidence += "; fails at " + ", ".join(f"{d} n_z={z} {s}" for d, z, s in failed)
    return verdict(FAILS if failed else HOLDS, evidence)


def no_overfitting_with_more_latents(fig2: pd.DataFrame) -> dict:
    """More latent variables do not overfit: AEVB's test bound at the largest n_z is not below that at the
    next smaller n_z by more than the seeds' spread (at the last samples-seen point both reach)."""
    c = curves(fig2[(fig2.algorithm == "aevb") & (fig2.split == "test")])
    parts, failed = [], False
    for dataset, d in c.groupby("dataset"):
        n_zs = sorted(set(d.n_z))
        if len(n_zs) < 2:
            continue
        big, small = (d[d.n_z == z].set_index("n_seen") for z in n_zs[-1:-3:-1])
        common = big.index.intersection(small.index)
        if common.empty:
            continue
        n = common.max()
        sds = [x for x in (big.loc[n, "std"], small.loc[n, "std"]) if pd.notna(x)]
        spread = max(sds, default=0.0)
        drop = small.loc[n, "mean"] - big.loc[n, "mean"]
        failed |= drop > spread
        parts.append(f"{dataset}: n_z={n_zs[-1]} {big.loc[n, 'mean']:.1f} vs n_z={n_zs[-2]} {small.loc[n, 'mean']:.1f} "
                     f"at {n:.3g} (spread {spread:.1f}{'' if sds else ', no seeds'})")
    if not parts:
        return verdict(NO_DATA, "no dataset has two n_z with a common point")
    return verdict(FAILS if failed else HOLDS, "; ".join(parts))


def figure3_ranking(fig3: pd.DataFrame, ref: pd.DataFrame) -> dict:
    """Figure 3's ranking of AEVB, wake-sleep and MCEM by marginal likelihood at the last point all three reach
    (read off each curve: they may come from sweeps evaluated at other points), for N_train 1000 and 50000, as
    the paper's at its last point."""
    r = ref[ref.figure == "fig3"]
    r = r[r.groupby(["n_train", "algorithm", "split"]).n_seen.transform("max") == r.n_seen]
    c, parts, status = curves(fig3), [], []
    for (n_train, split), paper in r.groupby(["n_train", "split"]):
        want = list(paper.sort_values("value", ascending=False).algorithm)
        ours = c[(c.n_train == n_train) & (c.split == split)]
        at = {a: value_at(ours[ours.algorithm == a], min(ours[ours.algorithm == w].n_seen.max() for w in want))
              for a in want} if all((ours.algorithm == a).any() for a in want) else {}
        if not at or any(v is None for v in at.values()):
            parts.append(f"N={n_train} {split}: no common point of {', '.join(want)}")
            status.append(NO_DATA)
            continue
        n = min(ours.n_seen[ours.algorithm == a].max() for a in want)
        got = sorted(want, key=lambda a: -at[a])
        status.append(HOLDS if got == want else FAILS)
        parts.append(f"N={n_train} {split} at {n:.3g}: ours {' > '.join(f'{a} {at[a]:.1f}' for a in got)}; "
                     f"paper {' > '.join(want)}")
    if not parts:
        return verdict(NO_DATA, "no Figure 3 results")
    worst = FAILS if FAILS in status else NO_DATA if NO_DATA in status else HOLDS
    return verdict(worst, "; ".join(parts))


def is_above_bound(df: pd.DataFrame) -> dict:
    """AEVB's IS log p(x) lies above its bound, and closer to it as training goes on (between the first and
    the last intermediate evaluation, which use the same k; IS is on a split's first is_subset points)."""
    d = df[(df.algorithm == "aevb") & df.metric.isin(["lower_bound", "marginal_ll_is"])]
    wide = d.pivot_table(index=["run_id", "split", "n_seen"], columns="metric", values="value").dropna()
    if wide.empty or "marginal_ll_is" not in wide:
        return verdict(NO_DATA, "no AEVB run with IS log p(x)")
    gap = (wide.marginal_ll_is - wide.lower_bound).rename("gap").reset_index()
    below = gap[gap.gap < 0]
    shrink, runs = 0, 0
    for _, g in gap.groupby(["run_id", "split"]):
        g = g.sort_values("n_seen").iloc[:-1]  # the final evaluation uses is_k_final
        if len(g) >= 2:
            runs += 1
            shrink += g.gap.iloc[-1] < g.gap.iloc[0]
    evidence = (f"IS above the bound at {len(gap) - len(below)}/{len(gap)} evaluations (gap {gap.gap.min():.1f} to "
                f"{gap.gap.max():.1f} nats); gap shrinks in {shrink}/{runs} run-splits")
    if runs == 0:
        return verdict(NO_DATA, evidence)
    return verdict(HOLDS if below.empty and shrink == runs else FAILS, evidence)


def verdict(status: str, evidence: str) -> dict:
    return {"verdict": status, "evidence": evidence}


CLAIMS = {
    "AEVB reaches a higher bound than wake-sleep at every n_z and dataset (Fig. 2)": "aevb_beats_wake_sleep",
    "More latent variables do not overfit (Fig. 2)": "no_overfitting_with_more_latents",
    "Figure 3's ranking at the last common point, N_train 1000 and 50000": "figure3_ranking",
    "AEVB's IS log p(x) lies above its bound, closer as training goes on": "is_above_bound",
}


def check(df: pd.DataFrame, runs: pd.DataFrame, ref: pd.DataFrame, sweeps: dict[str, str | None]) -> pd.DataFrame:
    """One row per claim: the claim, its verdict on these results, the numbers behind it."""
    fig2 = fig2_rows(df, sweeps["fig2"])
    fig3 = fig3_rows(df, sweeps["fig3"])
    fig3 = recount(fig3, runs, "gradient") if not fig3.empty else fig3
    inputs = {"aevb_beats_wake_sleep": (fig2,), "no_overfitting_with_more_latents": (fig2,),
              "figure3_ranking": (fig3, ref), "is_above_bound": (select(df, sweeps["fig2"], "claims", by=CURVE),)}  # each curve from its furthest sweep
    rows = [{"claim": claim, **globals()[fn](*inputs[fn])} for claim, fn in CLAIMS.items()]
    return pd.DataFrame(rows, columns=["claim", "verdict", "evidence"])


def write(df: pd.DataFrame, runs: pd.DataFrame, ref: pd.DataFrame, out: Path, sweeps: dict[str, str | None]) -> list[Path]:
    """<out>/claims.md: the claims table; also printed."""
    if df.empty:
        note("claims table skipped: no results")
        return []
    table = check(df, runs, ref, sweeps)
    table["verdict"] = "**" + table.verdict + "**"
    return write_table(out, "claims.md", "# The paper's claims, checked on these results\n\n" + markdown(table), echo=True)
