"""`python -m reproduce [+sweep=NAME] [overrides]`: the only module that knows Hydra."""
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from reproduce.config import register
from reproduce.data import DataError

register()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from reproduce import train

    hc = HydraConfig.get()
    config = OmegaConf.to_object(cfg)  # bad values stop here, before any training, naming the field
    name = hc.job.override_dirname or None  # readable W&B run name from the overrides
    try:
        train.run(config, root=Path(hydra.utils.get_original_cwd()), name=name)
    except DataError:
        raise  # every job would fail the same way: stop, with the instructions
    except Exception:
        if hc.mode != RunMode.MULTIRUN:
            raise
        traceback.print_exc()  # marked failed beside its results; the others go on (callbacks.FailureSummary)


if __name__ == "__main__":
    main()
