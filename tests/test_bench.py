"""The benchmark runs end to end and prints every table it promises (numbers are not asserted: speed is
measured by the benchmark, not by tests). W&B stays off here: an in-process W&B service would be inherited
by the subprocess jobs of later tests."""
import re

import pytest
import torch

from conftest import needs_data
from reproduce import bench


@needs_data("MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/t10k-images-idx3-ubyte")
@pytest.mark.slow  # 12 s: the bench end to end
def test_bench_prints_step_table_is_rate_and_run_split(capsys, one_thread):
    bench.main(["--cases", "frey-nz10,mnist-nz20", "--seconds", "0.2", "--run-budget", "2000",
                "--run-evals", "curves", "--run-wandb", "disabled", "--is-n", "10", "--is-k", "20", "--jobs", "2"])
    out = capsys.readouterr().out
    assert re.search(r"sgemm ceiling \(1000x784x500\): [\d.]+ GFLOP/s", out)
    assert re.search(r"bf16 matmul ceiling \(1000x784x500\): [\d.]+ GFLOP/s", out) and "avx512_bf16: " in out
    for case in ("frey-nz10", "mnist-nz20"):
        assert re.search(rf"\| {case} \| [\d,]+ \| [\d.]+ \| \d+% \| [\d,]+ \|", out), case
        assert re.search(rf"\| {case} \|.* [\d,]+ \| eager \| [\d.]+ \| \d+% \| [\d.]+ \|$", out, re.M), case  # bf16 columns
    assert re.search(r"\| frey-nz10 \| [\d,]+ \+ [\d,]+ \| [\d,]+ \| [\d.]+ \|", out)  # two jobs at once
    assert re.search(r"IS log p\(x\).*: [\d,]+ datapoint-samples/s", out)
    assert re.search(r"\| curves \| [\d.]+ \([\d,]+/s\) \| [\d.]+ \(\d+%\) \| [\d.]+ \(\d+%\) \| [\d.]+ \| \d+% \|", out)
    assert re.search(r"paper-scale MNIST n_z=20 run .* evaluation [\d.]+ h \(\d+%\)", out)


def test_profile_breakdown_separates_the_matrix_products_from_the_rest():
    from reproduce.bench.profile_step import MATMUL, breakdown

    a, b = torch.randn(200, 300), torch.randn(300, 400)
    times = breakdown(lambda: torch.tanh(a @ b), steps=5)
    assert "aten::mm" in MATMUL and times["aten::mm"] > 0 and times["aten::tanh"] > 0
    assert "aten::tanh" not in MATMUL
