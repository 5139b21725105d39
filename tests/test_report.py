"""The report on small fake results: every figure written, the comparison table's rows and differences,
and figures without data skipped rather than failing; and the published tables against the report made of results/."""
from pathlib import Path

import matplotlib.colors
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO
from reproduce import figures, models, paper, report, results as stored, tables
from reproduce.config import Decoder, ModelConfig
from reproduce.sinks import COLUMNS

SHARED_REFERENCE = REPO.parent / "shared" / "paper" / "reference.csv"


def write_run(root: Path, sweep: str, dataset: str, algorithm: str, n_z: int, seed: int, values: dict,
              n_train: int | None = None, weights: bool = False, n_hidden: int = 8, **algorithm_cfg) -> str:
    """results/<sweep>/<run_id>.{parquet,yaml[,weights.pt]}; values: {(n_seen, split, metric): value}."""
    run_id = f"{dataset}-{algorithm}-nz{n_z}{'' if n_train is None else f'-n{n_train}'}-s{seed}-{sweep}"
    d = root / sweep
    d.mkdir(parents=True, exist_ok=True)
    rows = [{"run_id": run_id, "sweep": sweep, "dataset": dataset, "algorithm": algorithm, "n_z": n_z,
             "n_train": n_train, "seed": seed, "n_seen": n, "split": s, "metric": m, "value": v, "wall_s": 1.0}
            for (n, s, m), v in values.items()]
    if rows:
        pd.DataFrame(rows, columns=COLUMNS).to_parquet(d / f"{run_id}.parquet", index=False)
    decoder = "gaussian" if dataset == "frey" else "bernoulli"
    model = {"n_z": n_z, "n_hidden": n_hidden, "decoder": decoder, "init_std": 0.01, "min_log_var": -12.0}
    doc = {"meta": {"status": "done", "commit": "abc", "run_id": run_id},
           "config": {"dataset": {"name": dataset, "n_train": n_train}, "model": model,
                      "algorithm": {"name": algorithm, **algorithm_cfg}, "seed": seed}}
    (d / f"{run_id}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    if weights:
        n_x = {"mnist": 784, "frey": 560}[dataset]
        enc, dec = models.build(ModelConfig(n_z=n_z, n_hidden=n_hidden, decoder=Decoder(decoder), init_std=0.5), n_x)
        torch.save({"encoder": enc.state_dict(), "decoder": dec.state_dict()}, d / f"{run_id}.weights.pt")
    return run_id


def curve(points: dict, metric: str = "lower_bound") -> dict:
    """{n_seen: (train, test)} -> values keyed (n_seen, split, metric)."""
    return {(n, s, metric): v for n, (tr, te) in points.items() for s, v in (("train", tr), ("test", te))}


def fig2_runs(root: Path) -> None:
    # planted: test at 1e6 is -150 and -152 over two seeds -> mean -151, paper -152.9, diff +1.9
    write_run(root, "fig2", "mnist", "aevb", 3, 0, curve({100_000: (-190, -189), 1_000_000: (-151, -150), 10_000_000: (-130, -131)}))
    write_run(root, "fig2", "mnist", "aevb", 3, 1, curve({100_000: (-191, -190), 1_000_000: (-153, -152), 10_000_000: (-132, -133)}))
    # 1.3e6 is too far from the paper's 1e6 (x1.3 > x1.1): never matched
    write_run(root, "fig2", "mnist", "wake_sleep", 3, 0, curve({100_000: (-200, -199), 1_300_000: (-160, -159)}))
    write_run(root, "fig2", "frey", "aevb", 2, 0, curve({100_000: (300, 310), 1_000_000: (700, 690)}))


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report") / "results"
    fig2_runs(root)
    # Figure 3: HMC preferred over IS per run; planted test HMC at 6e7 = -140 (paper -143.2, diff +3.2)
    ml = {**curve({2_000_000: (-125, -150), 60_000_000: (-110, -140)}, "marginal_ll_hmc"),
          **curve({2_000_000: (-126, -151), 60_000_000: (-111, -150)}, "marginal_ll_is"),
          **curve({2_000_000: (-127, -152), 60_000_000: (-112, -151)}, "lower_bound")}
    write_run(root, "fig3", "mnist", "aevb", 3, 0, ml, n_train=1000)
    write_run(root, "fig3", "mnist", "mcem", 3, 0, curve({30_000_000: (-160, -161), 68_000_000: (-147, -149)}, "marginal_ll_is"),
              n_train=50000, count="gradient")
    # counted datapoints (stored before algorithm.count): 3e6 datapoint-samples are 4.8e7 decoder gradients
    write_run(root, "fig3", "mnist", "mcem", 3, 1, curve({3_000_000: (-170, -171)}, "marginal_ll_hmc"), n_train=50000)
    # Figures 4/5: weights of small models; their lower bounds must not leak into Figure 2 (sweep fig2 exists)
    write_run(root, "fig45", "frey", "aevb", 2, 0, {}, weights=True)
    write_run(root, "fig45", "mnist", "aevb", 2, 0, {}, weights=True)
    write_run(root, "fig45", "mnist", "aevb", 5, 0, curve({1_000_000: (-100, -100)}), weights=True)
    return root


@pytest.fixture(scope="module")
def written(results) -> dict:
    return report.main(["--results", str(results), "--out", str(results / "figures")])


def test_main_writes_every_figure_as_png_and_pdf(written, results):
    out = results / "figures"
    for name in ("figure2", "figure4", "figure5"):
        assert written[name] == [out / f"{name}.png", out / f"{name}.pdf"]
        assert all(p.stat().st_size > 1000 for p in written[name]), name
    assert written["figure3"] == [out / f"figure3{c}.{e}" for c in ("", "_datapoint") for e in ("png", "pdf")]
    assert written["comparison"] == [out / "comparison.md"] and written["claims"] == [out / "claims.md"]
    table = (out / "figure2_table.md").read_text()
    assert "| mnist | 3 | -152.0 ± 1.4 (-155.3) | -151.0 ± 1.4 (-152.9) |" in table  # two seeds planted at 1e6


def test_comparison_table_rows_and_differences(results, written, capsys):
    ref = paper.load_reference()
    table = paper.compare(stored.load_rows(results), ref, runs=stored.load_runs(results))
    keys = set(zip(table.figure, table.dataset, table.algorithm, table.n_z, table.n_train, table.split, table["n_seen paper"]))
    assert keys == {
        ("fig2", "mnist", "aevb", 3, "", "train", "1e+06"), ("fig2", "mnist", "aevb", 3, "", "test", "1e+06"),
        ("fig2", "mnist", "aevb", 3, "", "train", "1e+07"), ("fig2", "mnist", "aevb", 3, "", "test", "1e+07"),
        ("fig2", "frey", "aevb", 2, "", "train", "1e+06"), ("fig2", "frey", "aevb", 2, "", "test", "1e+06"),
        ("fig3", "mnist", "aevb", 3, 1000, "train", "2e+06"), ("fig3", "mnist", "aevb", 3, 1000, "train", "6e+07"),
        ("fig3", "mnist", "aevb", 3, 1000, "test", "6e+07"), ("fig3", "mnist", "mcem", 3, 50000, "train", "3e+07"),
        ("fig3", "mnist", "mcem", 3, 50000, "train", "6.8e+07"), ("fig3", "mnist", "mcem", 3, 50000, "test", "6.8e+07"),
    }
    lb = table[(table.dataset == "mnist") & (table.split == "test") & (table["n_seen paper"] == "1e+06")].iloc[0]
    assert lb.seeds == 2 and lb.paper == -152.9 and lb.ours == pytest.approx(-151.0)
    assert lb.sd == pytest.approx(2**0.5) and lb["diff"] == pytest.approx(1.9)
    ml = table[(table.figure == "fig3") & (table.algorithm == "aevb") & (table.split == "test")].iloc[0]
    assert ml.metric == "marginal_ll (hmc)" and ml.ours == -140.0 and ml["diff"] == pytest.approx(3.2)
    assert set(table[table.algorithm == "mcem"].metric) == {"marginal_ll (is)"}
    text = (results / "figures" / "comparison.md").read_text()
    assert "| fig2 | mnist | aevb | 3 |  | test | lower_bound | 1e+06 | 1e+06 | -152.9 | -151.0 | 1.4 | 2 | +1.9 |" in text
    assert "| -143.2 | -140.0 |  | 1 | +3.2 |" in text


def test_figure3_table_holds_each_curve_at_its_last_point(written, results):
    """AEVB N=1000: HMC and IS at 6e7 (train -110 / -111, the paper's -109.1 there); MCEM N=50000: two seeds whose
    last points differ (6.8e7; seed 1 counted datapoints, 3e6 x 16 = 4.8e7 gradients) show both sample counts."""
    table = (results / "figures" / "figure3_table.md").read_text()
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:6]): line for line in table.splitlines() if line.startswith("| 1000")}
    aevb = rows[("1000", "aevb", "3", "1", "6e+07", "train")]
    assert "| -110.0 | -111.0 | -109.1 | -109.1 (6e+07) |" in aevb
    assert "| -140.0 | -150.0 | -143.2 |" in rows[("1000", "aevb", "3", "1", "6e+07", "test")]
    assert "| 50000 | mcem | 3 | 2 | 4.8e+07–6.8e+07 | train |" in table


def test_missing_data_is_skipped_without_error(tmp_path, capsys):
    fig2_runs(tmp_path / "results")
    written = report.main(["--results", str(tmp_path / "results")])
    out = tmp_path / "results" / "figures"
    assert [p.name for p in written["figure2"]] == ["figure2.png", "figure2.pdf"]
    assert written["figure3"] == written["figure4"] == written["figure5"] == []
    assert not list(out.glob("figure[345]*.*"))
    log = capsys.readouterr().out
    assert "Figure 3 skipped" in log and "Figure 4 skipped" in log and "Figure 5 skipped" in log

    (tmp_path / "nothing").mkdir()  # an empty results folder (a missing one is refused: test_bad_input.py)
    empty = report.main(["--results", str(tmp_path / "nothing"), "--out", str(tmp_path / "none")])
    assert all(v == [] for v in empty.values()) and not (tmp_path / "none").exists()


def test_reference_is_the_papers_table():
    ref = paper.load_reference()
    assert list(ref.columns) == ["figure", "dataset", "algorithm", "n_z", "n_train", "n_seen", "split", "metric", "value"]
    assert len(ref) == 148 and set(ref.figure) == {"fig2", "fig3"}
    if SHARED_REFERENCE.exists():
        path = Path(str(paper.resources.files("reproduce") / "reference.csv"))
        assert path.read_bytes() == SHARED_REFERENCE.read_bytes()


def test_latent_grid_is_the_gaussian_quantiles_of_a_square_grid():
    z = figures.latent_grid(4).reshape(4, 4, 2)  # [row, col, (z1, z2)]
    u = torch.distributions.Normal(0.0, 1.0).cdf(z)
    assert torch.allclose(u[0, :, 0], torch.tensor([0.125, 0.375, 0.625, 0.875]), atol=1e-5)  # z1 along columns
    assert torch.allclose(u[:, 0, 1], torch.tensor([0.875, 0.625, 0.375, 0.125]), atol=1e-5)  # z2 up the rows
    assert torch.isfinite(z).all() and torch.allclose(z.sum((0, 1)), torch.zeros(2), atol=1e-5)


def test_the_report_reads_your_runs_when_there_are_any_else_the_published_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert report.default_results() == Path("results")
    fig2_runs(tmp_path / "runs")
    assert report.default_results() == Path("runs")


def test_mcem_samples_are_recounted_to_either_count(results):
    df, runs = stored.load_rows(results), stored.load_runs(results)
    old = df[(df.algorithm == "mcem") & (df.seed == 1)]
    assert set(stored.recount(old, runs, "gradient").n_seen) == {3_000_000 * 16}  # 10 leapfrog + 1 + 5 updates
    assert set(stored.recount(old, runs, "datapoint").n_seen) == {3_000_000}
    new = df[(df.algorithm == "mcem") & (df.seed == 0)]
    assert set(stored.recount(new, runs, "datapoint").n_seen) == {30_000_000 // 16, 68_000_000 // 16}
    aevb = df[df.algorithm == "aevb"]
    assert stored.recount(aevb, runs, "gradient").n_seen.tolist() == aevb.n_seen.tolist()


def test_figure2_takes_each_curve_from_the_first_preferred_sweep_that_has_it(tmp_path):
    fig2_runs(tmp_path)  # sweep fig2: mnist n_z 3 (aevb, wake-sleep), frey n_z 2
    write_run(tmp_path, "fig2_1e7", "mnist", "aevb", 3, 0, curve({10_000_000: (-140, -141)}))
    write_run(tmp_path, "other", "mnist", "aevb", 5, 0, curve({1_000_000: (-100, -100)}))
    rows = stored.fig2_rows(stored.load_rows(tmp_path), "fig2_1e7,fig2")
    assert set(zip(rows.dataset, rows.n_z, rows.algorithm, rows.sweep)) == {
        ("mnist", 3, "aevb", "fig2_1e7"), ("mnist", 3, "wake_sleep", "fig2"), ("frey", 2, "aevb", "fig2")}


def test_figure2_table_takes_each_point_from_the_sweep_with_the_most_seeds_there(tmp_path):
    """1e6 from the two-seed sweep (mean -151 of -150, -152), 1e8 from the only sweep that reaches it."""
    fig2_runs(tmp_path)
    write_run(tmp_path, "fig2_1e8", "mnist", "aevb", 3, 0, curve({1_000_000: (-160, -160), 100_000_000: (-120, -121)}))
    tables.fig2_table(stored.load_rows(tmp_path), paper.load_reference(), tmp_path / "out", "fig2_1e8,fig2")
    text = (tmp_path / "out" / "figure2_table.md").read_text()
    one, hundred = text.split("**1e+06 samples**")[1].split("**1e+08 samples**")
    assert "| mnist | 3 | -152.0 ± 1.4 (-155.3) | -151.0 ± 1.4 (-152.9) |" in one and "-160" not in one
    assert "| mnist | 3 | -120.0 (-130.3) | -121.0 (-133.4) |" in hundred


def test_comparison_takes_each_point_from_the_sweep_with_the_most_seeds_there(tmp_path):
    """As figure2_table.md: 1e6 from the two-seed sweep, 1e8 from the one-seed sweep that alone reaches it."""
    fig2_runs(tmp_path)
    write_run(tmp_path, "fig2_1e8", "mnist", "aevb", 3, 0, curve({1_000_000: (-160, -160), 100_000_000: (-120, -121)}))
    table = paper.compare(stored.load_rows(tmp_path), paper.load_reference(), {"fig2": "fig2_1e8,fig2"})
    cell = table[(table.dataset == "mnist") & (table.algorithm == "aevb") & (table.n_z == 3)].set_index(["n_seen paper", "split"])
    assert (cell.loc[("1e+06", "train"), ["ours", "seeds"]].tolist(), cell.loc[("1e+06", "test"), "ours"]) == ([-152.0, 2], -151.0)
    assert cell.loc[("1e+08", "train"), ["ours", "seeds", "diff"]].tolist() == pytest.approx([-120.0, 1, -120.0 + 130.3])


def test_bf16_equivalence_table_checks_each_point_against_the_fp32_seeds_range(tmp_path):
    for seed, (tr, te) in enumerate([(-100, -101), (-102, -103), (-104, -105)]):
        write_run(tmp_path, "fig2_1e7", "mnist", "aevb", 20, seed, curve({1_000_000: (tr, te), 10_000_000: (tr + 10, te + 10)}))
    write_run(tmp_path, "fig2_1e7", "frey", "aevb", 10, 0, curve({1_000_000: (700, 690)}))
    write_run(tmp_path, "bf16_1e7", "mnist", "aevb", 20, 0, curve({1_000_000: (-101, -106), 10_000_000: (-93, -95)}))
    write_run(tmp_path, "bf16_1e7", "frey", "aevb", 10, 0, curve({1_000_000: (701, 688.5)}))
    tables.precision_table(stored.load_rows(tmp_path), tmp_path)
    text = (tmp_path / "bf16_equivalence.md").read_text()
    assert "| mnist | 20 | aevb | train | 1e+06 | -102.0 ± 2.0 | 3 | -101.0 | 1 | +1.0 | yes |" in text
    assert "| mnist | 20 | aevb | test | 1e+06 | -103.0 ± 2.0 | 3 | -106.0 | 1 | -3.0 | **no** |" in text  # below the range
    assert "| mnist | 20 | aevb | test | 1e+07 | -93.0 ± 2.0 | 3 | -95.0 | 1 | -2.0 | yes |" in text
    assert "| frey | 10 | aevb | train | 1e+06 | 700.0 | 1 | 701.0 | 1 | +1.0 | yes |" in text
    assert "| frey | 10 | aevb | test | 1e+06 | 690.0 | 1 | 688.5 | 1 | -1.5 | **no** |" in text  # over 1 nat, one seed
    assert "4 of 6 within" in text


def test_the_package_has_no_import_circle_and_the_reading_side_is_layered():
    """Every import of reproduce/ and baselines/ (module level or inside a function) as a graph: no circle, and
    results -> paper -> figures, tables -> claims -> report, nothing importing what is above it."""
    import ast

    repo = REPO
    files = {".".join(p.relative_to(repo).with_suffix("").parts).removesuffix(".__init__"): p
             for d in ("reproduce", "baselines") for p in (repo / d).rglob("*.py")}
    graph = {m: set() for m in files}
    for m, p in files.items():
        for n in ast.walk(ast.parse(p.read_text())):
            names = ([a.name for a in n.names] if isinstance(n, ast.Import) else
                     [n.module, *(f"{n.module}.{a.name}" for a in n.names)] if isinstance(n, ast.ImportFrom) and n.module else [])
            graph[m] |= {t for t in names if t in files and t != m}

    def reaches(a: str, b: str, seen: set) -> bool:
        return a == b or any(t not in seen and not seen.add(t) and reaches(t, b, seen) for t in graph[a])

    circles = [(m, t) for m in graph for t in graph[m] if reaches(t, m, set())]
    assert not circles
    layers = ["results", "paper", "figures", "tables", "claims", "report"]
    for i, low in enumerate(layers):
        assert not graph[f"reproduce.{low}"] & {f"reproduce.{u}" for u in layers[i + 1:]}, low
    assert [m for m in graph if "reproduce.report" in graph[m]] == []
    assert not any(t.startswith("baselines") for low in layers for t in graph[f"reproduce.{low}"])


def test_figure3_gap_table_reads_every_curve_at_the_last_common_point(tmp_path):
    """N_train = 1000: AEVB to 6e7, full VB to 3e7, so all are read at 3e7; AEVB's 3e7 lies halfway between its
    evaluations at 2e7 and 4e7 (hand: train (-120 + -110) / 2 = -115, test (-150 + -146) / 2 = -148)."""
    write_run(tmp_path, "fig3", "mnist", "aevb", 3, 0, {
        **curve({20_000_000: (-120, -150), 40_000_000: (-110, -146), 60_000_000: (-105, -145)}, "marginal_ll_hmc"),
        **curve({20_000_000: (-121, -152), 40_000_000: (-111, -150)}, "marginal_ll_is")}, n_train=1000)
    write_run(tmp_path, "fig3", "mnist", "full_vb", 3, 0, {
        **curve({30_000_000: (-130, -140)}, "marginal_ll_hmc"), **curve({30_000_000: (-131, -141)}, "marginal_ll_is")},
              n_train=1000)
    written = tables.fig3_gap_table(stored.load_rows(tmp_path), tmp_path / "out", "fig3", stored.load_runs(tmp_path))
    lines = written[0].read_text().splitlines()
    assert "| 1000 | 3e+07 | aevb | -115.0 | -148.0 | +33.0 |  | -116.0 | -151.0 | +35.0 |  |" in lines
    assert "| 1000 | 3e+07 | full_vb | -130.0 | -140.0 | +10.0 | +8.0 | -131.0 | -141.0 | +10.0 | +10.0 |" in lines
    figures.figure3(stored.load_rows(tmp_path), paper.load_reference(), tmp_path / "out", "fig3")
    assert (tmp_path / "out" / "figure3.png").stat().st_size > 1000


def test_figure3_draws_algorithms_beyond_the_paper_thinner(tmp_path, monkeypatch):
    write_run(tmp_path, "fig3", "mnist", "aevb", 3, 0, curve({1e6: (-130, -140), 2e6: (-120, -130)}, "marginal_ll_hmc"), n_train=1000)
    write_run(tmp_path, "fig3", "mnist", "full_vb", 3, 0, curve({1e6: (-131, -141), 2e6: (-121, -131)}, "marginal_ll_hmc"), n_train=1000)
    drawn = {}
    monkeypatch.setattr(figures, "save", lambda fig, out, name: drawn.setdefault(name, fig) and [])
    figures.figure3(stored.load_rows(tmp_path), paper.load_reference(), tmp_path, "fig3")
    colours = {a: matplotlib.colors.to_hex(c) for a, c in figures.palette({"aevb", "full_vb"}).items()}
    assert colours["full_vb"] not in {matplotlib.colors.to_hex(c) for c in figures.PALETTE.values()}  # not MCEM's blue
    widths = {(matplotlib.colors.to_hex(line.get_color()), line.get_linewidth())
              for ax in drawn["figure3"].axes for line in ax.get_lines() if len(line.get_xdata()) == 2}
    assert widths == {(colours["aevb"], figures.CURVE_WIDTHS["the paper's"]),
                      (colours["full_vb"], figures.CURVE_WIDTHS["beyond the paper"])}


PUBLISHED = REPO / "results"


def test_the_published_tables_are_what_the_report_makes_of_the_published_results(tmp_path):
    """results/figures/*.md are generated, never pasted: the report's tables made from results/ alone equal them."""
    args = report.parser().parse_args([])
    df, runs, ref = stored.load_rows(PUBLISHED), stored.load_runs(PUBLISHED), paper.load_reference(args.reference)
    made = [p for paths in report.write_tables(df, runs, ref, tmp_path, args).values() for p in paths]
    assert {p.name for p in made} >= {"comparison.md", "figure2_table.md", "figure3_table.md", "claims.md"}
    for p in made:
        assert p.read_text() == (PUBLISHED / "figures" / p.name).read_text(), (
            f"results/figures/{p.name} is not what the report makes of results/: python -m reproduce.report --results results")
