"""`python -m reproduce [+sweep=NAME] [overrides]`: the only module that knows Hydra."""
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from reproduce.config import register

register()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from reproduce import train

    train.run(OmegaConf.to_object(cfg), root=Path(hydra.utils.get_original_cwd()))


if __name__ == "__main__":
    main()
