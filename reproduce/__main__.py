"""`python -m reproduce [+sweep=NAME] [overrides]`: the only module that knows Hydra."""
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from reproduce.config import register

register()
FAILED: list[tuple[str, str]] = []  # (job, error) of this process's failed multirun jobs


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from reproduce import train

    hc = HydraConfig.get()
    name = hc.job.override_dirname or None  # readable W&B run name from the overrides
    try:
        train.run(OmegaConf.to_object(cfg), root=Path(hydra.utils.get_original_cwd()), name=name)
    except Exception as e:
        if hc.mode != RunMode.MULTIRUN:
            raise
        traceback.print_exc()  # one failed job must not stop the others of a multirun
        FAILED.append((name or "job", f"{type(e).__name__}: {e}"))


def cli() -> None:
    main()
    if FAILED:
        print(f"\n[reproduce] {len(FAILED)} job(s) failed:", *(f"  {j}: {e}" for j, e in FAILED), sep="\n", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli()
