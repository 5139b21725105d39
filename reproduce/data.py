"""MNIST and Frey Face (paper sec. 5): download or read from the data root, verify, split, scale, binarize."""
from __future__ import annotations

import hashlib
import os
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from reproduce.config import Binarize, ConfigError, Dataset, DatasetConfig, FreySplit, SweepError

FREY_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
FREY_MD5 = "5aeb024d42b8a6091f30e5eb18c8a48d"
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
}
N_MNIST_TRAIN = 50_000  # the last 10,000 of the 60,000 training images are validation
IMAGE_SHAPE = {"mnist": (28, 28), "frey": (28, 20), "synthetic": (8, 8)}  # (height, width) by dataset name


class DataError(SweepError, RuntimeError):
    """A data file is missing or corrupt; the message says where to put it and where it comes from."""


@dataclass
class Data:
    train: torch.Tensor  # [N_train, n_x], values in [0, 1)
    test: torch.Tensor  # [N_test, n_x]
    binarize_dynamic: bool = False

    @property
    def n_x(self) -> int:
        return self.train.shape[1]


def data_root(cfg: DatasetConfig) -> Path:
    """config dataset.root, else $REPRODUCE_DATA, else the user cache dir."""
    if cfg.root:
        return Path(cfg.root).expanduser()
    if os.environ.get("REPRODUCE_DATA"):
        return Path(os.environ["REPRODUCE_DATA"]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("reproduce-aevb"))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _verify(path: Path, expected: str, source: str) -> None:
    if md5(path) != expected:
        raise DataError(
            f"{path} is corrupt (md5 {md5(path)}, expected {expected}). Delete it and rerun to download it "
            f"again from {source}, or put a good copy there (set dataset.root or $REPRODUCE_DATA)."
        )


def load_mnist(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """50,000 train / 10,000 test images, value/256, flattened to [N, 784]."""
    from torchvision.datasets import MNIST

    raw = root / "MNIST" / "raw"
    source = "torchvision's MNIST mirrors (https://ossci-datasets.s3.amazonaws.com/mnist/)"
    for name, expected in MNIST_MD5.items():  # a present but truncated or corrupt file fails here
        if (raw / name).exists():
            _verify(raw / name, expected, source)
    try:
        with no_new_empty_folders(raw):
            train = MNIST(str(root), train=True, download=True).data
            test = MNIST(str(root), train=False, download=True).data
    except Exception as e:  # no network, or a truncated file torchvision cannot parse
        raise DataError(
            f"MNIST could not be read from {raw} nor downloaded from {source}: {e}. Put the four uncompressed "
            f"IDX files (train-images-idx3-ubyte, ...) in {raw}, or point dataset.root / $REPRODUCE_DATA at a "
            "folder holding MNIST/raw/."
        ) from e
    scale = lambda t: t.reshape(len(t), -1).float() / 256.0  # noqa: E731
    return scale(train[:N_MNIST_TRAIN]), scale(test)


def load_frey(root: Path, cfg: DatasetConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """1965 faces of 28x20, value/256, split random (default) or contiguous.

    The frames are a video, so neighbours are near-duplicates: a random split puts near-copies of test
    faces in the training set. The paper's Frey test curves lie *above* its train curves up to ~1e6 samples
    (reference.csv), the signature of a random split, so that is the default; `contiguous` holds out the
    last frames instead and is the stricter test."""
    import scipy.io

    path = root / "frey_rawface.mat"
    if not path.exists():
        _download(FREY_URL, path)
    _verify(path, FREY_MD5, FREY_URL)
    ff = torch.from_numpy(scipy.io.loadmat(str(path))["ff"].T.copy()).float() / 256.0  # [1965, 560]
    if cfg.frey_split is FreySplit.random:
        ff = ff[torch.randperm(len(ff), generator=torch.Generator().manual_seed(cfg.split_seed))]
    return ff[: -cfg.frey_n_test], ff[-cfg.frey_n_test :]


@contextmanager
def no_new_empty_folders(folder: Path) -> Iterator[None]:
    """Make folder (and its parents) for the block; if the block fails, those it made are removed again where
    empty, so that a failed download leaves nothing behind."""
    new = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for p in new:
            try:
                p.rmdir()
            except OSError:  # not empty: something else is there now
                break
        raise


def _download(url: str, path: Path) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")  # a name no other download uses
    try:
        with no_new_empty_folders(path.parent):
            try:
                urllib.request.urlretrieve(url, tmp)
            except BaseException:
                tmp.unlink(missing_ok=True)  # a partial file, never read
                raise
    except Exception as e:
        raise DataError(f"could not download {url} to {path}: {e}. Download it by hand and put it there "
                        "(or set dataset.root / $REPRODUCE_DATA to the folder holding it).") from e
    os.replace(tmp, path)


def synthetic(n_train: int = 500, n_test: int = 100, n_x: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary data from 4 noisy prototypes: tiny, fixed, learnable; for tests and smoke runs."""
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(4, n_x, generator=g) < 0.5).float()
    x = protos[torch.randint(0, 4, (n_train + n_test,), generator=g)]
    flip = torch.rand(x.shape, generator=g) < 0.05
    x = torch.where(flip, 1 - x, x)
    return x[:n_train], x[n_train:]


def load(cfg: DatasetConfig, device: str | torch.device = "cpu") -> Data:
    """The whole dataset as tensors on `device`; minibatches are then random indices into it."""
    if cfg.name is Dataset.mnist:
        train, test = load_mnist(data_root(cfg))
    elif cfg.name is Dataset.frey:
        train, test = load_frey(data_root(cfg), cfg)
    else:
        train, test = synthetic()
    if cfg.n_train is not None:
        if cfg.n_train > len(train):
            raise ConfigError(f"config value dataset.n_train={cfg.n_train} exceeds the {len(train)} training points")
        train = train[: cfg.n_train]
    if cfg.binarize is Binarize.static:
        g = torch.Generator().manual_seed(cfg.split_seed)
        train, test = (torch.bernoulli(t, generator=g) for t in (train, test))
    return Data(train.to(device), test.to(device), cfg.binarize is Binarize.dynamic)
