"""Typed config schemas. Hydra composes conf/ against these, so a typo or a wrong type fails at compose
time; value checks live in __post_init__ and run at OmegaConf.to_object, before any training."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class Dataset(enum.Enum):
    mnist = "mnist"
    frey = "frey"
    synthetic = "synthetic"  # tiny fixed random data for tests and smoke runs


class Binarize(enum.Enum):
    none = "none"  # grey levels used as Bernoulli means (the paper)
    dynamic = "dynamic"  # a fresh Bernoulli draw of every minibatch
    static = "static"  # one Bernoulli draw of the whole set, seeded


class FreySplit(enum.Enum):
    random = "random"  # a seeded random permutation (matches the paper's curves; see data.py)
    contiguous = "contiguous"  # the last n_test frames of the video (stricter)


class Decoder(enum.Enum):
    bernoulli = "bernoulli"
    gaussian = "gaussian"


class Estimator(enum.Enum):
    A = "A"  # eq. 6: every term sampled
    B = "B"  # eq. 10: analytic KL


def _check(cond: bool, name: str, value: Any, need: str) -> None:
    if not cond:
        raise ValueError(f"config value {name}={value!r} is invalid: {need}")


@dataclass
class DatasetConfig:
    name: Dataset = Dataset.mnist
    root: Optional[str] = None  # None: $REPRODUCE_DATA, else the user cache dir
    binarize: Binarize = Binarize.none
    n_train: Optional[int] = None  # keep only the first n_train training points (Fig. 3)
    frey_split: FreySplit = FreySplit.random
    frey_n_test: int = 200  # paper silent; ~10% of the 1965 frames
    split_seed: int = 0  # seed of the Frey random split and of static binarization

    def __post_init__(self) -> None:
        _check(self.n_train is None or self.n_train > 0, "dataset.n_train", self.n_train, "must be > 0")
        _check(0 < self.frey_n_test < 1965, "dataset.frey_n_test", self.frey_n_test, "must be in (0, 1965)")


@dataclass
class ModelConfig:
    n_z: int = 20
    n_hidden: int = 500  # 500 MNIST, 200 Frey Face, 100 Fig. 3 (set by conf/dataset_model)
    decoder: Decoder = Decoder.bernoulli
    init_std: float = 0.01  # every parameter ~ N(0, 0.01^2) (paper, sec. 5)
    min_log_var: float = -12.0  # Gaussian decoder: soft floor on log sigma^2 (paper silent; see models.py)

    def __post_init__(self) -> None:
        _check(self.n_z > 0, "model.n_z", self.n_z, "must be > 0")
        _check(self.n_hidden > 0, "model.n_hidden", self.n_hidden, "must be > 0")
        _check(self.init_std >= 0, "model.init_std", self.init_std, "must be >= 0")


@dataclass
class AlgorithmConfig:
    name: str = MISSING


@dataclass
class AEVBConfig(AlgorithmConfig):
    name: str = "aevb"
    estimator: Estimator = Estimator.B
    L: int = 1  # samples of z per datapoint

    def __post_init__(self) -> None:
        _check(self.L > 0, "algorithm.L", self.L, "must be > 0")


@dataclass
class WakeSleepConfig(AlgorithmConfig):
    name: str = "wake_sleep"


@dataclass
class RWSConfig(AlgorithmConfig):
    name: str = "rws"
    K: int = 5  # importance samples per datapoint
    q_update: str = "wake"  # wake | sleep | both (Bornschein & Bengio 2014 recommend wake)

    def __post_init__(self) -> None:
        _check(self.K > 0, "algorithm.K", self.K, "must be > 0")
        _check(self.q_update in ("wake", "sleep", "both"), "algorithm.q_update", self.q_update, "must be wake, sleep or both")


@dataclass
class TrainConfig:
    budget: int = 1_000_000  # training samples seen ("# training samples evaluated", Fig. 2)
    batch_size: int = 100  # M
    lr: float = 0.02  # Adagrad step size from the paper's {0.01, 0.02, 0.1}: 0.02 measured best at 1e6 (README)
    adagrad_warmup: int = 0  # steps that only accumulate sum g^2 (anglepy does 10-100; paper silent)
    weight_prior: bool = True  # N(0, I) prior on parameters = weight decay 1/N
    eval_start: int = 100_000  # first evaluation point (samples seen)
    evals_per_decade: int = 5  # log-spaced evaluation points
    eval_train_subset: Optional[int] = None  # None: the whole training set
    eval_chunk: int = 5000  # datapoints per no_grad forward pass
    checkpoint_every: int = 1_000_000  # samples between checkpoints (also at every evaluation's end)
    log_every: int = 50  # steps between progress-bar updates (one host sync each)
    threads: Optional[int] = None  # torch.set_num_threads; None leaves torch's default

    def __post_init__(self) -> None:
        _check(self.budget > 0, "train.budget", self.budget, "must be > 0")
        _check(self.batch_size > 0, "train.batch_size", self.batch_size, "must be > 0")
        _check(self.lr > 0, "train.lr", self.lr, "must be > 0")
        _check(self.adagrad_warmup >= 0, "train.adagrad_warmup", self.adagrad_warmup, "must be >= 0")
        _check(self.eval_start > 0, "train.eval_start", self.eval_start, "must be > 0")
        _check(self.evals_per_decade > 0, "train.evals_per_decade", self.evals_per_decade, "must be > 0")
        _check(self.eval_chunk > 0, "train.eval_chunk", self.eval_chunk, "must be > 0")


@dataclass
class LogConfig:
    results_dir: str = "results"  # relative to the directory the command was started in
    sweep: str = "default"  # results go to <results_dir>/<sweep>/
    checkpoint_dir: str = "checkpoints"
    wandb: str = "auto"  # auto (online if logged in, else offline) | online | offline | disabled
    wandb_project: str = "aevb-reproduce"
    progress: bool = True
    save_weights: bool = False  # final encoder/decoder weights beside the results (Figures 4, 5)

    def __post_init__(self) -> None:
        modes = ("auto", "online", "offline", "disabled")
        _check(self.wandb in modes, "log.wandb", self.wandb, f"must be one of {modes}")


@dataclass
class Config:
    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    algorithm: AlgorithmConfig = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    seed: int = 0
    device: str = "cpu"


def register() -> None:
    """Store the schemas where conf/*.yaml name them in their defaults lists."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="dataset", name="base_dataset", node=DatasetConfig)
    cs.store(group="model", name="base_model", node=ModelConfig)
    cs.store(group="algorithm", name="base_aevb", node=AEVBConfig)
    cs.store(group="algorithm", name="base_wake_sleep", node=WakeSleepConfig)
    cs.store(group="algorithm", name="base_rws", node=RWSConfig)
