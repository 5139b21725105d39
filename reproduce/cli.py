"""`python -m reproduce [+sweep=NAME] [overrides]`: the one module that knows Hydra (with callbacks.py).

The schemas of reproduce/config.py are registered here as Hydra's config groups: every dataset, model and
algorithm is a node of the config store (its defaults live in the dataclass), and conf/ holds only what
differs from them (per-dataset sizes, budgets, panels, sweeps, launchers)."""
import dataclasses
import os
import re
import sys
import traceback
import typing
from decimal import Decimal
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from reproduce.config import AlgorithmConfig, Config, ConfigError, Dataset, DatasetConfig, ModelConfig, ReproduceError, SweepError
from reproduce.jobs import job_name


CONF = Path(__file__).resolve().parent.parent / "conf"


def register() -> None:
    """The schemas as config groups: dataset=mnist|frey|synthetic, model=mlp, algorithm=<name>."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for d in Dataset:
        cs.store(group="dataset", name=d.value, node=DatasetConfig(name=d))
    cs.store(group="model", name="mlp", node=ModelConfig)  # the paper's one-hidden-layer MLPs
    for name, cls in AlgorithmConfig.by_name().items():
        cs.store(group="algorithm", name=name, node=cls)


register()
OmegaConf.register_new_resolver("pid", os.getpid, use_cache=True, replace=True)  # hydra.sweep.dir: one folder per sweep

FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
SHOW_TRACEBACK = False  # HYDRA_FULL_ERROR=1: errors the suite raises on purpose show their traceback too


def integer_keys() -> set[str]:
    """Every integer setting as the command line names it: seed, train.budget, algorithm.K, ..."""
    def ints(cls: type, prefix: str = "") -> set[str]:
        return {prefix + k for k, t in typing.get_type_hints(cls).items() if t in (int, typing.Optional[int])}

    keys = ints(Config)
    for name, t in typing.get_type_hints(Config).items():
        for cls in AlgorithmConfig.by_name().values() if t is AlgorithmConfig else [t] if dataclasses.is_dataclass(t) else []:
            keys |= ints(cls, f"{name}.")
    return keys


def integral(arg: str, keys: set[str]) -> str:
    """An override of an integer setting written as the README writes budgets (train.budget=1e6, also in a
    sweep's list: 1e6,1e7) as the integer (OmegaConf refuses any float for an int, even a whole one); a value
    that is not a whole number (train.budget=1.5) is refused, naming the field."""
    key, eq, value = arg.partition("=")
    name = key.lstrip("+~")
    if not eq or arg.startswith("-") or name not in keys:
        return arg
    out = []
    for v in value.split(","):
        if FLOAT.fullmatch(v.strip()):
            d = Decimal(v)
            if d != d.to_integral_value():
                raise ConfigError(f"config value {name}={v} is invalid: must be a whole number (1e6 reads as 1000000)")
            v = str(int(d))
        out.append(v)
    return f"{key}={','.join(out)}"


def fail(e: BaseException) -> typing.NoReturn:
    """An error the suite raised on purpose: its message alone (the traceback with HYDRA_FULL_ERROR=1), exit 2."""
    if SHOW_TRACEBACK:
        raise e
    print(f"[reproduce] error: {e}", file=sys.stderr)
    sys.exit(2)


def settle_auto(config: Config, sweep: bool) -> None:
    """Settings left to the run's kind: in a sweep one thread per job (a job per core, launcher=joblib) and
    no per-job progress bar (the sweep's monitor reports instead); alone, torch's threads and a bar."""
    if config.train.threads is None and sweep:
        config.train.threads = 1
    if config.log.progress is None:
        config.log.progress = not sweep


@hydra.main(config_path=str(CONF), config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    sweep = hc.mode == RunMode.MULTIRUN
    try:
        config = OmegaConf.to_object(cfg)  # bad values stop here, before any training, naming the field
        from reproduce import train  # here, not at the top: a bad value fails before torch loads (seconds of start-up)

        settle_auto(config, sweep)
        if not sweep:
            train.preflight(config)  # a sweep's jobs: in callbacks.ValidateSweep, before the first one runs
        train.run(config, root=Path(hydra.utils.get_original_cwd()), name=job_name(list(hc.overrides.task)) or None)
    except ReproduceError as e:
        if not sweep:
            fail(e)
        if isinstance(e, SweepError):
            raise  # every job would fail the same way: stop the sweep, with the instructions
        print(f"[reproduce] job {job_name(list(hc.overrides.task))}: {e}", file=sys.stderr)  # marked failed; the others go on
    except Exception:
        if not sweep:
            raise
        traceback.print_exc()  # marked failed beside its results; the others go on (callbacks.SweepMonitor)


def main() -> None:
    """`python -m reproduce`: Hydra, with integers written as the README writes budgets (integral), and an error
    the suite raises on purpose (ReproduceError) printed as its message alone, exit code 2; Hydra's own errors
    (a typo in an override, an unknown option) as Hydra prints them, without a traceback."""
    global SHOW_TRACEBACK
    SHOW_TRACEBACK = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises, and what to show is decided here
    try:
        keys = integer_keys()
        sys.argv[1:] = [integral(a, keys) for a in sys.argv[1:]]
        hydra_main()
    except ReproduceError as e:  # from a sweep's job (SweepError: DataError, ResultsError), or the command line itself
        fail(e)
    except CompactHydraException as e:
        if SHOW_TRACEBACK:
            raise
        print(e, *([e.__cause__] if e.__cause__ else []), "\nSet the environment variable HYDRA_FULL_ERROR=1 for a "
              "complete stack trace.", sep="\n", file=sys.stderr)
        sys.exit(1)
