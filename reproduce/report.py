"""`python -m reproduce.report [--results results] [--out results/figures]`: the paper's Figures 2-5 and an
ours-vs-paper table, from the local results files only. Never trains, never imports wandb.

Runs are found by their columns (and, for Figures 4/5, by the config beside their weights); a sweep name
only narrows the search when that sweep has matching runs. A figure whose data is absent is skipped with a note.
"""
from __future__ import annotations

import argparse
import math
from importlib import resources
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from reproduce import models, readme  # noqa: E402
from reproduce.data import IMAGE_SHAPE  # noqa: E402
from reproduce.jobs import WHEN_ABSENT  # noqa: E402
from reproduce.config import ModelConfig  # noqa: E402
from reproduce.sinks import COLUMNS  # noqa: E402

PALETTE = {"aevb": "tab:red", "wake_sleep": "tab:green", "mcem": "tab:blue", "rws": "tab:purple"}
SPLITS = ["train", "test"]
DASHES = {"train": "", "test": (4, 2)}  # train solid, test dashed (paper)
MARKERS = {"train": "o", "test": "X"}  # the paper's values (reference.csv)
PANELS = {"mnist": (3, 5, 10, 20, 200), "frey": (2, 5, 10, 20)}  # Figure 2's panels
YLIM = {"mnist": (-150, -95), "frey": (0, 1600)}  # Figure 2's y ranges (lower end widened where points lie below)
NAMES = {"mnist": "MNIST", "frey": "Frey Face"}
MANIFOLD_SIZE = {"frey": 10, "mnist": 20}  # Figure 4's grids
SAMPLE_NZ = (2, 5, 10, 20)  # Figure 5's panels
ML_METRICS = ("marginal_ll_hmc", "marginal_ll_is")  # Figure 3, in order of preference
FIGURES = {"fig2": "figure2", "fig3": "figure3", "fig45": "figures 4 and 5"}
SWEEPS = {"fig2": "fig2_1e7,fig2", "fig3": "fig3_1e7,fig3", "fig45": "fig45_1e7,fig2_1e7,fig45"}  # default preference per figure
COUNTS = {"gradient": "decoder gradients", "datapoint": "datapoints per iteration"}


def note(msg: str) -> None:
    print(f"[report] {msg}")


# ----------------------------------------------------------------------------------------------- loading
def load_results(results: Path) -> pd.DataFrame:
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
    """One row per results/<sweep>/<run_id>.yaml: identity, status, model config and the weights file."""
    rows = []
    for p in sorted(Path(results).glob("*/*.yaml")):
        doc = yaml.safe_load(p.read_text()) or {}
        cfg, meta = doc.get("config") or {}, doc.get("meta") or {}
        if not cfg.get("model") or not cfg.get("dataset"):
            continue
        weights = p.with_name(p.stem + ".weights.pt")
        algorithm = cfg.get("algorithm") or {}
        rows.append({"run_id": p.stem, "sweep": p.parent.name, "status": meta.get("status"),
                     "dataset": cfg["dataset"]["name"], "algorithm": algorithm.get("name"),
                     "n_z": int(cfg["model"]["n_z"]), "seed": cfg.get("seed", 0), "model": cfg["model"],
                     "weights": weights if weights.exists() else None, "wall_s": meta.get("wall_s"), **mcem_count(algorithm)})
    return pd.DataFrame(rows, columns=["run_id", "sweep", "status", "dataset", "algorithm", "n_z", "seed", "model", "weights",
                                       "wall_s", "count", "gradients"])


def mcem_count(algorithm: dict) -> dict:
    """How a run counted its samples (MCEM: algorithm.count, 'datapoint' where stored before the option) and
    the decoder gradients per datapoint of one of its iterations (1 for every other algorithm)."""
    if algorithm.get("name") != "mcem":
        return {"count": "datapoint", "gradients": 1}
    from baselines.mcem import gradients_per_iteration

    gradients = gradients_per_iteration(algorithm.get("n_leapfrog", 10), algorithm.get("n_updates", 5))
    return {"count": algorithm.get("count", WHEN_ABSENT["algorithm.count"]), "gradients": gradients}


def recount(df: pd.DataFrame, runs: pd.DataFrame, count: str) -> pd.DataFrame:
    """Rows with n_seen in `count` units: an MCEM run counted the other way is rescaled by its gradients per
    iteration (count=gradient: n_seen x 16 for a run that counted datapoints; count=datapoint: / 16)."""
    info = runs.set_index("run_id")[["count", "gradients"]]
    stored = df.run_id.map(info["count"]).fillna("datapoint")
    factor = df.run_id.map(info["gradients"]).fillna(1).astype(float)
    scale = np.where(stored == count, 1.0, np.where(count == "gradient", factor, 1 / factor))
    return df.assign(n_seen=(df.n_seen * scale).round().astype("int64"))


def load_reference(path: Path | None = None) -> pd.DataFrame:
    """The paper's values (figure, dataset, algorithm, n_z, n_train, n_seen, split, metric, value)."""
    src = path if path is not None else resources.files("reproduce") / "reference.csv"
    with open(src) as f:
        return pd.read_csv(f, dtype={"n_train": "Int64"})


def nearest(n_seen, point: float, tol: float = 1.1) -> int | None:
    """Position of the entry of n_seen nearest `point` samples seen on a log axis, or None beyond a factor tol."""
    dist = np.abs(np.log(np.clip(np.asarray(n_seen, dtype=float), 1, None) / max(point, 1)))
    if dist.size == 0:
        return None
    i = int(dist.argmin())
    return i if dist[i] <= math.log(tol) else None


def paper_value(ref: pd.DataFrame, dataset: str, algorithm: str, n_z: int, n_train: int | None, split: str, metric: str,
                n_seen: int, tol: float = 1.1) -> float | None:
    """The paper's value for one curve at its point nearest n_seen (within x tol), or None: Figure 2's
    lower bound (full training set), Figure 3's marginal likelihood (n_train given) for our IS or HMC."""
    if n_train is None:
        want = ref[(ref.figure == "fig2") & ref.n_train.isna() & (ref.metric == metric)]
    else:
        want = ref[(ref.figure == "fig3") & (ref.n_train == n_train) & (ref.metric == "marginal_ll") & metric.startswith("marginal_ll")]
    want = want[(want.dataset == dataset) & (want.algorithm == algorithm) & (want.n_z == n_z) & (want.split == split)]
    i = nearest(want.n_seen, n_seen, tol)
    return None if i is None else float(want.value.iloc[i])


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
                         for _, g in df[df.sweep.isin(wanted)].groupby(by))
    for s in wanted:
        if (df.sweep == s).any():
            return df[df.sweep == s]
    note(f"{what}: no runs in sweeps {wanted}; using matching runs of sweeps {sorted(df.sweep.unique())}")
    return df


def fig2_rows(df: pd.DataFrame, sweep: str | None = "fig2") -> pd.DataFrame:
    """Lower bounds of full-training-set runs on Figure 2's panels (other datasets, e.g. synthetic: any n_z)."""
    d = df[(df.metric == "lower_bound") & df.n_train.isna()]
    d = d[[PANELS.get(ds) is None or nz in PANELS[ds] for ds, nz in zip(d.dataset, d.n_z)]]
    return select(d, sweep, "Figure 2", by=["dataset", "n_z"])


def fig3_estimates(df: pd.DataFrame, sweep: str | None, what: str = "Figure 3") -> pd.DataFrame:
    """Every marginal-likelihood estimate (HMC and IS) of MNIST runs on a training subset, of the preferred sweep."""
    return select(df[df.metric.isin(ML_METRICS) & df.n_train.notna() & (df.dataset == "mnist")], sweep, what)


def fig3_rows(df: pd.DataFrame, sweep: str | None = "fig3") -> pd.DataFrame:
    """Marginal likelihoods of MNIST runs on a training subset: per run the HMC estimate, else the IS one."""
    d = fig3_estimates(df, sweep)
    if d.empty:
        return d
    has_hmc = d.groupby("run_id").metric.transform(lambda m: (m == ML_METRICS[0]).any())
    return d[d.metric == np.where(has_hmc, ML_METRICS[0], ML_METRICS[1])]


# ----------------------------------------------------------------------------------------------- helpers
def palette(*algorithms) -> dict[str, str]:
    """The paper's colours (AEVB red, wake-sleep green, MCEM blue), others from the default cycle."""
    extra = iter(c for c in sns.color_palette("tab10").as_hex() if c not in PALETTE.values())
    levels = [a for a in PALETTE if any(a in set(s) for s in algorithms)]
    levels += sorted({a for s in algorithms for a in s} - set(levels))
    return {a: PALETTE.get(a) or next(extra) for a in levels}


def save(fig: plt.Figure, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    for p in paths:  # no creation date in the PDF: the same results give the same bytes
        fig.savefig(p, dpi=150, bbox_inches="tight", metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
    plt.close(fig)
    note(f"wrote {', '.join(str(p) for p in paths)}")
    return paths


def overlay_reference(ax: plt.Axes, ref: pd.DataFrame, x: str, pal: dict[str, str]) -> None:
    """The paper's values as markers in the algorithm's colour (train o, test x)."""
    if len(ref):
        sns.scatterplot(data=ref, x=x, y="value", hue="algorithm", palette=pal, style="split", markers=MARKERS,
                        style_order=SPLITS, s=36, legend=False, ax=ax, zorder=5, edgecolor="black", linewidth=0.4)


def panel_label(dataset: str, n_z: int) -> str:
    return f"{NAMES.get(dataset, dataset)}, $N_z$ = {n_z}"


def decoder_of(run: pd.Series) -> torch.nn.Module | None:
    """The run's decoder rebuilt from its config and final weights (None, with a note, if it does not fit)."""
    state = torch.load(run.weights, map_location="cpu", weights_only=True)
    cfg = ModelConfig.from_stored(run.model)
    n_x = state["encoder"]["hidden.weight"].shape[1]
    h, w = IMAGE_SHAPE[run.dataset]
    if n_x != h * w:
        note(f"{run.run_id}: n_x={n_x} is not {h}x{w}; skipped")
        return None
    _, decoder = models.build(cfg, n_x)
    decoder.load_state_dict(state["decoder"])
    return decoder.eval()


def pick(runs: pd.DataFrame, sweep: str | None) -> pd.DataFrame:
    """One run per (dataset, n_z): from the first sweep of the preference list that has one, AEVB first,
    then the lowest seed."""
    wanted = preference(sweep)
    rank = runs.sweep.map({s: i for i, s in enumerate(wanted)}).fillna(len(wanted))
    runs = runs.assign(_sweep=rank, _other_alg=runs.algorithm != "aevb")
    runs = runs.sort_values(["_sweep", "_other_alg", "seed", "run_id"])
    return runs.groupby(["dataset", "n_z"], sort=False).head(1).drop(columns=["_sweep", "_other_alg"])


def latent_grid(n: int) -> torch.Tensor:
    """[n*n, 2] row-major: the unit square's cell centres (k + 0.5)/n through the Gaussian inverse CDF;
    z1 grows left to right, z2 bottom to top."""
    q = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(n, dtype=torch.float32) + 0.5) / n)
    z2, z1 = torch.meshgrid(q.flip(0), q, indexing="ij")
    return torch.stack([z1, z2], -1).reshape(n * n, 2)


def tiles(images: torch.Tensor, shape: tuple[int, int], nrow: int) -> np.ndarray:
    """[n, n_x] decoder means -> one [rows*h, nrow*w] image."""
    return make_grid(images.reshape(-1, 1, *shape), nrow=nrow, padding=0)[0].numpy()


def with_weights(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return runs
    return runs[runs.weights.notna() & runs.dataset.isin(list(IMAGE_SHAPE)) & (runs.status != "failed")]


# ----------------------------------------------------------------------------------------------- figures
def figure2(df: pd.DataFrame, ref: pd.DataFrame, out: Path, sweep: str | None = "fig2") -> list[Path]:
    """Lower bound per datapoint vs samples seen (log x), one panel per dataset x n_z; mean and sd over seeds."""
    data = fig2_rows(df, sweep)
    if data.empty:
        note("Figure 2 skipped: no lower_bound rows of full-training-set runs")
        return []
    datasets = [d for d in PANELS if d in set(data.dataset)] + sorted(set(data.dataset) - set(PANELS))
    n_zs = {d: sorted(set(data.n_z[data.dataset == d])) for d in datasets}
    slot = {(d, nz): i for d in datasets for i, nz in enumerate(n_zs[d])}  # a dataset's panels fill one row
    data = data.assign(slot=[slot[k] for k in zip(data.dataset, data.n_z)])
    r = ref[(ref.figure == "fig2") & (ref.metric == "lower_bound")]
    r = r[[k in slot for k in zip(r.dataset, r.n_z)]]
    pal = palette(data.algorithm, r.algorithm)
    g = sns.relplot(data=data, kind="line", x="n_seen", y="value", hue="algorithm", hue_order=list(pal), palette=pal,
                    style="split", style_order=SPLITS, dashes=DASHES, row="dataset", row_order=datasets, col="slot",
                    col_order=range(max(map(len, n_zs.values()))), errorbar="sd", height=2.6, aspect=1.15,
                    facet_kws={"sharey": False, "sharex": False})
    g.set(xscale="log")
    for (dataset, i), ax in g.axes_dict.items():
        if i >= len(n_zs[dataset]):
            ax.set_visible(False)
            continue
        n_z = n_zs[dataset][i]
        overlay_reference(ax, r[(r.dataset == dataset) & (r.n_z == n_z)], "n_seen", pal)
        ax.set_title(panel_label(dataset, n_z))
        if dataset in YLIM:  # the paper's range, widened downward to show our and the paper's 1e6 points
            shown = pd.concat([data.value[(data.dataset == dataset) & (data.n_z == n_z) & (data.n_seen >= 1e6)],
                               r.value[(r.dataset == dataset) & (r.n_z == n_z)]])
            low, high = YLIM[dataset]
            ax.set_ylim(min(low, shown.min() - 0.05 * (high - low)), high)
    g.set_axis_labels("# training samples evaluated", "lower bound per datapoint")
    g.figure.suptitle("Figure 2: lines ours (mean ± sd over seeds), markers the paper", y=1.02)
    return save(g.figure, out, "figure2")


def figure3(df: pd.DataFrame, ref: pd.DataFrame, out: Path, sweep: str | None = "fig3",
            runs: pd.DataFrame | None = None, count: str = "gradient") -> list[Path]:
    """Marginal log-likelihood vs samples seen (millions, linear), MNIST, one panel per N_train; MCEM's x axis
    in `count` units (README, "MCEM's x axis"): figure3.png for the default, figure3_<count>.png otherwise."""
    data = fig3_rows(df, sweep)
    if runs is not None and not data.empty:
        data = recount(data, runs, count)
    if data.empty:
        note("Figure 3 skipped: no marginal_ll_hmc / marginal_ll_is rows of MNIST runs with n_train")
        return []
    data = data.assign(n_train=data.n_train.astype(int), n_seen_m=data.n_seen / 1e6)
    r = ref[(ref.figure == "fig3") & ref.n_train.notna()]
    r = r.assign(n_train=r.n_train.astype(int), n_seen_m=r.n_seen / 1e6)
    cols, n_zs = sorted(set(data.n_train)), sorted(set(data.n_z))
    r = r[r.n_train.isin(cols) & r.n_z.isin(n_zs)]
    pal = palette(data.algorithm, r.algorithm)
    row = "n_z" if len(n_zs) > 1 else None
    g = sns.relplot(data=data, kind="line", x="n_seen_m", y="value", hue="algorithm", hue_order=list(pal), palette=pal,
                    style="split", style_order=SPLITS, dashes=DASHES, col="n_train", col_order=cols, row=row,
                    row_order=n_zs if row else None, errorbar="sd", height=3.2, aspect=1.2,
                    facet_kws={"sharey": False, "sharex": False})
    for key, ax in g.axes_dict.items():
        n_z, n_train = key if row else (n_zs[0], key)
        overlay_reference(ax, r[(r.n_train == n_train) & (r.n_z == n_z)], "n_seen_m", pal)
    g.set_titles("$N_{{train}}$ = {col_name}" + (", $N_z$ = {row_name}" if row else f", $N_z$ = {n_zs[0]}"))
    used = " / ".join(m.removeprefix("marginal_ll_").upper() for m in ML_METRICS if m in set(data.metric))
    g.set_axis_labels("# training samples evaluated (millions)", f"marginal log-likelihood ({used})")
    g.figure.suptitle(f"Figure 3: lines ours (mean ± sd over seeds), markers the paper; MCEM counts {COUNTS[count]}", y=1.03)
    return save(g.figure, out, "figure3" if count == "gradient" else f"figure3_{count}")


@torch.no_grad()
def figure4(runs: pd.DataFrame, out: Path, sweep: str | None = "fig45") -> list[Path]:
    """Learned 2-D manifolds: decoder means on a grid of the unit square mapped through the Gaussian inverse CDF."""
    runs = with_weights(runs)
    runs = pick(runs[runs.n_z == 2], sweep) if len(runs) else runs
    order = [d for d in ("frey", "mnist") if d in set(runs.dataset)] + sorted(set(runs.dataset) - {"frey", "mnist"})
    images = []
    for dataset in order:
        run = runs[runs.dataset == dataset].iloc[0]
        decoder = decoder_of(run)
        if decoder is None:
            continue
        n = MANIFOLD_SIZE.get(dataset, 10)
        x = decoder.mean(latent_grid(n))
        images.append((dataset, run.run_id, tiles(x, IMAGE_SHAPE[dataset], n)))
    if not images:
        note("Figure 4 skipped: no n_z=2 run with saved weights (log.save_weights=true)")
        return []
    for dataset, run_id, _ in images:
        note(f"Figure 4 ({dataset}): {run_id}")
    titles = [f"Learned {NAMES.get(dataset, dataset)} manifold" for dataset, *_ in images]
    ratios = [im.shape[1] / im.shape[0] for *_, im in images]
    return save(image_panels([im for *_, im in images], titles, (4.5, 4.8), ratios), out, "figure4")


@torch.no_grad()
def figure5(runs: pd.DataFrame, out: Path, sweep: str | None = "fig45", seed: int = 0) -> list[Path]:
    """10x10 decoder means of z ~ N(0, I) from MNIST models with n_z in {2, 5, 10, 20}, one panel each."""
    runs = with_weights(runs)
    runs = pick(runs[(runs.dataset == "mnist") & runs.n_z.isin(SAMPLE_NZ)], sweep) if len(runs) else runs
    images = []
    for _, run in runs.sort_values("n_z").iterrows():
        decoder = decoder_of(run)
        if decoder is None:
            continue
        z = torch.randn(100, run.n_z, generator=torch.Generator().manual_seed(seed))
        images.append((run.n_z, run.run_id, tiles(decoder.mean(z), IMAGE_SHAPE["mnist"], 10)))
    if not images:
        note("Figure 5 skipped: no MNIST run with n_z in {2, 5, 10, 20} and saved weights")
        return []
    for n_z, run_id, _ in images:
        note(f"Figure 5 (n_z={n_z}): {run_id}")
    titles = [f"{n_z}-D latent space" for n_z, *_ in images]
    return save(image_panels([im for *_, im in images], titles, (3.6, 3.9)), out, "figure5")


def image_panels(images: list[np.ndarray], titles: list[str], size: tuple[float, float], ratios=None) -> plt.Figure:
    """One row of grey-scale image panels titled (a), (b), ... as in the paper's Figures 4 and 5."""
    fig, axes = plt.subplots(1, len(images), figsize=(size[0] * len(images), size[1]), squeeze=False,
                             gridspec_kw={"width_ratios": ratios} if ratios else None)
    for i, (ax, im, title) in enumerate(zip(axes[0], images, titles)):
        ax.imshow(im, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"({'abcdefgh'[i]}) {title}")
        ax.axis("off")
    return fig


def figure_full_vb(df: pd.DataFrame, out: Path, sweep: str | None = "full_vb") -> list[Path]:
    """Beyond the paper (appendix F): bound per datapoint vs samples seen (log x), one panel per dataset x n_z:
    AEVB's lower_bound (MAP weights), full VB's lower_bound under the posterior mean of theta, and full VB's
    full_vb_bound (with -KL(q(theta) || p(theta)) / N); train solid, test dashed, mean and sd over seeds."""
    curves = {("aevb", "lower_bound"): "AEVB (MAP θ): bound", ("full_vb", "lower_bound"): "full VB: bound at E_q[θ]",
              ("full_vb", "full_vb_bound"): "full VB: full bound, − KL(q(θ)‖p(θ))/N"}
    d = df[df.n_train.isna() & pd.Series(list(zip(df.algorithm, df.metric)), index=df.index).isin(list(curves))]
    d = select(d, sweep, "Full VB figure")
    if not (d.algorithm == "full_vb").any():
        note("Full VB figure skipped: no full_vb runs")
        return []
    d = d.assign(curve=[curves[k] for k in zip(d.algorithm, d.metric)], dataset=[NAMES.get(s, s) for s in d.dataset])
    pal = dict(zip(curves.values(), ["tab:red", "tab:blue", "tab:cyan"]))
    g = sns.relplot(data=d, kind="line", x="n_seen", y="value", hue="curve", hue_order=list(pal), palette=pal, style="split",
                    style_order=SPLITS, dashes=DASHES, row="dataset", col="n_z", errorbar="sd", height=3, aspect=1.1,
                    facet_kws={"sharey": False, "sharex": False})
    g.set(xscale="log")
    g.set_titles("{row_name}, $N_z$ = {col_name}")
    g.set_axis_labels("# training samples evaluated", "bound per datapoint")
    g.figure.suptitle("Full VB over the decoder's parameters (appendix F) vs AEVB's MAP weights", y=1.03)
    return save(g.figure, out, "figure_full_vb")


# ----------------------------------------------------------------------------------------------- table
def compare(df: pd.DataFrame, ref: pd.DataFrame, sweeps: dict[str, str | None] | None = None,
            tol: float = 1.1, runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per reference point we have: each run's value at its n_seen nearest the paper's (within x tol), then
    mean and sd over runs (seeds); diff = ours - paper. MCEM's samples in the default count (given runs)."""
    sweeps = {**SWEEPS, **(sweeps or {})}
    f3 = fig3_rows(df, sweeps["fig3"])
    f3 = recount(f3, runs, "gradient") if runs is not None and not f3.empty else f3
    ours = pd.concat([fig2_rows(df, sweeps["fig2"]).assign(figure="fig2", estimator=""),
                      f3.assign(figure="fig3", estimator=f3.metric.str.removeprefix("marginal_ll_"), metric="marginal_ll")])
    rows, missed = [], 0
    for r in ref.itertuples(index=False):
        m = ours[(ours.figure == r.figure) & (ours.dataset == r.dataset) & (ours.algorithm == r.algorithm)
                 & (ours.n_z == r.n_z) & (ours.split == r.split) & (ours.metric == r.metric)]
        m = m[m.n_train.isna()] if pd.isna(r.n_train) else m[m.n_train == r.n_train]
        if m.empty:
            continue
        hits = []
        for _, run in m.groupby("run_id"):
            i = nearest(run.n_seen, r.n_seen, tol)
            if i is not None:
                hits.append(run.iloc[i])
        if not hits:
            missed += 1
            continue
        h = pd.DataFrame(hits)
        seen = sorted(set(h.n_seen))
        metric = r.metric + "".join(f" ({e})" for e in sorted(set(h.estimator)) if e)
        rows.append({"figure": r.figure, "dataset": r.dataset, "algorithm": r.algorithm, "n_z": r.n_z,
                     "n_train": "" if pd.isna(r.n_train) else int(r.n_train), "split": r.split, "metric": metric,
                     "n_seen paper": f"{r.n_seen:.3g}", "n_seen ours": f"{seen[0]:.3g}" + (f"–{seen[-1]:.3g}" if len(seen) > 1 else ""),
                     "paper": r.value, "ours": h.value.mean(), "sd": h.value.std() if len(h) > 1 else float("nan"),
                     "seeds": len(h), "diff": h.value.mean() - r.value})
    if missed:
        note(f"{missed} reference points have runs but no evaluation within x{tol} of the paper's samples seen")
    return pd.DataFrame(rows, columns=["figure", "dataset", "algorithm", "n_z", "n_train", "split", "metric", "n_seen paper",
                                       "n_seen ours", "paper", "ours", "sd", "seeds", "diff"])


def markdown(table: pd.DataFrame) -> str:
    fmt = {"paper": "{:.1f}", "ours": "{:.1f}", "sd": "{:.1f}", "diff": "{:+.1f}"}
    cells = [[("" if pd.isna(v) else fmt[c].format(v)) if c in fmt else str(v) for c, v in zip(table.columns, row)]
             for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "|".join("---" for _ in table.columns) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells]) + "\n"


def comparison(df: pd.DataFrame, ref: pd.DataFrame, out: Path, sweeps: dict[str, str | None] | None = None,
               tol: float = 1.1, runs: pd.DataFrame | None = None) -> list[Path]:
    """<out>/comparison.md: ours vs the paper at matched samples seen; also printed."""
    table = compare(df, ref, sweeps, tol, runs)
    if table.empty:
        note("comparison table skipped: no run matches a reference point")
        return []
    text = ("# Ours vs the paper at matched samples seen\n\n"
            f"Each run's evaluation nearest the paper's samples seen (within x{tol}); ours = mean over seeds, "
            "sd = their standard deviation, diff = ours - paper. Paper values: reproduce/reference.csv.\n\n"
            + markdown(table))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "comparison.md"
    path.write_text(text)
    print(text)
    note(f"wrote {path}")
    return [path]


def fig2_table(df: pd.DataFrame, ref: pd.DataFrame, out: Path, sweep: str | None, points=(1e6, 1e7)) -> list[Path]:
    """<out>/figure2_table.md: per panel, each algorithm's final-point-style bound at each of `points` samples
    seen (train / test; mean ± sd over seeds), the paper's in brackets."""
    d = fig2_rows(df, sweep)
    if d.empty:
        return []
    lines = []
    for point in points:
        at = d[np.abs(np.log(d.n_seen / point)) <= math.log(1.1)]
        if at.empty:
            continue
        algs = [a for a in PALETTE if a in set(at.algorithm)]
        lines += [f"\n**{point:.0e} samples** (ours, the paper's in brackets; ± sd over seeds where there are several)\n",
                  "| dataset | n_z | " + " | ".join(f"{a} train | {a} test" for a in algs) + " |",
                  "|---|---|" + "---|---|" * len(algs)]
        for (dataset, n_z), cell in at.groupby(["dataset", "n_z"]):
            cells = []
            for a in algs:
                for split in SPLITS:
                    v = cell[(cell.algorithm == a) & (cell.split == split)].value
                    p = paper_value(ref, dataset, a, n_z, None, split, "lower_bound", int(point))
                    sd = f" ± {v.std():.1f}" if len(v) > 1 else ""
                    cells.append("" if v.empty else f"{v.mean():.1f}{sd}" + (f" ({p:g})" if p is not None else ""))
            lines.append(f"| {dataset} | {n_z} | " + " | ".join(cells) + " |")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "figure2_table.md"
    path.write_text("# Figure 2 at matched samples seen\n" + "\n".join(lines) + "\n")
    note(f"wrote {path}")
    return [path]


def fig3_table(df: pd.DataFrame, ref: pd.DataFrame, out: Path, sweep: str | None, runs: pd.DataFrame) -> list[Path]:
    """<out>/figure3_table.md: each Figure 3 curve at its last point, HMC and IS log p(x) (train / test), the
    paper's value at the same samples seen and at its own last point, and the run's wall time."""
    d = fig3_estimates(df, sweep, "Figure 3 table")
    if d.empty:
        return []
    d = recount(d, runs, "gradient")
    wall = runs.set_index("run_id").wall_s
    lines = ["# Figure 3 at each curve's last point", "",
             "Marginal log-likelihood per datapoint, MNIST, the HMC estimator (appendix D) and IS; MCEM's samples count "
             "decoder gradients. Paper: its value at our last point where it has one, and at its own last point.", "",
             "| N_train | algorithm | n_z | seeds | samples | split | HMC | IS | paper here | paper last (samples) | wall (min) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {a: i for i, a in enumerate(PALETTE)}  # the paper's algorithm order; others after

    def key(group) -> tuple:
        (n_train, algorithm, n_z), _ = group
        return n_train, order.get(algorithm, len(order)), n_z

    for (n_train, algorithm, n_z), g in sorted(d.groupby(["n_train", "algorithm", "n_z"]), key=key):
        last = g[g.n_seen == g.groupby("run_id").n_seen.transform("max")]
        for split in SPLITS:
            at = last[last.split == split]
            est = {m: at[at.metric == m].value for m in ML_METRICS}
            fmt = lambda v: "" if v.empty else f"{v.mean():.1f}" + (f" ± {v.std():.1f}" if len(v) > 1 else "")  # noqa: E731
            n_seen, first = int(at.n_seen.max()), int(at.n_seen.min())
            here = paper_value(ref, "mnist", algorithm, n_z, int(n_train), split, "marginal_ll", n_seen)
            final = ref[(ref.figure == "fig3") & (ref.n_train == n_train) & (ref.algorithm == algorithm)
                        & (ref.n_z == n_z) & (ref.split == split)].sort_values("n_seen").tail(1)
            paper_last = "" if final.empty else f"{final.value.iloc[0]:g} ({final.n_seen.iloc[0]:.2g})"
            minutes = wall.reindex(at.run_id.unique()).astype(float) / 60
            lines.append(f"| {n_train} | {algorithm} | {n_z} | {at.run_id.nunique()} | "
                         f"{f'{first:.3g}–' if first != n_seen else ''}{n_seen:.3g} | {split} | "
                         f"{fmt(est['marginal_ll_hmc'])} | {fmt(est['marginal_ll_is'])} | {'' if here is None else f'{here:g}'} | "
                         f"{paper_last} | {minutes.mean():.0f} |")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "figure3_table.md"
    path.write_text("\n".join(lines) + "\n")
    note(f"wrote {path}")
    return [path]


# ----------------------------------------------------------------------------------------------- CLI
def default_results(mine: Path = Path("runs"), published: Path = Path("results")) -> Path:
    """Your runs (the default log.results_dir) when there are any, else the results this repository publishes."""
    chosen = mine if any(mine.glob("*/*.parquet")) else published
    note(f"reading {chosen}/ ({'your runs' if chosen == mine else 'the published results; yours go to runs/'}); "
         "--results DIR picks another")
    return chosen


def main(argv: list[str] | None = None) -> dict[str, list[Path]]:
    p = argparse.ArgumentParser(prog="python -m reproduce.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=None,
                   help="results dir (default: runs/, your runs, when it holds any; else results/, the published ones)")
    p.add_argument("--out", type=Path, default=None, help="output dir (default: <results>/figures)")
    p.add_argument("--reference", type=Path, default=None, help="the paper's values (default: reproduce/reference.csv)")
    for key, what in FIGURES.items():
        p.add_argument(f"--{key}-sweep", default=SWEEPS[key], metavar="SWEEPS",
                       help=f"sweeps to draw {what} from, in order of preference (default: {SWEEPS[key]}; 'all': every sweep)")
    p.add_argument("--seed", type=int, default=0, help="seed of Figure 5's samples (default: 0)")
    p.add_argument("--tol", type=float, default=1.1, help="max ratio of samples seen, ours vs paper (default: 1.1)")
    from reproduce import claims

    args = p.parse_args(argv)
    args.results = args.results if args.results is not None else default_results()
    out = args.out if args.out is not None else args.results / "figures"
    df, runs, ref = load_results(args.results), load_runs(args.results), load_reference(args.reference)
    status = runs.status.fillna("unknown").value_counts().to_dict() if len(runs) else {}
    note(f"{df.run_id.nunique()} runs, {len(df)} rows under {args.results}; status {status}")
    sweeps = {"fig2": args.fig2_sweep, "fig3": args.fig3_sweep}
    written = {"figure2": figure2(df, ref, out, args.fig2_sweep),
               "figure3": figure3(df, ref, out, args.fig3_sweep, runs, "gradient") + figure3(df, ref, out, args.fig3_sweep, runs, "datapoint"),
               "figure4": figure4(runs, out, args.fig45_sweep),
               "figure5": figure5(runs, out, args.fig45_sweep, args.seed),
               "comparison": comparison(df, ref, out, sweeps, args.tol, runs),
               "figure2_table": fig2_table(df, ref, out, args.fig2_sweep),
               "figure3_table": fig3_table(df, ref, out, args.fig3_sweep, runs),
               "claims": claims.write(df, runs, ref, out, sweeps)}
    if (df.algorithm == "full_vb").any():  # beyond the paper: only where such runs exist
        written["figure_full_vb"] = figure_full_vb(df, out)
    written["pages"] = readme.refresh(only=[p for paths in written.values() for p in paths])  # README, docs/
    return written


if __name__ == "__main__":
    main()
