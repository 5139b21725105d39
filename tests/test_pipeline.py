"""End to end on small synthetic data: a sweep in a subprocess writes the expected files; exact resume."""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import yaml

from conftest import REPO, reproduce_cmd
from reproduce.sinks import COLUMNS
from wandb_offline import read_wandb_run
from reproduce.config import AEVBConfig, Config, DatasetConfig, ModelConfig, WandbMode
from reproduce.evaluate import schedule



def reproduce(tmp: Path, *overrides: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(reproduce_cmd(tmp, "log.progress=true", *overrides), cwd=tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def finish(p: subprocess.Popen) -> str:
    out, _ = p.communicate(timeout=240)
    assert p.returncode == 0, out
    return out


def test_smoke_sweep_writes_tidy_results(tmp_path):
    finish(reproduce(tmp_path, "+sweep=smoke"))
    files = sorted((tmp_path / "results" / "smoke").glob("*.parquet"))
    assert len(files) == 4
    df = pd.concat(pd.read_parquet(f) for f in files)
    assert list(df.columns) == COLUMNS
    assert set(df.split) == {"train", "test"}
    assert set(df.metric) == {"lower_bound", "marginal_ll_is", "active_units"}
    final = df[df.n_seen == df.n_seen.max()].pivot_table(index=["run_id", "split"], columns="metric", values="value")
    assert (final.marginal_ll_is >= final.lower_bound - 0.5).all()  # IS (k = 50) above the ELBO, up to noise
    assert set(df.n_z) == {2, 3} and df.n_seen.max() == 20_000
    assert set(df.algorithm) == {"aevb", "wake_sleep"}
    for f in files:
        meta = yaml.safe_load(f.with_suffix(".yaml").read_text())
        assert meta["meta"]["status"] == "done" and meta["meta"]["commit"]
        assert meta["config"]["model"]["n_z"] in (2, 3)
    for _, run in df[(df.split == "test") & (df.metric == "lower_bound")].groupby("run_id"):
        assert run.value.iloc[-1] > run.value.iloc[0] + 3  # every job learned
    assert not list((tmp_path / "ckpt").rglob("*.pt"))  # checkpoints removed once done


def test_eval_schedule_log_spaced_or_linear_and_ends_at_budget():
    cfg = Config(dataset=DatasetConfig(), model=ModelConfig(), algorithm=AEVBConfig())
    pts = schedule(cfg)
    assert pts[0] == 100_000 and pts[-1] == 1_000_000 and len(pts) == 6
    assert all(p % 100 == 0 for p in pts)
    cfg.train.budget = 20_000
    assert schedule(cfg) == [20_000]
    cfg.train.budget, cfg.eval.every = 1_000_000, 250_000
    assert schedule(cfg) == [100_000, 350_000, 600_000, 850_000, 1_000_000]


JOB = ["dataset=synthetic", "train.budget=200000", "eval.start=1000", "train.checkpoint_every=20000",
       "dataset.binarize=dynamic", "train.threads=1"]


def rows(tmp: Path) -> pd.DataFrame:
    (f,) = (tmp / "results" / "default").glob("*.parquet")
    return pd.read_parquet(f).drop(columns="wall_s")


def test_kill_and_rerun_resumes_exactly(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    whole = reproduce(a, *JOB)  # the uninterrupted job, on the other core meanwhile
    p = reproduce(b, *JOB, "log.wandb=offline", start_new_session=True)
    deadline = time.time() + 120
    while not list((b / "ckpt").rglob("*.pt")) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert list((b / "ckpt").rglob("*.pt")), "the job finished before it could be killed"
    finish(whole)
    out = finish(reproduce(b, *JOB, "log.wandb=offline"))
    at = int(re.search(r"resuming \S+ at (\d+) samples", out).group(1))
    meta = yaml.safe_load(next((b / "results").rglob("*.yaml")).read_text())["meta"]
    assert 0 < at == meta["n_start"] < meta["n_seen"]  # the rate and the sweep's time left count from here
    pd.testing.assert_frame_equal(rows(a), rows(b))
    assert "already finished" in finish(reproduce(b, *JOB))
    runs = sorted((b / "wandb").glob("offline-run-*"))
    ids = [r.name.split("-", 3)[-1] for r in runs]  # offline-run-<time>-<id>; the killed one may hold no run record
    assert len(ids) == 2 and len(set(ids)) == 1  # the resumed job continued its W&B run
    assert read_wandb_run(runs[-1])["exit_code"] == 0


def test_two_runs_of_one_job_at_once_one_trains_the_other_skips_it(tmp_path):
    """Two processes on one job and one results folder: one trains, the other says the job is running
    elsewhere and touches nothing; the rows equal those of a lone run (in another folder, meanwhile)."""
    a, lone = tmp_path / "a", tmp_path / "lone"
    a.mkdir(), lone.mkdir()
    job = ["dataset=synthetic", "train.budget=100000", "eval.start=1000", "train.checkpoint_every=1000", "train.threads=1"]
    first, alone = reproduce(a, *job), reproduce(lone, *job)
    deadline = time.time() + 120
    while not [m for m in (a / "results").rglob("*.yaml") if "status: running" in m.read_text()] and time.time() < deadline:
        time.sleep(0.02)  # the first holds the job's lock from before it writes its meta file
    os.kill(first.pid, signal.SIGSTOP)  # paused mid-job (still holding the lock) while the second starts: no race
    try:
        second = finish(reproduce(a, *job))
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert "is running elsewhere (another process holds its lock" in second and ".lock); skipped" in second, second
    out = finish(first)
    assert "running elsewhere" not in out and "resuming" not in out
    finish(alone)
    pd.testing.assert_frame_equal(rows(a), rows(lone))


def test_non_finite_parameter_is_named_before_a_checkpoint():
    import torch
    from reproduce.train import check_parameters
    from reproduce.models import build
    enc, dec = build(ModelConfig(n_z=2, n_hidden=4), 6)
    alg = type("A", (), {"encoder": enc, "decoder": dec})()
    check_parameters(alg, 1, 100)
    with torch.no_grad():
        dec.out.weight[0, 0] = float("inf")
    import pytest
    with pytest.raises(FloatingPointError, match=r"non-finite parameter BernoulliDecoder.out.weight at step 7 \(700 samples"):
        check_parameters(alg, 7, 700)


def test_finished_job_is_recognised_by_its_config_even_after_new_options():
    from reproduce.jobs import identity, plain, same_job
    cfg = Config(dataset=DatasetConfig(), model=ModelConfig(n_z=3), algorithm=AEVBConfig())
    stored = plain(cfg)
    assert same_job(stored, cfg)
    del stored["eval"]["hmc_prior_k"]  # written before the option existed
    assert same_job(stored, cfg)
    cfg.eval.hmc_prior_k = 7  # ... but this job sets it away from its default
    assert not same_job(stored, cfg)
    cfg.eval.hmc_prior_k, stored["model"]["n_z"] = 1000, 5
    assert not same_job(stored, cfg)
    cfg.log.wandb, cfg.train.threads, cfg.dataset.root, cfg.device = WandbMode.disabled, 1, "/elsewhere", "cuda"  # where and how a job runs is not what it is
    stored["model"]["n_z"] = 3
    assert same_job(stored, cfg) and "log.wandb" not in identity(cfg)
    from reproduce.jobs import run_id
    assert run_id(cfg) == run_id(Config(dataset=DatasetConfig(), model=ModelConfig(n_z=3), algorithm=AEVBConfig()))


def test_every_published_run_keeps_its_id_and_is_recognised():
    """Every committed result is recognised as the same job as its stored config (so resume and 'already
    finished' keep working on published results); where the stored config holds every identity key of
    today's schema, its run id recomputed from it is its file name."""
    from reproduce.jobs import flatten, identity, run_id, same_job
    from reproduce.results import read, stored_config
    metas = sorted((REPO / "results").glob("*/*.yaml"))
    assert len(metas) >= 40
    exact = 0
    for meta in metas:
        run = read(meta)
        cfg = stored_config(run.stored)
        assert same_job(run.stored, cfg) and run.meta["run_id"] == meta.stem, meta
        if set(identity(cfg)) <= set(flatten(run.stored)):
            assert run_id(cfg) == meta.stem, meta
            exact += 1
    print(f"{exact} of {len(metas)} run ids recomputed exactly")
