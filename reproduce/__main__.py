"""`python -m reproduce [+sweep=NAME] [overrides]`: the only module that knows Hydra."""
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from reproduce.config import register

register()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from reproduce import train

    name = HydraConfig.get().job.override_dirname or None  # readable W&B run name from the overrides
    train.run(OmegaConf.to_object(cfg), root=Path(hydra.utils.get_original_cwd()), name=name)


if __name__ == "__main__":
    main()
