"""Oracles for the data: the files themselves, parsed here with struct/numpy and scipy.io, against what
reproduce.data returns (PAPER.md, Data): which images are training images, the exact value/256 scaling,
the Frey Face frame layout and split, and static binarization as one seeded Bernoulli draw."""
import os
import struct
from pathlib import Path

import numpy as np
import scipy.io
import torch

from conftest import SHARED_DATA, needs_data
from reproduce.config import Binarize, Dataset, DatasetConfig, FreySplit
from reproduce.data import IMAGE_SHAPE, load

ROOT = Path(os.environ.get("REPRODUCE_DATA", SHARED_DATA))
MNIST_FILES = ("MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/t10k-images-idx3-ubyte")


def read_idx_images(path: Path) -> np.ndarray:
    """An IDX3 image file (LeCun et al.): big-endian magic 2051, count, rows, cols, then uint8 pixels."""
    raw = path.read_bytes()
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 2051 and (rows, cols) == (28, 28)
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows * cols)


def frey_frames() -> np.ndarray:
    """frey_rawface.mat, variable ff: 560 x 1965 uint8, one 28 x 20 face per column; -> [1965, 560]."""
    ff = scipy.io.loadmat(str(ROOT / "frey_rawface.mat"))["ff"]
    assert ff.shape == (560, 1965) and ff.dtype == np.uint8
    return ff.T


@needs_data(*MNIST_FILES)
def test_mnist_train_is_the_first_50000_of_the_training_file_and_test_the_test_file():
    train, test = (read_idx_images(ROOT / f) for f in MNIST_FILES)
    assert train.shape == (60_000, 784) and test.shape == (10_000, 784)
    d = load(DatasetConfig(name=Dataset.mnist))
    np.testing.assert_array_equal(d.train.numpy(), train[:50_000] / np.float32(256))  # exact: k/256 in float32
    np.testing.assert_array_equal(d.test.numpy(), test / np.float32(256))
    assert IMAGE_SHAPE["mnist"] == (28, 28) and not d.binarize_dynamic
    # a known frame: the first training image is a 5 with 166 non-zero pixels, brightest 255
    assert (train[0] > 0).sum() == 166 and d.train[0].max() == 255 / 256


@needs_data("frey_rawface.mat")
def test_frey_frames_are_the_columns_of_ff_over_256_and_contiguous_holds_out_the_last():
    ff = frey_frames()
    d = load(DatasetConfig(name=Dataset.frey, frey_split=FreySplit.contiguous))
    np.testing.assert_array_equal(d.train.numpy(), ff[:1765] / np.float32(256))
    np.testing.assert_array_equal(d.test.numpy(), ff[1765:] / np.float32(256))
    assert IMAGE_SHAPE["frey"] == (28, 20)
    first = load(DatasetConfig(name=Dataset.frey, frey_split=FreySplit.contiguous, n_train=100))
    np.testing.assert_array_equal(first.train.numpy(), ff[:100] / np.float32(256))  # n_train keeps the first


@needs_data("frey_rawface.mat")
def test_frey_random_split_is_a_seeded_permutation_of_the_frames():
    ff = frey_frames()
    index = {row.tobytes(): i for i, row in enumerate(ff)}
    d = load(DatasetConfig(name=Dataset.frey))
    rows = [(t.numpy() * 256).astype(np.uint8) for t in (d.train, d.test)]
    np.testing.assert_array_equal(np.concatenate(rows) / np.float32(256), torch.cat([d.train, d.test]).numpy())
    ids = [[index[r.tobytes()] for r in part] for part in rows]  # every row is one frame, exactly
    assert sorted(ids[0] + ids[1]) == list(range(1965))
    assert max(ids[1]) - min(ids[1]) > 1500 and len(set(ids[1]) & set(range(1765, 1965))) < 60  # spread out
    assert torch.equal(load(DatasetConfig(name=Dataset.frey)).test, d.test)  # seeded: the same split every run


@needs_data("frey_rawface.mat")
def test_static_binarization_is_one_seeded_bernoulli_draw_of_every_pixel():
    grey = load(DatasetConfig(name=Dataset.frey, frey_split=FreySplit.contiguous))
    cfg = DatasetConfig(name=Dataset.frey, frey_split=FreySplit.contiguous, binarize=Binarize.static)
    a, b = load(cfg), load(cfg)
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)  # one fixed draw, not per load
    assert not a.binarize_dynamic
    for bits, p in ((a.train, grey.train), (a.test, grey.test)):
        assert set(bits.unique().tolist()) == {0.0, 1.0}
        for lo in (0.1, 0.3, 0.5, 0.7):  # P(1) = grey level, bin by bin (not a threshold at 1/2)
            sel = (p >= lo) & (p < lo + 0.2)
            if sel.sum() > 2000:
                n = sel.sum().item()
                assert abs(bits[sel].mean() - p[sel].mean()) < 4 * 0.5 / n**0.5 + 1e-3, (lo, n)
