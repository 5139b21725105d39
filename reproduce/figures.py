"""The paper's Figures 2-5 (and the full VB figure beyond it), one function per figure, from the rows and runs
of reproduce.results; each writes <out>/<name>.png and .pdf and returns their paths (none when its data is absent)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from reproduce import models  # noqa: E402
from reproduce.data import IMAGE_SHAPE  # noqa: E402
from reproduce.paper import ALGORITHMS  # noqa: E402
from reproduce.results import ML_METRICS, PANELS, SPLITS, fig2_rows, fig3_rows, note, pick, recount, select, with_weights  # noqa: E402

PALETTE = dict(zip(ALGORITHMS, ["tab:red", "tab:green", "tab:blue", "tab:purple"]))  # the paper's colours, then ours
DASHES = {"train": "", "test": (4, 2)}  # train solid, test dashed (paper)
MARKERS = {"train": "o", "test": "X"}  # the paper's values (reference.csv)
YLIM = {"mnist": (-150, -95), "frey": (0, 1600)}  # Figure 2's y ranges (lower end widened where points lie below)
NAMES = {"mnist": "MNIST", "frey": "Frey Face"}
MANIFOLD_SIZE = {"frey": 10, "mnist": 20}  # Figure 4's grids
SAMPLE_NZ = (2, 5, 10, 20)  # Figure 5's panels
FIG3 = ALGORITHMS[:3]  # Figure 3's algorithms (AEVB, wake-sleep, MCEM); others are drawn thinner, beside them
CURVE_WIDTHS = {"the paper's": 1.8, "beyond the paper": 0.9}
COUNTS = {"gradient": "decoder gradients", "datapoint": "datapoints per iteration"}


def palette(*algorithms) -> dict[str, str]:
    """The paper's colours (AEVB red, wake-sleep green, MCEM blue), others from the default cycle."""
    taken = {matplotlib.colors.to_hex(c) for c in PALETTE.values()}
    extra = iter(c for c in sns.color_palette("tab10").as_hex() if c not in taken)
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
    state, cfg = run.stored.state(), run.config.model
    n_x = state["encoder"]["hidden.weight"].shape[1]
    h, w = IMAGE_SHAPE[run.dataset]
    if n_x != h * w:
        note(f"{run.run_id}: n_x={n_x} is not {h}x{w}; skipped")
        return None
    _, decoder = models.build(cfg, n_x)
    decoder.load_state_dict(state["decoder"])
    return decoder.eval()


def latent_grid(n: int) -> torch.Tensor:
    """[n*n, 2] row-major: the unit square's cell centres (k + 0.5)/n through the Gaussian inverse CDF;
    z1 grows left to right, z2 bottom to top."""
    q = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(n, dtype=torch.float32) + 0.5) / n)
    z2, z1 = torch.meshgrid(q.flip(0), q, indexing="ij")
    return torch.stack([z1, z2], -1).reshape(n * n, 2)


def tiles(images: torch.Tensor, shape: tuple[int, int], nrow: int) -> np.ndarray:
    """[n, n_x] decoder means -> one [rows*h, nrow*w] image."""
    return make_grid(images.reshape(-1, 1, *shape), nrow=nrow, padding=0)[0].numpy()


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
    beyond = {"size": "curve", "size_order": list(CURVE_WIDTHS), "sizes": CURVE_WIDTHS} if not set(data.algorithm) <= set(FIG3) else {}
    data = data.assign(curve=np.where(data.algorithm.isin(FIG3), "the paper's", "beyond the paper"))
    g = sns.relplot(data=data, kind="line", x="n_seen_m", y="value", hue="algorithm", hue_order=list(pal), palette=pal,
                    style="split", style_order=SPLITS, dashes=DASHES, col="n_train", col_order=cols, row=row,
                    row_order=n_zs if row else None, errorbar="sd", height=3.2, aspect=1.2,
                    facet_kws={"sharey": False, "sharex": False}, **beyond)
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
    runs = with_weights(runs, list(IMAGE_SHAPE))
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
    runs = with_weights(runs, list(IMAGE_SHAPE))
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
