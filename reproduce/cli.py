"""`python -m reproduce [+sweep=NAME] [overrides]`: the one module that knows Hydra (with callbacks.py).

The schemas of reproduce/config.py are registered here as Hydra's config groups: every dataset, model and
algorithm is a node of the config store (its defaults live in the dataclass), and conf/ holds only what
differs from them (per-dataset sizes, budgets, panels, sweeps, launchers)."""
import traceback
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from reproduce.config import AlgorithmConfig, Config, Dataset, DatasetConfig, ModelConfig
from reproduce.data import DataError
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


def settle_auto(config: Config, sweep: bool) -> None:
    """Settings left to the run's kind: in a sweep one thread per job (a job per core, launcher=joblib) and
    no per-job progress bar (the sweep's monitor reports instead); alone, torch's threads and a bar."""
    if config.train.threads is None and sweep:
        config.train.threads = 1
    if config.log.progress is None:
        config.log.progress = not sweep


@hydra.main(config_path=str(CONF), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from reproduce import train

    hc = HydraConfig.get()
    config = OmegaConf.to_object(cfg)  # bad values stop here, before any training, naming the field
    sweep = hc.mode == RunMode.MULTIRUN
    settle_auto(config, sweep)
    try:
        train.run(config, root=Path(hydra.utils.get_original_cwd()), name=job_name(list(hc.overrides.task)) or None)
    except DataError:
        raise  # every job would fail the same way: stop, with the instructions
    except Exception:
        if not sweep:
            raise
        traceback.print_exc()  # marked failed beside its results; the others go on (callbacks.SweepMonitor)
