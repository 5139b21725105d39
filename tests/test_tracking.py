"""W&B in real offline mode, read back from the run files it wrote; failure isolation in a multirun."""
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import reproduce_cmd
from wandb_offline import read_wandb_run


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = reproduce_cmd(tmp, "dataset=synthetic", "budget=smoke", "train.threads=1", *args)
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=240)


def wandb_runs(tmp: Path) -> list[dict]:
    return [read_wandb_run(d) for d in sorted((tmp / "wandb").glob("offline-run-*"))]


def test_offline_wandb_run_mirrors_the_results(tmp_path):
    p = run(tmp_path, "log.wandb=offline", "log.sweep=wb", "model.n_z=3")
    assert p.returncode == 0, p.stderr
    (r,) = wandb_runs(tmp_path)
    assert (r["group"], r["job_type"], r["exit_code"]) == ("wb", "aevb", 0)
    assert "model.n_z=3" in r["name"]
    assert r["config"]["model"]["n_z"] == 3 and r["config"]["dataset"]["name"] == "synthetic"
    logged = [h for h in r["history"] if "test/lower_bound" in h]
    (meta,) = (tmp_path / "results" / "wb").glob("*.yaml")
    import pandas as pd
    rows = pd.read_parquet(meta.with_suffix(".parquet"))
    test = rows[(rows.split == "test") & (rows.metric == "lower_bound")]
    assert [h["n_seen"] for h in logged] == test.n_seen.tolist()
    assert [h["test/lower_bound"] for h in logged] == test.value.tolist()
    assert r["summary"]["final/test_lower_bound"] == test.value.iloc[-1]
    assert r["summary"]["curves/_type"] == "image-file"


def test_a_failing_job_does_not_stop_the_multirun(tmp_path):
    p = run(tmp_path, "-m", "train.lr=1e30,0.02", "log.wandb=offline")
    assert p.returncode == 1
    assert "1 job(s) failed" in p.stderr and "non-finite train/lower_bound=nan at step" in p.stderr
    status = sorted(yaml.safe_load(m.read_text())["meta"]["status"] for m in (tmp_path / "results" / "default").glob("*.yaml"))
    assert status == ["done", "failed"]
    assert sorted(r["exit_code"] for r in wandb_runs(tmp_path)) == [0, 1]  # each job its own W&B run, always finished


def test_joblib_launcher_runs_jobs_in_parallel_processes_and_reports_failures(tmp_path):
    p = run(tmp_path, "-m", "launcher=joblib", "train.lr=1e30,0.02", "log.wandb=disabled")
    assert p.returncode == 1 and "1 job(s) failed" in p.stderr, p.stderr[-2000:]
    metas = [yaml.safe_load(m.read_text())["meta"] for m in (tmp_path / "results" / "default").glob("*.yaml")]
    assert sorted(m["status"] for m in metas) == ["done", "failed"]


@pytest.mark.slow  # 12 s: submitit's local executor, the cluster path
def test_submitit_local_launcher_runs_the_cluster_path(tmp_path):
    p = run(tmp_path, "-m", "launcher=submitit_local", "model.n_z=2,3", "log.wandb=offline")
    assert p.returncode == 0, p.stderr[-3000:]
    metas = [yaml.safe_load(m.read_text())["meta"] for m in (tmp_path / "results" / "default").glob("*.yaml")]
    assert sorted(m["status"] for m in metas) == ["done", "done"]
    assert sorted(r["exit_code"] for r in wandb_runs(tmp_path)) == [0, 0]  # one W&B run per job, from each process
