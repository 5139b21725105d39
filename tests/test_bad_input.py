"""Bad input fails before training with a message naming the field or the file, and leaves no results."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torchvision

from conftest import reproduce_cmd
from reproduce import data
from reproduce.config import Dataset, DatasetConfig
from reproduce.data import DataError, load


BAD_CONFIGS = [
    (["model.n_z=0"], "model.n_z=0 is invalid: must be > 0"),
    (["dataset=cifar"], "Could not find 'dataset/cifar'"),
    (["algorithm=vae"], "Could not find 'algorithm/vae'"),
    (["train.budget=-100"], "train.budget=-100 is invalid: must be > 0"),
    (["train.lr=0"], "train.lr=0.0 is invalid: must be > 0"),
    (["model.n_z=three"], "n_z"),
    (["model.n_z=="], "Error parsing override 'model.n_z=='"),
    (["model.nz=3"], "Key 'nz' not in 'ModelConfig'"),
    (["-m", "dataset=synthetic", "model.n_z=2,-1"], "model.n_z=-1 is invalid"),
    (["device=cdua"], "device='cdua' is invalid: not a torch device"),
    (["train.budget=1.5"], "[reproduce] error: config value train.budget=1.5 is invalid: must be a whole number"),
    (["model.n_z=100000000"], "[reproduce] error: config value model.n_z=100000000 is invalid with model.n_hidden=500: one "
                              "training step needs about 2387.2 GiB"),
    (["-m", "dataset=synthetic", "seed=0,1", "hydra.launcher.n_jobs=0"],
     "[reproduce] hydra.launcher: config value hydra.launcher.n_jobs=0 is invalid: must be > 0 (jobs at once) or from -1"),
]

FAST = {"fast_run": (["model.n_z=0"], "model.n_z=0 is invalid"),  # name: (overrides, message)
        "fast_multirun": (["-m", "dataset=synthetic", "model.n_z=2,-1"], "model.n_z=-1 is invalid")}


def corrupt_frey(tmp: Path) -> Path:
    empty = tmp / "empty"
    empty.mkdir()
    (empty / "frey_rawface.mat").write_bytes(b"not a mat file")
    return empty


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory) -> dict:
    """Every command line of this file, run at once as separate processes (each is mostly start-up: together
    they take a third of the time they take one after another); name -> (tmp dir, CompletedProcess)."""
    cmds = {f"bad{i}": overrides for i, (overrides, _) in enumerate(BAD_CONFIGS)}
    cmds["cuda"] = ["dataset=synthetic", "device=cuda"]
    cmds["budget_1e6"] = ["train.budget=1e6", "--cfg=job"]  # composes, prints the job's config, trains nothing
    tmps = {name: tmp_path_factory.mktemp(name) for name in [*cmds, *FAST, "frey", "file", "report"]}
    cmds["frey"] = ["-m", "dataset=frey", "model.n_z=2,3", f"dataset.root={corrupt_frey(tmps['frey'])}"]
    (tmps["file"] / "results").write_text("a file where the results folder should be")
    cmds["file"] = [f"log.results_dir={tmps['file']}/results"]
    argv = {name: reproduce_cmd(tmps[name], *o) for name, o in cmds.items()}
    argv |= {name: [sys.executable, "-X", "importtime", *reproduce_cmd(tmps[name], *o)[1:]]  # every module it loads, on stderr
             for name, (o, _) in FAST.items()}
    argv["report"] = [sys.executable, "-m", "reproduce.report", "--results", str(tmps["report"] / "nowhere")]
    procs = {name: subprocess.Popen(a, cwd=tmps[name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, a in argv.items()}
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=900)  # generous: a loaded machine starves 18 start-ups
        out[name] = (tmps[name], subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


@pytest.mark.parametrize("i", range(len(BAD_CONFIGS)), ids=[" ".join(o) for o, _ in BAD_CONFIGS])
def test_bad_config_fails_before_training(cli_runs, i):
    tmp, p = cli_runs[f"bad{i}"]
    message = BAD_CONFIGS[i][1]
    assert p.returncode != 0 and message in p.stderr, p.stderr[-3000:]
    assert "Traceback" not in p.stderr  # one clear message (HYDRA_FULL_ERROR=1 shows the traceback)
    assert not list(tmp.rglob("*.parquet"))


@pytest.mark.parametrize("name", FAST)
def test_a_bad_value_fails_before_torch_and_pandas_load(cli_runs, name):
    """A typo costs a fraction of a second, not the seconds torch takes to load: values are checked first."""
    tmp, p = cli_runs[name]
    assert p.returncode == 2 and FAST[name][1] in p.stderr, p.stderr[-3000:]
    loaded = set(re.findall(r"^import time: +\d+ \| +\d+ \| +(\S+)$", p.stderr, re.M))
    assert "hydra" in loaded and not loaded & {"torch", "pandas"}, sorted(loaded & {"torch", "pandas"})


def test_an_integer_written_1e6_is_read_as_the_integer(cli_runs):
    tmp, p = cli_runs["budget_1e6"]
    assert p.returncode == 0 and "budget: 1000000\n" in p.stdout, p.stderr[-3000:]


def test_a_results_folder_that_is_a_file_fails_fast_with_one_message(cli_runs):
    tmp, p = cli_runs["file"]
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr[-3000:]
    assert p.stderr.strip().splitlines()[-1] == (
        f"[reproduce] error: cannot make the folder {tmp}/results/default (log.results_dir={tmp}/results): Not a directory. "
        "Set log.results_dir to a folder you can write to.")


def test_report_of_a_missing_results_folder_fails(cli_runs):
    tmp, p = cli_runs["report"]
    assert p.returncode == 2 and f"--results {tmp}/nowhere: no such folder" in p.stderr, p.stderr[-3000:]
    assert "Traceback" not in p.stderr and not (tmp / "nowhere").exists()


def test_missing_frey_fails_with_where_to_put_it_and_where_it_comes_from(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FREY_URL", "http://frey.invalid/frey_rawface.mat")
    with pytest.raises(DataError, match=r"could not download http://frey.invalid/frey_rawface.mat to .*frey_rawface.mat.*by hand"):
        load(DatasetConfig(name=Dataset.frey, root=str(tmp_path / "cache" / "data")))
    assert list(tmp_path.iterdir()) == []  # a failed download leaves no folder behind


def test_missing_mnist_fails_with_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://mnist.invalid/"])
    with pytest.raises(DataError, match=r"Put the four uncompressed IDX files .* in .*MNIST/raw"):
        load(DatasetConfig(name=Dataset.mnist, root=str(tmp_path / "cache")))
    assert list(tmp_path.iterdir()) == []


def test_missing_data_stops_a_multirun_with_no_results(cli_runs):
    tmp, p = cli_runs["frey"]
    assert p.returncode != 0 and "is corrupt" in p.stderr and "cs.nyu.edu" in p.stderr
    assert not [f for f in tmp.rglob("*") if f.suffix in (".parquet", ".yaml", ".pt") and "multirun" not in f.parts]  # (folders and locks only)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_fails_before_any_work(cli_runs):
    tmp, p = cli_runs["cuda"]
    assert p.returncode != 0 and "device=cuda, but this machine has no usable CUDA device(s)" in p.stderr, p.stderr[-3000:]
    assert "set device=cpu" in p.stderr and not list(tmp.rglob("*.parquet"))
