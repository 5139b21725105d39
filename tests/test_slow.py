"""The slow tier (python -m pytest -m slow): a short real-MNIST AEVB run against a bound threshold."""
import subprocess

import pandas as pd
import pytest

from conftest import needs_data, reproduce_cmd


@pytest.mark.slow
@needs_data("MNIST/raw/train-images-idx3-ubyte")
def test_mnist_aevb_reaches_the_papers_early_bound(tmp_path):
    """3e5 samples of the paper's n_z = 20 model: the test bound measured at commit time was -142.2."""
    cmd = reproduce_cmd(tmp_path, "train.budget=300000", "eval.is_k=0", "eval.is_k_final=0", "eval.train_subset=1000")
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    (f,) = (tmp_path / "results" / "default").glob("*.parquet")
    df = pd.read_parquet(f)
    final = df[(df.n_seen == 300_000) & (df.metric == "lower_bound")].set_index("split").value
    assert final["test"] > -145.0 and final["train"] > -146.0, final.to_dict()
