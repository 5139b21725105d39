"""The ELBO and IS log p(x) with k = 1, 100, 5000 of a trained model, on its test set (or the first n points of
either split: the train-test gap of the bound against that of log p(x)), with wall times, and the per-datapoint
loop (pythae's get_nll, reproduce/bench/is_loop.py) timed on a subset for the ratio.

    python -m reproduce.bench.is_ladder results/fig2/<run_id>.yaml [--ks 1,100,5000] [--loop-n 100] [--split train] [--n 2000]"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from reproduce import marginal_likelihood, models, results
from reproduce.data import load


def trained(meta: Path):
    """The encoder, decoder and data of a finished job saved with log.save_weights=true."""
    run = results.read(meta)
    if run is None or run.config is None or run.weights is None:
        raise SystemExit(f"{meta}: not a stored run of this suite with saved weights (log.save_weights=true)")
    data = load(dataclasses.replace(run.config.dataset, root=None))  # where the data is here: $REPRODUCE_DATA
    enc, dec = models.build(run.config.model, data.n_x)
    w = run.state()
    enc.load_state_dict(w["encoder"])
    dec.load_state_dict(w["decoder"])
    return enc, dec, data


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("meta", type=Path)
    p.add_argument("--ks", default="1,100,5000")
    p.add_argument("--loop-n", type=int, default=100, help="test points for the per-datapoint loop (0: skip)")
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--n", type=int, default=None, help="the split's first n points (default: all)")
    a = p.parse_args()
    enc, dec, data = trained(a.meta)
    x, g = getattr(data, a.split)[: a.n], torch.Generator().manual_seed(0)
    print(f"{a.meta.stem}: {a.split} set {tuple(x.shape)}, threads={torch.get_num_threads()}")
    t = time.perf_counter()
    print(f"ELBO            {marginal_likelihood.elbo(enc, dec, x, generator=g).mean():9.2f}   {time.perf_counter() - t:7.1f} s")
    for k in map(int, a.ks.split(",")):
        t = time.perf_counter()
        v = marginal_likelihood.log_px_is(enc, dec, x, k, generator=g).mean()
        dt = time.perf_counter() - t
        print(f"IS k={k:<5}      {v:9.2f}   {dt:7.1f} s   {len(x) * k / dt:,.0f} datapoint-samples/s")
    if a.loop_n:
        from reproduce.bench.is_loop import log_px_per_datapoint

        k = max(map(int, a.ks.split(",")))
        t = time.perf_counter()
        log_px_per_datapoint(enc, dec, x[: a.loop_n], k)
        dt = time.perf_counter() - t
        print(f"per-datapoint loop, k={k}, {a.loop_n} points: {dt:.1f} s = {a.loop_n * k / dt:,.0f} datapoint-samples/s"
              f" -> {dt * len(x) / a.loop_n:,.0f} s for the {len(x)} {a.split} points")


if __name__ == "__main__":
    main()
