"""Bad input fails before training with a message naming the field or the file, and leaves no results."""
import subprocess
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
]


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
    tmps = {name: tmp_path_factory.mktemp(name) for name in [*cmds, "frey"]}
    cmds["frey"] = ["-m", "dataset=frey", "model.n_z=2,3", f"dataset.root={corrupt_frey(tmps['frey'])}"]
    procs = {name: subprocess.Popen(reproduce_cmd(tmps[name], *o), cwd=tmps[name], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for name, o in cmds.items()}
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=300)
        out[name] = (tmps[name], subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


@pytest.mark.parametrize("i", range(len(BAD_CONFIGS)), ids=[" ".join(o) for o, _ in BAD_CONFIGS])
def test_bad_config_fails_before_training(cli_runs, i):
    tmp, p = cli_runs[f"bad{i}"]
    message = BAD_CONFIGS[i][1]
    assert p.returncode != 0 and message in p.stderr, p.stderr[-3000:]
    assert not list(tmp.rglob("*.parquet"))


def test_missing_frey_fails_with_where_to_put_it_and_where_it_comes_from(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "FREY_URL", "http://frey.invalid/frey_rawface.mat")
    with pytest.raises(DataError, match=r"could not download http://frey.invalid/frey_rawface.mat to .*frey_rawface.mat.*by hand"):
        load(DatasetConfig(name=Dataset.frey, root=str(tmp_path)))


def test_missing_mnist_fails_with_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://mnist.invalid/"])
    with pytest.raises(DataError, match=r"Put the four uncompressed IDX files .* in .*MNIST/raw"):
        load(DatasetConfig(name=Dataset.mnist, root=str(tmp_path)))


def test_missing_data_stops_a_multirun_with_no_results(cli_runs):
    tmp, p = cli_runs["frey"]
    assert p.returncode != 0 and "is corrupt" in p.stderr and "cs.nyu.edu" in p.stderr
    assert not list((tmp / "results").rglob("*")) if (tmp / "results").exists() else True


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_fails_before_any_work(cli_runs):
    tmp, p = cli_runs["cuda"]
    assert p.returncode != 0 and "device=cuda, but this machine has no usable CUDA device(s)" in p.stderr, p.stderr[-3000:]
    assert "set device=cpu" in p.stderr and not list(tmp.rglob("*.parquet"))
