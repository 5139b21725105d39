"""`python -m reproduce.bench`: the tables of the benchmark, each from its own function, and the JSON record."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from reproduce.bench.step import CASES, MODES, best_mode, concurrent, measure_case, paper_fig2_hours, step_flops
from reproduce.bench.timing import cpu_name, fmt, sgemm_gflops
from reproduce.bench.whole_run import RUN_EVALS, is_throughput, paper_run_overhead, run_split
from reproduce.config import COMPILE_MODES, check_device


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reproduce.bench", description=description)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seconds", type=float, default=5.0, help="timing window per measurement")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--compile", action="store_true", help="also time the torch.compile'd step")
    p.add_argument("--compile-mode", default="default", choices=COMPILE_MODES, help="torch.compile mode of that column")
    p.add_argument("--graph", action="store_true", help="also time the step captured as one CUDA graph (train.cuda_graph;"
                   " CUDA only), and with --compile the graphed compiled step")
    p.add_argument("--skip-baselines", action="store_true", help="skip the plain eager loop and foreach Adagrad columns")
    p.add_argument("--skip-bf16", action="store_true", help="skip the train.precision=bf16 columns")
    p.add_argument("--jobs", type=int, default=0, help="also time this many one-thread jobs at once (0: skip)")
    p.add_argument("--jobs-mode", default="best", choices=["best", *MODES], help="step of those jobs (best: each case's fastest)")
    p.add_argument("--json", default=None, help="also write the measured rates and estimates to this JSON file")
    p.add_argument("--run-budget", type=int, default=1_000_000, help="samples of the whole-run split (0: skip)")
    p.add_argument("--run-evals", default=",".join(RUN_EVALS), help=f"eval settings of that run: {', '.join(RUN_EVALS)}")
    p.add_argument("--run-wandb", default="offline", help="W&B mode of that run (offline: its logging cost counts)")
    p.add_argument("--is-n", type=int, default=200)
    p.add_argument("--is-k", type=int, default=1000)
    return p


class Record(dict):
    """What the bench measured, written to --json after every table row, so that a run cut short keeps it."""

    def __init__(self, path: str | None, **fields):
        super().__init__(**fields)
        self.path = path

    def dump(self) -> None:
        if self.path:
            Path(self.path).write_text(json.dumps(self, indent=1))


def step_table(a, modes: list[str], ceiling: float, rec: Record) -> None:
    """Per case: our step's samples/s, GFLOP/s and share of the sgemm ceiling, the baselines, each mode, the best;
    with the bf16 mode also its GFLOP/s, its share of the same run's bf16 matmul ceiling and bf16 / fp32."""
    bf16 = "bf16" in modes
    print("| case | ours samples/s | ours GFLOP/s | % of sgemm | plain eager samples/s | ours / plain | foreach Adagrad samples/s |"
          + "".join(f" {m} samples/s |" for m in modes) + " best |"
          + " bf16 GFLOP/s | % of bf16 matmul | bf16 / fp32 |" * bf16)
    print("|---|---|---|---|---|---|---|" + "---|" * len(modes) + "---|" + "---|---|---|" * bf16)
    for case in filter(None, a.cases.split(",")):
        m = measure_case(case, a.device, a.seconds, modes, not a.skip_baselines, a.compile_mode)
        rec["rates"][case] = {k: v for k, v in m.items() if k in MODES}
        gf = m["eager"] * step_flops(*CASES[case]) / 1e9
        print(f"| {case} | {m['eager']:,.0f} | {gf:.1f} | {100 * gf / ceiling:.0f}% | {fmt(m['plain'])} | {fmt(m['eager'] / m['plain'], '.2f')} |"
              f" {fmt(m['foreach'])} |" + "".join(f" {fmt(m[mode])} |" for mode in modes) + f" {best_mode(m)} |"
              + (bf16_columns(m, case, rec["bf16_gflops"]) if bf16 else ""))
        rec.dump()


def bf16_columns(m: dict[str, float], case: str, ceiling: float) -> str:
    gf = m["bf16"] * step_flops(*CASES[case]) / 1e9
    return f" {fmt(gf, '.1f')} | {fmt(100 * gf / ceiling, '.0f')}% | {fmt(m['bf16'] / m['eager'], '.2f')} |"


def jobs_table(a, rec: Record) -> None:
    """Samples/s of a.jobs one-thread jobs at once per case, against one job alone."""
    print(f"\n{a.jobs} one-thread jobs at once ({a.jobs_mode}):\n\n| case | samples/s per job | total samples/s | total / one job above | step |\n|---|---|---|---|---|")
    for case, m in rec["rates"].items():
        mode = best_mode(m) if a.jobs_mode == "best" else a.jobs_mode
        each = concurrent(case, a.device, a.seconds, a.jobs, compile_mode=a.compile_mode, **MODES[mode])
        rec["jobs"][case] = {"mode": mode, "each": each, "total": sum(each)}
        print(f"| {case} | {' + '.join(f'{r:,.0f}' for r in each)} | {sum(each):,.0f} | {fmt(sum(each) / m.get(mode, float('nan')), '.2f')} | {mode} |")
        rec.dump()


def run_table(a) -> None:
    """A whole MNIST n_z = 20 run per evaluation setting: seconds of training, evaluation, logging, set-up."""
    print(f"\nwhole run, MNIST n_z=20, {a.run_budget:,} samples, parquet + W&B {a.run_wandb} (seconds; % of training):\n")
    print("| evaluation | training | evaluation | logging | set-up | eval + logging |")
    print("|---|---|---|---|---|---|")
    for evals in filter(None, a.run_evals.split(",")):
        m = run_split(a.device, a.run_budget, evals, a.run_wandb)
        if not m:
            print("(no MNIST under $REPRODUCE_DATA: whole-run split skipped)")
            break
        pct = lambda v: f"{v:.1f} ({100 * v / m['train']:.0f}%)"  # noqa: E731
        print(f"| {evals} | {m['train']:.1f} ({m['rate']:,.0f}/s) | {pct(m['eval'])} | {pct(m['log'])} | {m['setup']:.1f} |"
              f" {100 * (m['eval'] + m['log']) / m['train']:.0f}% |")


def fig2_hours(a, modes: list[str], rec: Record) -> None:
    """The paper-scale Figure 2's training hours from the measured rates, one job at a time and a.jobs at once."""
    rates, hours = {c: m[best_mode(m)] for c, m in rec["rates"].items()}, rec["fig2_hours"]
    if set(CASES) <= set(rates):
        hours["one job"] = paper_fig2_hours(rates)
        how = "eager" if not modes else "best mode per case: " + ", ".join(f"{c} {best_mode(m)}" for c, m in rec["rates"].items())
        print(f"\npaper-scale Figure 2 on this device, one job at a time: {hours['one job']:.1f} h of training ({how})")
    if a.jobs:
        jobs_table(a, rec)
        if set(CASES) <= set(rec["jobs"]):
            hours[f"{a.jobs} jobs"] = paper_fig2_hours({c: j["total"] for c, j in rec["jobs"].items()})
            print(f"\npaper-scale Figure 2 on this device, {a.jobs} jobs at a time: {hours[f'{a.jobs} jobs']:.1f} h of training")
    if hours:
        way = min(hours, key=hours.get)
        print(f"\npaper-scale Figure 2, best measured way on this device ({way}): {hours[way]:.2f} h of training"
              f" ({3.3e9 / hours[way] / 3600:,.0f} samples/s over the 3.3e9)")


def main(argv: list[str] | None = None, description: str = "") -> None:
    p = parser(description)
    a = p.parse_args(argv)
    check_device(a.device)
    if a.graph and torch.device(a.device).type != "cuda":
        p.error(f"--graph captures CUDA graphs: it needs --device cuda (not {a.device})")
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"device={a.device} threads={torch.get_num_threads()} torch={torch.__version__}"
          + (f" gpu={torch.cuda.get_device_name(a.device)}" if a.device.startswith("cuda") else ""))
    print(f"cpu: {cpu_name()}")
    ceiling = sgemm_gflops(seconds=a.seconds, device=a.device)
    print(f"fp32 sgemm ceiling (1000x784x500): {ceiling:.1f} GFLOP/s")
    bf16_ceiling = float("nan") if a.skip_bf16 else sgemm_gflops(seconds=a.seconds, device=a.device, dtype=torch.bfloat16)
    print(f"bf16 matmul ceiling (1000x784x500): {fmt(bf16_ceiling, '.1f')} GFLOP/s\n")
    rec = Record(a.json, device=a.device, torch=torch.__version__, cpu=cpu_name(), seconds=a.seconds, sgemm_gflops=ceiling,
                 bf16_gflops=bf16_ceiling, rates={}, jobs={}, fig2_hours={}, is_rate=0.0)
    modes = ["compiled"] * a.compile + ["graphed"] * a.graph + ["graphed+compiled"] * (a.graph and a.compile) + ["bf16"] * (not a.skip_bf16)
    step_table(a, modes, ceiling, rec)
    fig2_hours(a, modes, rec)
    rec["is_rate"] = is_throughput(a.device, a.is_n, a.is_k) if a.is_n else 0.0
    if rec["is_rate"]:
        print(f"\nIS log p(x), MNIST n_z=20, n={a.is_n}, k={a.is_k}: {rec['is_rate']:,.0f} datapoint-samples/s")
    if a.run_budget:
        run_table(a)
    rec.dump()
    if rec["is_rate"] and "mnist-nz20" in rec["rates"]:
        train_h, eval_h = paper_run_overhead(a.device, rec["rates"]["mnist-nz20"][best_mode(rec["rates"]["mnist-nz20"])], rec["is_rate"])
        print(f"\npaper-scale MNIST n_z=20 run (2.5e8 samples, default eval), estimated from the rates above:"
              f" training {train_h:.2f} h, evaluation {eval_h:.2f} h ({100 * eval_h / train_h:.0f}%)")
