"""What a researcher runs into by trying things: broken files left by a crash, odd numbers, the same job
run from another folder or device. Each case stops with a message that says what to do, or recovers."""
import dataclasses
import io
import math
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, reproduce_cmd
from reproduce import algorithms, models, train
from reproduce.config import (AEVBConfig, AlgorithmConfig, Config, Dataset, DatasetConfig, EvalConfig, LogConfig, MCEMConfig,
                              ModelConfig, RWSConfig, Section, TrainConfig, WandbMode)
from reproduce.jobs import Job, ResultsError, atomic_write, job_name, run_id, temporary

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(tmp: Path, **train_kw) -> Config:
    return Config(dataset=DatasetConfig(name=Dataset.synthetic), model=ModelConfig(n_z=2, n_hidden=8), algorithm=AEVBConfig(),
                  train=TrainConfig(**{"budget": 3000, "checkpoint_every": 1000, **train_kw}),
                  eval=EvalConfig(start=1000, is_k=0, is_k_final=0),
                  log=LogConfig(results_dir=str(tmp / "results"), checkpoint_dir=str(tmp / "ckpt"), wandb=WandbMode.disabled,
                                progress=False))


def test_a_truncated_checkpoint_names_the_file_and_what_to_do(tmp_path):
    cfg = tiny(tmp_path)
    job = Job(cfg)
    job.checkpoint.parent.mkdir(parents=True)
    job.checkpoint.write_bytes(b"PK\x03\x04 cut off by a crash")
    with pytest.raises(train.CheckpointError, match=rf"the checkpoint {job.checkpoint} cannot be read .*Delete it to "
                                                    r"train this job again from zero, or restore a good copy"):
        train.run(cfg)
    job.checkpoint.unlink()  # as the message says: the job then trains from zero
    assert train.run(cfg).exists()


def test_leftover_temporary_files_of_an_interrupted_write_are_removed(tmp_path):
    cfg = tiny(tmp_path)
    job = Job(cfg)
    leftovers = [p.with_name(p.name + ".tmp") for p in (job.checkpoint, job.parquet, job.meta)] + \
        [temporary(p) for p in (job.checkpoint, job.parquet, job.meta, job.weights)]  # <name>.<pid>-<hex>.tmp
    for p in leftovers:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"half a file")
    train.run(cfg)
    assert not [p for p in leftovers if p.exists()]


@pytest.mark.parametrize("damage", ["parquet", "meta"])
def test_a_finished_job_whose_results_cannot_be_read_trains_again(tmp_path, capsys, damage):
    cfg = tiny(tmp_path)
    job = Job(cfg)
    train.run(cfg)
    assert train.run(cfg) == job.parquet and "already finished" in capsys.readouterr().err
    getattr(job, damage).write_bytes(b"\x00garbage: [unclosed")
    train.run(cfg)
    err = capsys.readouterr().err
    assert "already finished" not in err and ("cannot be read" in err)
    import pandas as pd
    assert pd.read_parquet(job.parquet).n_seen.max() == 3000  # trained again, readable


def float_fields():
    """Every float setting of every config section (the schema's own list, so a new one is covered)."""
    sections = [DatasetConfig, ModelConfig, AEVBConfig, RWSConfig, MCEMConfig, TrainConfig, EvalConfig, LogConfig]
    return [(cls, f.name) for cls in sections for f in dataclasses.fields(cls)
            if isinstance(getattr(cls(), f.name), float)]


@pytest.mark.parametrize("cls, name", float_fields())
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_float_settings_are_rejected_naming_the_field(cls, name, value):
    assert issubclass(cls, Section)
    with pytest.raises(ValueError, match=rf"config value {cls.prefix}{name}=.* is invalid: must be finite"):
        cls(**{name: value})


def test_float_fields_cover_the_schema():
    assert {f"{c.prefix}{n}" for c, n in float_fields()} >= {"train.lr", "model.init_std", "model.min_log_var",
                                                            "algorithm.target_accept", "algorithm.step_size", "algorithm.adapt_rate"}


def reproduce(tmp: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(reproduce_cmd(tmp, *overrides), cwd=tmp, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("overrides, message", [
    (["train.lr=inf"], "config value train.lr=inf is invalid: must be finite"),
    (["train.budget=50"], "config value train.budget=50 is invalid: must be at least one minibatch (train.batch_size=100)"),
    (["dataset=synthetic", "train.batch_size=501"], "config value train.batch_size=501 is invalid: larger than the 500 training points of synthetic"),
])
def test_bad_numbers_stop_the_job_with_the_numbers(tmp_path, overrides, message):
    p = reproduce(tmp_path, *overrides)
    assert p.returncode != 0 and message in p.stderr, p.stderr[-2000:]
    assert not list(tmp_path.rglob("*.parquet"))


def test_where_data_is_read_from_and_the_device_are_not_part_of_a_job():
    base = Config(dataset=DatasetConfig(), model=ModelConfig(), algorithm=AEVBConfig())
    moved = Config(dataset=DatasetConfig(root="/mnt/elsewhere"), model=ModelConfig(), algorithm=AEVBConfig(), device="cuda:1")
    assert run_id(base) == run_id(moved)
    assert job_name(["model.n_z=3", "dataset.root=/x", "device=cuda", "+sweep=fig2", "launcher=basic", "train.threads=1",
                     "log.wandb=offline", "hydra.run.dir=/tmp/x", "+panel=mnist_3", "train.lr=0.01"]) == \
        "model.n_z=3,panel=mnist_3,train.lr=0.01"
    assert run_id(Config(dataset=DatasetConfig(), model=ModelConfig(n_z=3), algorithm=AEVBConfig())) != run_id(base)


def test_root_from_config_or_environment_is_the_same_job(tmp_path, monkeypatch):
    """dataset.root=X and REPRODUCE_DATA=X train the same job: the second run finds the first one finished."""
    cfg = tiny(tmp_path)
    monkeypatch.setenv("REPRODUCE_DATA", str(tmp_path))
    first = train.run(cfg)
    cfg.dataset.root = str(tmp_path)
    assert train.run(cfg) == first


HOLD = """import pickle, sys, time
from reproduce.jobs import Job
with Job(pickle.loads(bytes.fromhex(sys.argv[1]))).lock() as mine:
    print(mine, flush=True)
    time.sleep(120)
"""


def hold_lock(cfg: Config) -> subprocess.Popen:
    """Another process that holds the job's lock (computing its path itself) until killed."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, pickle.dumps(cfg).hex()], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "True"
    return p


def test_a_job_running_elsewhere_is_skipped_and_a_dead_runs_lock_is_taken_over(tmp_path, capsys):
    """The lock is an OS file lock: the OS releases it when its process dies, even by kill -9, so the lock file
    a dead run leaves behind does not block the job."""
    cfg = tiny(tmp_path)
    job = Job(cfg)
    holder = hold_lock(cfg)
    assert job.running_elsewhere()
    assert train.run(cfg) is None
    err = capsys.readouterr().err
    assert f"{job.id} is running elsewhere (another process holds its lock {job.lock_file}); skipped" in err
    assert not job.meta.exists() and not job.parquet.exists() and not job.checkpoint.exists()  # nothing touched
    holder.kill()  # SIGKILL: no clean-up of its own
    holder.wait()
    assert job.lock_file.exists() and not job.running_elsewhere()
    assert train.run(cfg) == job.parquet and job.parquet.exists()


def test_two_writers_of_one_file_never_share_a_temporary_file(tmp_path):
    path = tmp_path / "rows.parquet"

    def first(tmp: Path) -> None:
        tmp.write_text("first")
        atomic_write(path, lambda p: p.write_text("second"))  # a second writer, between the first's write and rename

    atomic_write(path, first)
    assert path.read_text() == "first" and [p.name for p in tmp_path.iterdir()] == [path.name]
    with pytest.raises(OSError):
        atomic_write(path, lambda p: (p.write_text("half"), open(tmp_path / "missing" / "x")))  # a write that fails
    assert path.read_text() == "first" and [p.name for p in tmp_path.iterdir()] == [path.name]  # its temporary file removed


def test_the_sweep_summary_lists_a_job_running_elsewhere(tmp_path, capsys):
    from omegaconf import OmegaConf
    from reproduce.callbacks import SweepJob, SweepMonitor

    cfg = tiny(tmp_path)
    monitor = SweepMonitor()
    monitor.t0, monitor.jobs, monitor.stop = 0.0, [SweepJob(0, "seed=0", Job(cfg))], __import__("threading").Event()
    holder = hold_lock(cfg)
    try:
        monitor.on_multirun_end(OmegaConf.create({"log": {"sweep": "default", "results_dir": str(tmp_path / "results")}}))
    finally:
        holder.kill()
    err = capsys.readouterr().err
    assert f"| {Job(cfg).id} | running elsewhere |" in err and "1 job(s) running elsewhere" in err and "failed" not in err


def test_the_sweep_time_left_counts_a_resumed_job_from_where_it_resumed(tmp_path):
    import time
    from reproduce.callbacks import SweepJob, SweepMonitor

    cfg = tiny(tmp_path, budget=100_000_000)
    job = Job(cfg)
    job.make_folders()
    monitor = SweepMonitor()
    monitor.t0, monitor.jobs, monitor.seen0 = time.time() - 600, [SweepJob(0, "seed=0", job)], {0: 0}
    # resumed at 4e7 ten minutes ago, 1e7 trained since: 5e7 left at 1e6 per minute
    job.write_meta(status="running", n_seen=50_000_000, budget=100_000_000, n_start=40_000_000)
    assert monitor.progress().endswith("running 1/1 " + job.id + " (50%); about 50 min left")


def test_a_results_folder_that_is_a_file_fails_before_any_data_is_read(tmp_path, monkeypatch):
    (tmp_path / "results").write_text("a file")
    monkeypatch.setattr(train.data_mod, "load", lambda *a: pytest.fail("data loaded"))
    with pytest.raises(ResultsError, match=rf"cannot make the folder {tmp_path}/results/default \(log.results_dir={tmp_path}/results\): "
                                           r"Not a directory. Set log.results_dir to a folder you can write to"):
        train.run(tiny(tmp_path))


def test_a_copy_records_the_commit_it_was_given(tmp_path, monkeypatch):
    from reproduce import jobs
    monkeypatch.setattr(jobs, "REPO", tmp_path)  # no .git here (tmp is outside any repository)
    for env, recorded in [(None, "unknown"), ("0123abcd", "0123abcd")]:
        jobs.git_commit.cache_clear()
        if env is None:
            monkeypatch.delenv("REPRODUCE_COMMIT", raising=False)
        else:
            monkeypatch.setenv("REPRODUCE_COMMIT", env)
        assert jobs.git_commit() == recorded
    jobs.git_commit.cache_clear()
    monkeypatch.setattr(jobs, "REPO", REPO)  # a copy whose .git may be stale
    assert jobs.git_commit() == "0123abcd"
    monkeypatch.delenv("REPRODUCE_COMMIT")  # unset: git's HEAD
    jobs.git_commit.cache_clear()
    head = subprocess.run(["git", "-C", str(jobs.REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    if head:  # (a copy of the tests outside a repository checks the fallback alone)
        assert jobs.git_commit().removesuffix("-dirty") == head
    jobs.git_commit.cache_clear()


def test_a_changed_checkpoint_does_not_make_the_code_dirty(tmp_path, monkeypatch):
    from reproduce import jobs
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "job.pt").write_text("at 1e6")
    (tmp_path / "code.py").write_text("x = 1\n")
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "c"]):
        subprocess.run([*git, *args], check=True, capture_output=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(jobs, "REPO", tmp_path)
    monkeypatch.delenv("REPRODUCE_COMMIT", raising=False)
    (tmp_path / "checkpoints" / "job.pt").unlink()  # a resumed job rewrote or finished its committed checkpoint
    jobs.git_commit.cache_clear()
    assert jobs.git_commit() == head
    (tmp_path / "code.py").write_text("x = 2\n")
    jobs.git_commit.cache_clear()
    assert jobs.git_commit() == head + "-dirty"
    jobs.git_commit.cache_clear()


def test_a_copy_without_git_is_checked_file_by_file_against_its_commit(tmp_path):
    """reproduce/bench/gpu_setup.sh's gpu_commit: git's own blob ids (git hash-object) are the oracle."""
    setup = REPO / "reproduce" / "bench" / "gpu_setup.sh"
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "run.sh").write_text("echo run\n")
    files = ["code.py", "sub/run.sh"]
    blobs = subprocess.run(["git", "hash-object", *files], cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    (tmp_path / ".gpudata").mkdir()
    (tmp_path / ".gpudata" / "TREE").write_text("c0ffee\n" + "".join(f"100644 {b} 0\t{f}\n" for b, f in zip(blobs, files)))

    def recorded() -> str:
        out = subprocess.run(["bash", "-c", f'source "{setup}" && gpu_commit >/dev/null 2>&1 && echo "$REPRODUCE_COMMIT"'],
                             cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        return out.strip()

    assert recorded() == "c0ffee"
    (tmp_path / "sub" / "run.sh").write_text("echo changed\n")
    assert recorded() == "c0ffee-dirty"
    (tmp_path / "sub" / "run.sh").unlink()
    assert recorded() == "c0ffee-dirty"


def leaves(state, path=""):
    """(path, value) for every tensor and number in a nested state dict."""
    if isinstance(state, dict):
        return [leaf for k, v in state.items() for leaf in leaves(v, f"{path}/{k}")]
    if isinstance(state, (list, tuple)):
        return [leaf for i, v in enumerate(state) for leaf in leaves(v, f"{path}/{i}")]
    return [(path, state)]


@pytest.mark.parametrize("name", sorted(algorithms.REGISTRY))
def test_every_algorithm_resumes_exactly_from_its_checkpoint_state(name):
    """Three steps, the state through torch.save / torch.load into the same algorithm built from other weights and
    another seed, then three more steps on both: the same losses and the same state as never stopping."""
    cfg = Config(model=ModelConfig(n_z=2, n_hidden=5), algorithm=AlgorithmConfig.by_name()[name](), train=TrainConfig(lr=0.1))
    x, idx = torch.rand(4, 6, generator=torch.Generator().manual_seed(9)), torch.tensor([3, 0, 7, 3])

    def make(seed):
        torch.manual_seed(seed)
        return algorithms.build(cfg, *models.build(cfg.model, 6), 10, torch.Generator().manual_seed(seed))

    a, b = make(0), make(1)
    for _ in range(3):
        a.step(x, idx)
    buffer = io.BytesIO()
    torch.save({"algorithm": a.state_dict(), "generator": a.generator.get_state()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)
    b.load_state_dict(saved["algorithm"])
    b.generator.set_state(saved["generator"])
    for _ in range(3):
        assert torch.equal(a.step(x, idx)["loss"], b.step(x, idx)["loss"]), name
    ours, theirs = leaves(a.state_dict()), leaves(b.state_dict())
    assert [p for p, _ in ours] == [p for p, _ in theirs]
    for (path, u), (_, v) in zip(ours, theirs):
        assert torch.equal(u, v) if isinstance(u, torch.Tensor) else u == v, (name, path)


def test_an_algorithm_saving_what_it_does_not_have_fails_when_built(monkeypatch):
    class Forgetful(algorithms.AEVB):
        saved = ("encoder", "decoder", "optimizer")

    monkeypatch.setitem(algorithms.REGISTRY, "aevb", Forgetful)
    cfg = Config(model=ModelConfig(n_z=2, n_hidden=5), algorithm=AEVBConfig())
    with pytest.raises(TypeError, match=r"Forgetful.saved names \['optimizer'\], which it does not have"):
        algorithms.build(cfg, *models.build(cfg.model, 6), 10, torch.Generator())
