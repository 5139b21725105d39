"""Timing helpers of the benchmark: calls per second of a function, the sgemm ceiling, and a measurement that
reports its error instead of stopping the others."""
from __future__ import annotations

import sys
import time

import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, seconds: float, device: str, windows: int = 5) -> float:
    """Calls per second of fn after a warm-up: the best of `windows` equal windows over about `seconds`
    (as timeit: other load on a shared machine only ever slows a window down). On a GPU it syncs every 50
    calls, as the training loop (train.log_every), so that launches overlap the kernels as they do there."""
    per_sync = 50 if device.startswith("cuda") else 5
    for _ in range(5):
        fn()
    sync(device)
    best = 0.0
    for _ in range(windows):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / windows:
            for _ in range(per_sync):
                fn()
            n += per_sync
            sync(device)
        best = max(best, n / (time.perf_counter() - t0))
    return best


def sgemm_gflops(m: int = 1000, k: int = 784, n: int = 500, seconds: float = 2.0, device: str = "cpu",
                 dtype: torch.dtype = torch.float32) -> float:
    """The matmul ceiling at the paper's layer shape (1000 x 784 x 500), fp32 by default."""
    a, b = torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype)
    return 2 * m * k * n * timed(lambda: a @ b, seconds, device) / 1e9


def attempt(fn, *args, **kw) -> float:
    """fn's rate, or NaN with the error on stderr: one mode failing (a capture error, a missing compiler) must
    not lose the other measurements of the run."""
    try:
        return fn(*args, **kw)
    except Exception as e:
        print(f"[bench] {fn.__name__}{args[:1]} {kw} failed: {type(e).__name__}: {str(e)[:300]}", file=sys.stderr)
        return float("nan")


def fmt(v: float, spec: str = ",.0f") -> str:
    return "-" if v != v else format(v, spec)  # NaN: not measured


def cpu_name() -> str:
    """The CPU's model name and whether it has bfloat16 matrix units (AMX, AVX512_BF16), from /proc/cpuinfo."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "unknown CPU")
    flags = set(info.split())
    return f"{model} (amx_bf16: {'yes' if 'amx_bf16' in flags else 'no'}, avx512_bf16: {'yes' if 'avx512_bf16' in flags else 'no'})"
