import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"

# Read the pre-seeded data beside the checkout (no download) unless the user points elsewhere.
if SHARED_DATA.exists():
    os.environ.setdefault("REPRODUCE_DATA", str(SHARED_DATA))
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def float64():
    """Closed-form tests in double precision, without leaking the default dtype into other tests."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def needs_data(*names):
    root = Path(os.environ.get("REPRODUCE_DATA", SHARED_DATA))
    missing = [n for n in names if not (root / n).exists()]
    return pytest.mark.skipif(bool(missing), reason=f"data not found under {root}: {missing}")


def reproduce_cmd(tmp: Path, *overrides: str) -> list[str]:
    """`python -m reproduce` with every output under tmp, W&B off and no progress bar; later overrides win."""
    flags = [o for o in overrides if o.startswith("-")]  # (-m) before the overrides, as argparse wants
    overrides = tuple(o for o in overrides if not o.startswith("-"))
    return [sys.executable, "-m", "reproduce", *flags, f"log.results_dir={tmp}/results", f"log.checkpoint_dir={tmp}/ckpt",
            f"hydra.run.dir={tmp}/out", f"hydra.sweep.dir={tmp}/multirun", "log.wandb=disabled", "log.progress=false",
            *overrides]
