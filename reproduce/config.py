"""Typed config schemas: the one home of every default. Hydra composes conf/ against these (registered in
reproduce/cli.py), so a typo or a wrong type fails at compose time; value checks live in each section's
check() and run at OmegaConf.to_object, before any training. No Hydra import here."""
from __future__ import annotations

import dataclasses
import enum
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

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


class LogVar(enum.Enum):
    """Where the Gaussian decoder's per-pixel log sigma^2 comes from (the paper: "per-pixel log sigma^2 output")."""
    output = "output"  # an output of the decoder MLP beside the means, so it depends on z (default)
    bias = "bias"  # one learned value per pixel, the same for every z (anglepy's `bounded01` p(x|z), less its uniform mixture)


class Estimator(enum.Enum):
    A = "A"  # eq. 6: every term sampled
    B = "B"  # eq. 10: analytic KL


class QUpdate(enum.Enum):  # RWS: which phase updates q
    wake = "wake"
    sleep = "sleep"
    both = "both"


class MCEMCount(enum.Enum):  # what Figure 3's x axis counts for MCEM (README, "MCEM's x axis")
    datapoint = "datapoint"  # one sample per minibatch datapoint per iteration, as AEVB
    gradient = "gradient"  # one per decoder gradient evaluation per datapoint (leapfrog steps + updates)


class ThetaNoise(enum.Enum):
    """How full VB's training step draws the decoder's weights from q(theta) (algorithm.theta_noise)."""
    minibatch = "minibatch"  # one theta per minibatch, shared by its M datapoints (any decoder)
    local = "local"  # the local reparameterisation trick (Kingma, Salimans & Welling 2015): nn.Linear layers only


class Precision(enum.Enum):
    """The training step's matrix products (train.precision); evaluation is float32 whatever the setting."""
    fp32 = "fp32"
    bf16 = "bf16"  # bfloat16 matrix products (torch.autocast); float32 weights, Adagrad state, reductions


class WandbMode(enum.Enum):
    auto = "auto"  # online when an API key is known, else offline; never a prompt
    online = "online"
    offline = "offline"
    disabled = "disabled"


def plain(cfg: Any) -> Any:
    """A config dataclass as plain dicts, lists and strings (enums by value)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {k: plain(v) for k, v in cfg.items()}
    if isinstance(cfg, enum.Enum):
        return cfg.value
    return cfg


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


# The value of a key for jobs stored before the key existed, where today's default differs from what they ran.
WHEN_ABSENT = {"algorithm.count": "datapoint"}


class ReproduceError(Exception):
    """An error the suite raises on purpose (bad config, data, results, checkpoint): its message names the cause
    and what to do, so the command line prints the message alone (HYDRA_FULL_ERROR=1: with its traceback)."""


class ConfigError(ReproduceError, ValueError):
    """A bad config value; the message names the field and the accepted range."""


class SweepError(ReproduceError):
    """An error every job of a sweep would meet the same way (its data, its results folder): it stops the sweep."""


def _check(cond: bool, name: str, value: Any, need: str) -> None:
    if not cond:
        raise ConfigError(f"config value {name}={value!r} is invalid: {need}")


def _positive_or_null(section: "Section", name: str, null: str) -> None:
    value = getattr(section, name)
    _check(value is None or value > 0, f"{section.prefix}{name}", value, f"must be > 0, or null ({null})")


class Section:
    """A config section: every float setting must be finite; a subclass adds its own checks in check()."""

    prefix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            _check(not isinstance(value, float) or math.isfinite(value), f"{self.prefix}{f.name}", value, "must be finite")
        self.check()

    def check(self) -> None:
        pass


@dataclass
class DatasetConfig(Section):
    prefix: ClassVar[str] = "dataset."
    name: Dataset = Dataset.mnist
    root: Optional[str] = None  # None: $REPRODUCE_DATA, else the user cache dir
    binarize: Binarize = Binarize.none
    n_train: Optional[int] = None  # keep only the first n_train training points (Fig. 3)
    frey_split: FreySplit = FreySplit.random
    frey_n_test: int = 200  # paper silent; ~10% of the 1965 frames
    split_seed: int = 0  # seed of the Frey random split and of static binarization

    def check(self) -> None:
        _check(self.n_train is None or self.n_train > 0, "dataset.n_train", self.n_train, "must be > 0")
        _check(0 < self.frey_n_test < 1965, "dataset.frey_n_test", self.frey_n_test, "must be in (0, 1965)")


@dataclass
class ModelConfig(Section):
    prefix: ClassVar[str] = "model."
    n_z: int = 20
    n_hidden: int = 500  # 500 MNIST, 200 Frey Face, 100 Fig. 3 (set by conf/dataset_model)
    decoder: Decoder = Decoder.bernoulli
    init_std: float = 0.01  # every parameter ~ N(0, 0.01^2) (paper, sec. 5)
    min_log_var: float = -12.0  # Gaussian decoder: soft floor on log sigma^2 (paper silent; see models.py)
    log_var: LogVar = LogVar.output  # Gaussian decoder: log sigma^2 depends on z (output) or not (bias)

    def check(self) -> None:
        _check(self.n_z > 0, "model.n_z", self.n_z, "must be > 0")
        _check(self.n_hidden > 0, "model.n_hidden", self.n_hidden, "must be > 0")
        _check(self.init_std >= 0, "model.init_std", self.init_std, "must be >= 0")


@dataclass
class AlgorithmConfig(Section):
    prefix: ClassVar[str] = "algorithm."
    name: str = MISSING

    @staticmethod
    def by_name() -> dict[str, type]:
        """Every algorithm's config dataclass (the subclasses below) by its name."""
        found, todo = {}, list(AlgorithmConfig.__subclasses__())
        while todo:
            cls = todo.pop()
            found[cls.name] = cls
            todo += cls.__subclasses__()
        return found


@dataclass
class AEVBConfig(AlgorithmConfig):
    name: str = "aevb"
    estimator: Estimator = Estimator.B
    L: int = 1  # samples of z per datapoint

    def check(self) -> None:
        _check(self.L > 0, "algorithm.L", self.L, "must be > 0")


@dataclass
class FullVBConfig(AlgorithmConfig):
    """Full VB over the decoder's parameters (appendix F, beyond the paper): see reproduce/full_vb.py."""

    name: str = "full_vb"
    estimator: Estimator = Estimator.B
    L: int = 1  # samples of z per datapoint (one theta per minibatch)
    init_log_var: float = -6.0  # initial log sigma^2 of every q(theta) factor (paper silent; README: chosen from -4..-10)
    eval_theta_samples: int = 4  # theta draws averaged in the full_vb_bound metric
    theta_noise: ThetaNoise = ThetaNoise.minibatch  # one theta per minibatch, or per datapoint's pre-activations (local)

    def check(self) -> None:
        _check(self.L > 0, "algorithm.L", self.L, "must be > 0")
        _check(self.eval_theta_samples > 0, "algorithm.eval_theta_samples", self.eval_theta_samples, "must be > 0")


@dataclass
class WakeSleepConfig(AlgorithmConfig):
    name: str = "wake_sleep"


@dataclass
class RWSConfig(AlgorithmConfig):
    name: str = "rws"
    K: int = 5  # importance samples per datapoint
    q_update: QUpdate = QUpdate.wake  # Bornschein & Bengio 2014 recommend wake

    def check(self) -> None:
        _check(self.K > 0, "algorithm.K", self.K, "must be > 0")


@dataclass
class IWAEConfig(AlgorithmConfig):
    """The importance weighted autoencoder (Burda et al. 2015, beyond the paper): see baselines/iwae.py."""

    name: str = "iwae"
    K: int = 5  # samples in the bound L_K (Burda et al. use 1, 5, 50); K = 1 is AEVB with estimator A

    def check(self) -> None:
        _check(self.K >= 1, "algorithm.K", self.K, "must be >= 1")


@dataclass
class MCEMConfig(AlgorithmConfig):
    name: str = "mcem"
    n_leapfrog: int = 10  # appendix E
    target_accept: float = 0.9  # appendix E
    n_updates: int = 5  # Adagrad weight updates per HMC transition (appendix E)
    step_size: float = 0.1  # initial leapfrog step size of every chain (paper silent)
    adapt_rate: float = 0.5  # log step size += rate * (acceptance - target) (paper silent)
    count: MCEMCount = MCEMCount.gradient  # Fig. 3's x axis for MCEM (paper silent; README, "MCEM's x axis")

    def gradients_per_iteration(self) -> int:
        """Decoder gradient evaluations per datapoint of one iteration: the HMC transition's n_leapfrog + 1,
        then n_updates weight updates (what count=gradient counts)."""
        return self.n_leapfrog + 1 + self.n_updates

    def check(self) -> None:
        _check(self.n_leapfrog > 0, "algorithm.n_leapfrog", self.n_leapfrog, "must be > 0")
        _check(0 < self.target_accept < 1, "algorithm.target_accept", self.target_accept, "must be in (0, 1)")
        _check(self.n_updates > 0, "algorithm.n_updates", self.n_updates, "must be > 0")
        _check(self.step_size > 0, "algorithm.step_size", self.step_size, "must be > 0")


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class TrainConfig(Section):
    prefix: ClassVar[str] = "train."
    budget: int = 1_000_000  # training samples seen ("# training samples evaluated", Fig. 2)
    batch_size: int = 100  # M
    lr: float = 0.02  # Adagrad step size, by the paper's rule from {0.01, 0.02, 0.1}: MNIST 0.02, Frey Face 0.01 (README)
    adagrad_warmup: int = 0  # steps that only accumulate sum g^2 (anglepy does 10-100; paper silent)
    weight_prior: bool = True  # N(0, I) prior on parameters = weight decay 1/N
    checkpoint_every: int = 1_000_000  # samples between checkpoints (also at every evaluation's end)
    log_every: int = 50  # steps between progress-bar updates (one host sync each)
    threads: Optional[int] = None  # torch.set_num_threads; None: 1 in a sweep (a job per core), torch's default alone
    compile: bool = False  # torch.compile the AEVB loss (on in budget=paper; docs/performance.md)
    compile_mode: str = "default"  # torch.compile's mode: default | reduce-overhead (CUDA graphs of the loss) | ...
    cuda_graph: bool = False  # AEVB on CUDA: the whole step captured once as a CUDA graph (reproduce/graphed.py)
    precision: Precision = Precision.fp32  # the step's matrix products: fp32, or bf16 (CPUs with AVX512_BF16/AMX, GPUs)

    def check(self) -> None:
        _check(self.budget > 0, "train.budget", self.budget, "must be > 0")
        _check(self.batch_size > 0, "train.batch_size", self.batch_size, "must be > 0")
        _check(self.budget >= self.batch_size, "train.budget", self.budget,
               f"must be at least one minibatch (train.batch_size={self.batch_size})")
        _check(self.lr > 0, "train.lr", self.lr, "must be > 0")
        _check(self.adagrad_warmup >= 0, "train.adagrad_warmup", self.adagrad_warmup, "must be >= 0")
        _check(self.checkpoint_every > 0, "train.checkpoint_every", self.checkpoint_every, "must be > 0 (samples between checkpoints)")
        _check(self.log_every > 0, "train.log_every", self.log_every, "must be > 0 (steps between progress updates)")
        _positive_or_null(self, "threads", "1 in a sweep, torch's default alone")
        _check(self.compile_mode in COMPILE_MODES, "train.compile_mode", self.compile_mode, f"must be one of {COMPILE_MODES}")
        _check(not (self.cuda_graph and self.compile and self.compile_mode == "reduce-overhead"), "train.compile_mode",
               self.compile_mode, "train.cuda_graph already captures the whole step: leave compile_mode at default")


@dataclass
class EvalConfig(Section):
    """When and what to evaluate (no_grad, in chunks) on the training and test sets."""

    prefix: ClassVar[str] = "eval."

    start: int = 100_000  # first evaluation point (samples seen)
    per_decade: int = 5  # log-spaced points from `start` to the budget (Fig. 2's log axis)
    every: Optional[int] = None  # evaluate every this many samples instead (Fig. 3's linear axis)
    train_subset: Optional[int] = None  # None: the whole training set; else its first n points
    chunk: int = 1000  # datapoints per forward pass (speed only: not part of a job's identity)
    compile: bool = False  # IS log p(x) through torch.compile (speed only; pays from ~1e7 datapoint-samples, README)
    is_k: int = 100  # importance samples for marginal_ll_is at intermediate points (0: off)
    is_k_final: int = 5000  # ... and at the last point (the standard k = 5000)
    is_subset: Optional[int] = 10_000  # IS on the first n points of each split (None: all; 10k = MNIST test)
    is_train: bool = True  # IS on the training split too (false: the test split only, as budget=cpu_1e7)
    hmc: bool = False  # the paper's HMC estimator of log p(x) (appendix D, Fig. 3)
    hmc_max_n_z: int = 5  # ... only where n_z is this small (appendix D: reliable for n_z < 5)
    hmc_subset: int = 1000  # ... on the first 1000 train and test points, as Fig. 3
    hmc_samples: int = 50  # appendix D / Fig. 3
    hmc_leapfrog: int = 4
    hmc_burnin: int = 5
    hmc_prior_burnin: int = 200  # extra adapted steps for chains that start at the prior (no encoder: MCEM)
    hmc_prior_k: int = 1000  # ... which start at one of k prior draws resampled by p(x|z) (marginal_likelihood.prior_resample)
    active_units: bool = True  # Burda et al. 2015: Var_x E_q[z_j] > 0.01

    def check(self) -> None:
        _check(self.start > 0, "eval.start", self.start, "must be > 0")
        _check(self.per_decade > 0, "eval.per_decade", self.per_decade, "must be > 0")
        _check(self.chunk > 0, "eval.chunk", self.chunk, "must be > 0")
        _positive_or_null(self, "every", "log-spaced points instead")
        _positive_or_null(self, "train_subset", "the whole training set")
        _positive_or_null(self, "is_subset", "every point of each split")
        _check(self.hmc_subset > 0, "eval.hmc_subset", self.hmc_subset, "must be > 0")
        _check(self.hmc_leapfrog > 0, "eval.hmc_leapfrog", self.hmc_leapfrog, "must be > 0")
        _check(self.hmc_burnin >= 0 and self.hmc_prior_burnin >= 0, "eval.hmc_burnin", (self.hmc_burnin, self.hmc_prior_burnin), "must be >= 0")
        _check(self.is_k >= 0 and self.is_k_final >= 0, "eval.is_k", (self.is_k, self.is_k_final), "must be >= 0")
        _check(self.hmc_samples >= 2, "eval.hmc_samples", self.hmc_samples, "must be >= 2")
        _check(self.hmc_prior_k > 0, "eval.hmc_prior_k", self.hmc_prior_k, "must be > 0")


@dataclass
class LogConfig(Section):
    prefix: ClassVar[str] = "log."
    results_dir: str = "runs"  # your runs, relative to the directory the command started in (published: results/)
    sweep: str = "default"  # results go to <results_dir>/<sweep>/
    checkpoint_dir: str = "checkpoints"
    wandb: WandbMode = WandbMode.auto
    wandb_project: str = "aevb-reproduce"
    progress: Optional[bool] = None  # the job's progress bar; None: on for a lone job, off in a sweep (cli.py)
    save_weights: bool = False  # final encoder/decoder weights beside the results (Figures 4, 5)


@dataclass
class Config:
    dataset: DatasetConfig = MISSING
    model: ModelConfig = MISSING
    algorithm: AlgorithmConfig = MISSING
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        device = device_type(self.device)
        if self.train.precision is Precision.bf16:
            _check(self.algorithm.name != "mcem", "train.precision", "bf16",
                   "MCEM's HMC accept/reject needs float32 energies: use train.precision=fp32 with algorithm=mcem")
            if device == "cpu" and not cpu_has_bf16_units():
                warnings.warn("train.precision=bf16 on a CPU without bfloat16 matrix units (no avx512_bf16 or amx_bf16 "
                              "flag): bfloat16 is emulated there and slower than fp32", stacklevel=2)
        if getattr(self.algorithm, "theta_noise", None) is ThetaNoise.local:
            _check(self.model.log_var is LogVar.output or self.model.decoder is not Decoder.gaussian, "algorithm.theta_noise",
                   "local", "needs every decoder parameter in an nn.Linear: use model.log_var=output (model.log_var=bias "
                   "adds a per-pixel parameter outside them)")
        if self.train.cuda_graph:
            _check(device == "cuda", "train.cuda_graph", True, f"needs a CUDA device (device={self.device})")
            _check(self.algorithm.name == "aevb", "train.cuda_graph", True, f"captures the AEVB step only (algorithm={self.algorithm.name})")


def device_type(device: str) -> str:
    """The device's type (cpu, cuda, mps, ...), or a ConfigError naming the field. torch loads here only for a
    device other than the default: a bad value elsewhere fails without its seconds of start-up."""
    if device == "cpu":
        return "cpu"
    import torch

    try:
        return torch.device(device).type
    except RuntimeError:
        _check(False, "device", device, "not a torch device (cpu, cuda, cuda:1, mps, ...)")


def cpu_has_bf16_units() -> bool:
    """The CPU has bfloat16 matrix instructions (the avx512_bf16 or amx_bf16 flag of /proc/cpuinfo)."""
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_device(device: str) -> None:
    """Fail before any work where the device is not on this machine (checked at run time, not at config
    validation, so that a CPU login node can submit GPU jobs)."""
    import torch

    d = torch.device(device)
    if d.type == "cuda" and (not torch.cuda.is_available() or (d.index or 0) >= torch.cuda.device_count()):
        raise ConfigError(f"device={device}, but this machine has {torch.cuda.device_count() if torch.cuda.is_available() else 'no usable'}"
                           f" CUDA device(s) (torch {torch.__version__}, built for CUDA {torch.version.cuda}). "
                           "Run it on a GPU machine (e.g. launcher=slurm) or set device=cpu.")
    if d.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={device}, but MPS is not available on this machine; set device=cpu.")
