"""launcher=slurm against a real Slurm controller (docs/slurm.md): a sweep's rows equal the local launcher's, a
cancelled, requeued or signalled job resumes from its checkpoint with identical rows, a failing job is named in
the summary while the others finish, and the resources each job asks for are those of hydra.launcher.*.

Run with a cluster up: `export $(tests/cluster/slurm_up.sh) && python -m pytest -m cluster` (marker `cluster`,
left out of the default run). Without one they are skipped, unless REPRODUCE_TEST_CLUSTER=slurm (set by
.ci/run once it brought the cluster up) makes that a failure. The results and checkpoint folders are under
pytest's temporary folder: on this one-node cluster the node sees them; on a real one they must be on a file
system every node mounts."""
import os
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import reproduce_cmd

pytestmark = pytest.mark.cluster

SMOKE = ("+sweep=smoke",)  # 4 jobs: n_z 2, 3 x AEVB, wake-sleep, synthetic data, 2e4 samples each
# One job long enough to be caught mid-run: checkpointed every 2e4 samples, interrupted at its first checkpoint,
# its 4e6 samples take 20 s or more on any CPU. (A sweep of 4e5 took 0.1 min on a fast one: its job could end
# in the 2 s between a cancel's SIGTERM, which submitit's jobs ignore, and its SIGKILL, slurm_up.sh's KillWait.)
BUDGET = 4_000_000
LONG = ("-m", "dataset=synthetic", "budget=smoke", f"train.budget={BUDGET}", "train.checkpoint_every=20000", "log.sweep=resume")
WAIT_S = 600  # at most, per sweep


def cluster_missing() -> str | None:
    """Why there is no Slurm cluster to test against, or None where its node answers."""
    if not os.environ.get("SLURM_CONF"):
        return "SLURM_CONF is unset: bring a cluster up with `export $(tests/cluster/slurm_up.sh)`"
    try:
        p = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo failed: {e}"
    if not set(p.stdout.split()) & {"idle", "mixed", "allocated"}:
        return f"no node of SLURM_CONF={os.environ['SLURM_CONF']} is up: {(p.stdout + p.stderr).strip()}"
    return None


@pytest.fixture(scope="module", autouse=True)
def cluster():
    if reason := cluster_missing():
        if os.environ.get("REPRODUCE_TEST_CLUSTER") == "slurm":
            pytest.fail(f"REPRODUCE_TEST_CLUSTER=slurm but {reason}")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def cancel_leftovers(tmp_path):
    """Jobs a failed test leaves on the cluster are cancelled."""
    yield
    if (tmp_path / "multirun").exists():
        subprocess.run(["scancel", *slurm_ids(tmp_path)], capture_output=True)


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout


def sweep(tmp: Path, *overrides: str, launcher: str = "slurm") -> subprocess.CompletedProcess:
    cmd = reproduce_cmd(tmp, *overrides, f"launcher={launcher}")
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=WAIT_S)


def start(tmp: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(reproduce_cmd(tmp, *overrides, "launcher=slurm"), cwd=tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def rows(tmp: Path, sweep_name: str) -> dict[str, pd.DataFrame]:
    """Every job's result rows by run id, wall time aside."""
    return {f.stem: pd.read_parquet(f).drop(columns="wall_s") for f in sorted((tmp / "results" / sweep_name).glob("*.parquet"))}


def metas(tmp: Path, sweep_name: str) -> dict[str, dict]:
    return {f.stem: yaml.safe_load(f.read_text())["meta"] for f in (tmp / "results" / sweep_name).glob("*.yaml")}


def slurm_ids(tmp: Path) -> list[str]:
    """The Slurm ids of the jobs started from tmp (<array job>_<index>, or <job> where submitit submitted one
    job alone), from the names of their logs: .submitit/<id>/<id>_0_log.err."""
    logs = (tmp / "multirun" / ".submitit").rglob("*_0_log.err")
    return sorted(f.name.removesuffix("_0_log.err") for f in logs)


def show_job(slurm_id: str) -> dict[str, str]:
    """scontrol's record of one job: {"NumCPUs": "1", "TimeLimit": "1-00:00:00", ...}."""
    return dict(f.split("=", 1) for f in sh("scontrol", "show", "job", "-o", slurm_id).split() if "=" in f)


def job_logs(tmp: Path) -> str:
    return "\n".join(f.read_text() for f in (tmp / "multirun" / ".submitit").rglob("*_log.*"))


def wait_until(what: str, done, proc: subprocess.Popen | None = None, timeout: float = WAIT_S):
    t0 = time.time()
    while not (value := done()):
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the sweep ended before {what}:\n{proc.stdout.read()[-3000:]}")
        assert time.time() - t0 < timeout, f"no {what} in {timeout} s"
        time.sleep(0.2)
    return value


# A sweep through Slurm and the same sweep on this machine ---------------------------------------------------------

@pytest.fixture(scope="module")
def slurm_smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slurm")
    return tmp, sweep(tmp, *SMOKE)


@pytest.fixture(scope="module")
def local_smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    p = sweep(tmp, *SMOKE, launcher="joblib")
    assert p.returncode == 0, p.stderr[-3000:]
    return tmp


def test_sweep_through_slurm_has_the_local_launchers_rows(slurm_smoke, local_smoke):
    tmp, p = slurm_smoke
    assert p.returncode == 0, p.stderr[-3000:]
    ours, local = rows(tmp, "smoke"), rows(local_smoke, "smoke")
    assert len(ours) == 4 and ours.keys() == local.keys()
    for run_id in ours:
        pd.testing.assert_frame_equal(ours[run_id], local[run_id], check_exact=True)
    states = sh("sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", slurm_ids(tmp)[0].split("_")[0]).split()
    assert sorted(states) == [f"{i}|COMPLETED" for i in slurm_ids(tmp)]  # every job ran as a Slurm array task


def test_sweep_through_slurm_ends_with_its_summary_table(slurm_smoke):
    tmp, p = slurm_smoke
    assert "[sweep] smoke: 4 jobs" in p.stderr and "| job | status | samples |" in p.stderr
    for run_id in metas(tmp, "smoke"):
        assert re.search(rf"^\| {run_id} \| done \| 2e\+04 \| -\d+\.\d \| -\d+\.\d \| -\d+\.\d \|$", p.stderr, re.M)


def test_default_resources_are_one_cpu_4gb_a_day_on_the_default_partition(slurm_smoke):
    tmp, _ = slurm_smoke
    for slurm_id in slurm_ids(tmp):
        job = show_job(slurm_id)
        assert (job["NumCPUs"], job["CPUs/Task"], job["MinMemoryNode"]) == ("1", "1", "4G")
        assert (job["TimeLimit"], job["Partition"], job["ArrayTaskThrottle"]) == ("1-00:00:00", "debug", "4")
    script = next((tmp / "multirun" / ".submitit").rglob("*_submission.sh")).read_text()
    assert "#SBATCH --signal=USR2@120" in script  # the time-limit warning that makes submitit checkpoint and requeue


# hydra.launcher.* settings, and a job failing on its node -----------------------------------------------------

def test_resources_come_from_hydra_launcher_settings_and_a_failed_job_is_named(tmp_path):
    cpus = min(2, int(sh("sinfo", "-h", "-o", "%c").split()[0]))
    p = sweep(tmp_path, "-m", "dataset=synthetic", "budget=smoke", "train.lr=1e30,0.02", "hydra.launcher.partition=debug",
              f"hydra.launcher.cpus_per_task={cpus}", "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=30",
              "hydra.launcher.array_parallelism=1")
    assert p.returncode == 1 and "1 job(s) failed" in p.stderr, p.stderr[-3000:]
    status = {m["status"]: run_id for run_id, m in metas(tmp_path, "default").items()}
    assert status.keys() == {"done", "failed"}
    assert re.search(rf"^\| {status['failed']} \| \*\*failed\*\* \|", p.stderr, re.M)
    assert re.search(rf"^\| {status['done']} \| done \| 2e\+04 \|", p.stderr, re.M)  # the other job finished
    assert "non-finite train/lower_bound=nan" in job_logs(tmp_path)  # the failure, in its job's log on the node
    for slurm_id in slurm_ids(tmp_path):
        job = show_job(slurm_id)
        assert (job["CPUs/Task"], job["MinMemoryNode"], job["TimeLimit"]) == (str(cpus), "2G", "00:30:00")
        assert (job["Partition"], job["ArrayTaskThrottle"]) == ("debug", "1")


# A job interrupted mid-run resumes from its checkpoint -----------------------------------------------------------

@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The long job, run through to its end on this machine."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    p = sweep(tmp, *LONG, launcher="basic")
    assert p.returncode == 0, p.stderr[-3000:]
    return rows(tmp, "resume")


def interrupt_mid_run(tmp: Path, proc: subprocess.Popen, how: list[str]) -> str:
    """Once the seed-0 job has a checkpoint, interrupt it (scancel, scontrol requeue, a signal); its Slurm id."""
    wait_until("checkpoint", lambda: list((tmp / "ckpt" / "resume").glob("*-s0-*.pt")), proc)
    slurm_id = slurm_ids(tmp)[0]  # the sweep's first job, seed 0 (<array>_0, or <job> where it is alone)
    sh(*how, slurm_id)
    return slurm_id


def release_when_requeued(slurm_id: str, proc: subprocess.Popen) -> None:
    """A requeued job waits for its begin time (Slurm holds it ~2 min); let it start again now."""
    wait_until("requeue", lambda: sh("squeue", "-h", "-j", slurm_id, "-o", "%T").strip() == "PENDING", proc)
    sh("scontrol", "update", f"jobid={slurm_id}", "starttime=now")


def assert_resumed(tmp: Path, uninterrupted: dict[str, pd.DataFrame]) -> None:
    (run_id,) = uninterrupted
    n = re.findall(rf"resuming {run_id} at (\d+) samples", job_logs(tmp))
    assert len(n) == 1 and 0 < int(n[0]) < BUDGET, job_logs(tmp)[-3000:]
    ours = rows(tmp, "resume")
    pd.testing.assert_frame_equal(ours[run_id], uninterrupted[run_id], check_exact=True)


def test_a_cancelled_job_is_named_the_others_finish_and_rerun_it_resumes_with_identical_rows(tmp_path, uninterrupted):
    """scancel ends a job without a result, as a job killed on its node or a lost node does."""
    proc = start(tmp_path, *LONG, "seed=0,1")
    slurm_id = interrupt_mid_run(tmp_path, proc, ["scancel"])
    out, _ = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 1, out[-3000:]
    assert re.search(rf"Slurm job {slurm_id} \(.*\bseed=0\b.*\) ended without a result: CANCELLED", out), out[-3000:]
    status = {m["status"]: run_id for run_id, m in metas(tmp_path, "resume").items()}
    assert status.keys() == {"running", "done"} and "-s0-" in status["running"]  # seed 0 killed mid-run, seed 1 done
    assert re.search(rf"^\| {status['running']} \| \*\*running\*\* \|", out, re.M) and "1 job(s) failed" in out
    assert re.search(rf"^\| {status['done']} \| done \| {re.escape(f'{BUDGET:.0e}')} \|", out, re.M)  # 4e+06
    p = sweep(tmp_path, *LONG, "seed=0,1")  # the same command again
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"{status['done']} already finished" in job_logs(tmp_path)
    assert_resumed(tmp_path, uninterrupted)


@pytest.mark.parametrize("how", [["scontrol", "requeue"], ["scancel", "--signal=USR2"]], ids=["requeue", "usr2"])
def test_a_requeued_or_signalled_job_resumes_with_identical_rows(tmp_path, uninterrupted, how):
    """requeue: Slurm kills the job and queues it again (what preemption by requeue does). USR2: the signal Slurm
    sends before the time limit (or a site on preemption); submitit checkpoints the job and requeues it itself."""
    proc = start(tmp_path, *LONG)
    slurm_id = interrupt_mid_run(tmp_path, proc, how)
    release_when_requeued(slurm_id, proc)
    out, _ = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, out[-3000:]  # the same sweep goes on: no resubmission by hand
    assert show_job(slurm_id)["Restarts"] == "1"
    assert_resumed(tmp_path, uninterrupted)
