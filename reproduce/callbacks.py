"""Hydra callbacks of a sweep (configured in conf/config.yaml under hydra.callbacks): ValidateSweep checks
every job before the first trains; SweepMonitor shows the sweep's progress and ends it with a results table."""
from __future__ import annotations

import functools
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from reproduce.config import Config
from reproduce import results
from reproduce.jobs import Job, job_name

MONITOR_EVERY_S = 60.0  # seconds between progress lines


def sweep_jobs(config: DictConfig) -> list[list[str]]:
    """The override list of every job the basic sweeper will launch (config params, then command line)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    parsed = OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


@functools.cache
def compose_job(config_name: str, overrides: tuple[str, ...]) -> Config:
    """One job's validated config (raises on a bad value, naming the field)."""
    from hydra import compose
    from omegaconf import OmegaConf

    return OmegaConf.to_object(compose(config_name, overrides=list(overrides)))


@dataclass
class SweepJob:
    num: int
    name: str
    job: Job

    def meta(self) -> dict:
        run = results.read(self.job.meta) if self.job.meta.exists() else None
        return run.meta if run else {}


def sweep_of(config: DictConfig) -> list[SweepJob]:
    root = Path(config.hydra.runtime.cwd)
    return [SweepJob(i, job_name(o), Job(compose_job(config.hydra.job.config_name, tuple(o)), root))
            for i, o in enumerate(sweep_jobs(config))]


class ValidateSweep(Callback):
    """Compose and validate every job of the multirun before the first one trains, so a bad value in any
    job stops the sweep with no results written (the message names the job and the field)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        for overrides in sweep_jobs(config):
            try:
                compose_job(config.hydra.job.config_name, tuple(overrides))
            except Exception as e:  # Hydra turns a callback's exception into a warning: exit instead
                print(f"[reproduce] sweep job {' '.join(overrides)}: {type(e).__name__}: {e}", file=sys.stderr)
                sys.exit(2)


class SweepMonitor(Callback):
    """While a sweep runs, a line every minute: jobs done of all, the running ones with their samples seen,
    and a rough time left (samples still to train over the sweep's rate so far). At its end, a table of each
    job's final bounds beside the paper's, the failed jobs named, and exit code 1 if any failed.

    It reads the meta file each job keeps beside its results, so it works under every launcher."""

    def __getstate__(self) -> dict:  # launchers pickle the callbacks to their workers: the watcher stays here
        return {}

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.t0, self.jobs = time.time(), sweep_of(config)
        self.results_dir = Path(config.hydra.runtime.cwd) / config.log.results_dir
        self.seen0 = {j.num: self.seen(j) for j in self.jobs}
        self.stop = threading.Event()
        print(f"[sweep] {len(self.jobs)} jobs, {sum(self.finished(j) for j in self.jobs)} already finished; "
              f"results in {self.results_dir / config.log.sweep}", file=sys.stderr)
        threading.Thread(target=self.watch, daemon=True).start()

    def finished(self, j: SweepJob) -> bool:
        return j.meta().get("status") == "done"

    def seen(self, j: SweepJob) -> int:
        m = j.meta()
        return int(m.get("n_seen") or 0) if m.get("status") != "failed" else 0

    def watch(self) -> None:
        while not self.stop.wait(MONITOR_EVERY_S):
            print(self.progress(), file=sys.stderr, flush=True)

    def progress(self) -> str:
        """[sweep] 5/18 done; running 6/18 mnist-aevb-nz10-s0-... (41%), ...; about 35 min left"""
        metas = {j.num: j.meta() for j in self.jobs}
        done = sum(m.get("status") == "done" for m in metas.values())
        running = [f"{j.num + 1}/{len(self.jobs)} {j.job.id} ({100 * int(metas[j.num].get('n_seen', 0)) // j.job.cfg.train.budget}%)"
                   for j in self.jobs if metas[j.num].get("status") == "running" and j.job.meta.stat().st_mtime >= self.t0]
        trained = sum(self.seen(j) - self.seen0[j.num] for j in self.jobs)
        left = sum(j.job.cfg.train.budget - min(self.seen(j), j.job.cfg.train.budget) for j in self.jobs)
        rate = trained / max(time.time() - self.t0, 1e-9)
        eta = f"about {left / rate / 60:.0f} min left" if rate > 0 else "time left: after the first progress"
        return f"[sweep] {done}/{len(self.jobs)} done; running {', '.join(running) or 'none'}; {eta}"

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.stop.set()
        print(self.summary(config), file=sys.stderr)
        failed = [f"  {j.job.id} ({j.name}): {m.get('error', m.get('status', 'no results'))}"
                  for j in self.jobs if (m := j.meta()).get("status") != "done"]
        if failed:
            print(f"\n[reproduce] {len(failed)} job(s) failed:", *failed, sep="\n", file=sys.stderr)
            sys.exit(1)

    def summary(self, config: DictConfig) -> str:
        """Each job's final train / test bound and test IS beside the paper's at the same samples seen."""
        import pandas as pd

        from reproduce.paper import load_reference, paper_value
        from reproduce.tables import markdown

        ref, rows = load_reference(), []
        for j in self.jobs:
            m, c = j.meta(), j.job.cfg
            if m.get("status") != "done":
                rows.append([j.job.id, f"**{m.get('status', 'not run')}**", m.get("n_seen", ""), "", "", ""])
                continue

            def cell(split: str, metric: str) -> str:
                v = m.get(f"{split}_{metric}")
                p = paper_value(ref, c.dataset.name.value, c.algorithm.name, c.model.n_z, c.dataset.n_train, split, metric, m["n_seen"])
                return "" if v is None else f"{v:.1f}" + (f" ({p:.1f})" if p is not None else "")

            rows.append([j.job.id, "done", f"{m['n_seen']:.3g}", cell("train", "lower_bound"), cell("test", "lower_bound"),
                         cell("test", "marginal_ll_is")])
        table = pd.DataFrame(rows, columns=["job", "status", "samples", "train bound", "test bound", "test IS"])
        return (f"\n[sweep] {config.log.sweep}: {len(self.jobs)} jobs, {(time.time() - self.t0) / 60:.1f} min; "
                "final lower bound (and IS log p(x)) per datapoint, the paper's at the same samples seen in brackets\n"
                + markdown(table)
                + f"\nFigures and the ours-vs-paper table: python -m reproduce.report --results {config.log.results_dir}")
