"""Data: the paper's splits and scaling on the real files; clear errors for missing or corrupt files."""
import shutil

import pytest
import torch

from reproduce.config import Binarize, Dataset, DatasetConfig, FreySplit
from reproduce.data import IMAGE_SHAPE, DataError, data_root, load
from conftest import needs_data


@needs_data("MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/t10k-images-idx3-ubyte")
def test_mnist_split_and_scaling():
    d = load(DatasetConfig(name=Dataset.mnist))
    assert d.train.shape == (50_000, 784) and d.test.shape == (10_000, 784)
    assert d.train.min() == 0 and d.train.max() == 255 / 256  # value/256 as Bernoulli means
    assert load(DatasetConfig(name=Dataset.mnist, n_train=1000)).train.shape == (1000, 784)


@needs_data("frey_rawface.mat")
def test_frey_splits():
    rnd = load(DatasetConfig(name=Dataset.frey))
    con = load(DatasetConfig(name=Dataset.frey, frey_split=FreySplit.contiguous))
    assert rnd.train.shape == (1765, 560) and rnd.test.shape == (200, 560) and IMAGE_SHAPE["frey"] == (28, 20)
    assert rnd.train.max() < 1 and rnd.train.min() >= 0
    assert not torch.equal(rnd.test, con.test)
    assert torch.equal(torch.cat([con.train, con.test]).sort(0).values, torch.cat([rnd.train, rnd.test]).sort(0).values)


def test_static_binarization_is_binary_and_seeded():
    a = load(DatasetConfig(name=Dataset.synthetic, binarize=Binarize.static))
    assert set(a.train.unique().tolist()) <= {0.0, 1.0}
    assert load(DatasetConfig(name=Dataset.synthetic, binarize=Binarize.dynamic)).binarize_dynamic


def test_data_root_order(monkeypatch, tmp_path):
    monkeypatch.setenv("REPRODUCE_DATA", str(tmp_path / "env"))
    assert data_root(DatasetConfig(root=str(tmp_path / "cfg"))) == tmp_path / "cfg"
    assert data_root(DatasetConfig()) == tmp_path / "env"
    monkeypatch.delenv("REPRODUCE_DATA")
    assert "reproduce-aevb" in str(data_root(DatasetConfig()))


@needs_data("frey_rawface.mat")
def test_corrupt_frey_fails_with_instructions(tmp_path):
    from conftest import SHARED_DATA
    import os
    src = os.environ.get("REPRODUCE_DATA", SHARED_DATA)
    data = (tmp_path / "frey_rawface.mat")
    data.write_bytes(open(f"{src}/frey_rawface.mat", "rb").read()[:1000])  # truncated
    with pytest.raises(DataError, match="corrupt.*cs.nyu.edu"):
        load(DatasetConfig(name=Dataset.frey, root=str(tmp_path)))


@needs_data("MNIST/raw/t10k-images-idx3-ubyte")
def test_corrupt_mnist_fails_with_instructions(tmp_path):
    import os
    from conftest import SHARED_DATA
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(f"{os.environ.get('REPRODUCE_DATA', SHARED_DATA)}/MNIST/raw", raw)
    (raw / "t10k-images-idx3-ubyte").chmod(0o644)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte is corrupt"):
        load(DatasetConfig(name=Dataset.mnist, root=str(tmp_path)))
