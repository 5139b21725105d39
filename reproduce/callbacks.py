"""Hydra callbacks of a sweep (configured in conf/config.yaml under hydra.callbacks): ValidateSweep checks
every job before the first trains; SweepMonitor shows the sweep's progress and ends it with a results table."""
from __future__ import annotations

import functools
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from reproduce.config import Config, ConfigError, ReproduceError
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
        from reproduce import results

        run = results.read(self.job.meta) if self.job.meta.exists() else None
        return run.meta if run else {}


def sweep_of(config: DictConfig) -> list[SweepJob]:
    """The sweep's distinct jobs: one listed twice (-m seed=0,0, or settings outside its identity) is one job,
    run once (its lock) and reported once."""
    root, jobs = Path(config.hydra.runtime.cwd), {}
    for o in sweep_jobs(config):
        job = Job(compose_job(config.hydra.job.config_name, tuple(o)), root)
        jobs.setdefault(job.id, SweepJob(len(jobs), job_name(o), job))
    return list(jobs.values())


def check_n_jobs(n_jobs: Any) -> None:
    """joblib's n_jobs: jobs at once, or -1 for one per core, -2 for all cores but one, ... (None: one)."""
    cores = os.cpu_count() or 1
    if n_jobs is not None and not (isinstance(n_jobs, int) and (n_jobs > 0 or -cores <= n_jobs < 0)):
        raise ConfigError(f"config value hydra.launcher.n_jobs={n_jobs!r} is invalid: must be > 0 (jobs at once) or "
                          f"from -1 (one job per core) to -{cores} (one job; this machine has {cores} cores)")


class ValidateSweep(Callback):
    """Compose and validate every job of the multirun before the first one trains, so a bad value in any
    job stops the sweep with no results written (the message names the job and the field): its values, the
    launcher's n_jobs, what each job will cost here (train.preflight) and its folders; a job listed twice is
    named (it runs once)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        where = "hydra.launcher"
        try:
            check_n_jobs(config.hydra.launcher.get("n_jobs"))
            composed = []  # every job's values first (cheap, and before torch loads), then what each costs here
            for num, overrides in enumerate(sweep_jobs(config)):
                where = f"sweep job {' '.join(overrides)}"
                composed.append((num, where, compose_job(config.hydra.job.config_name, tuple(overrides))))
            from reproduce.train import preflight

            first: dict[str, int] = {}
            for num, where, cfg in composed:
                preflight(cfg)
                job = Job(cfg, Path(config.hydra.runtime.cwd))
                job.make_folders()
                if job.id in first:
                    print(f"[sweep] #{num} is #{first[job.id]} again (the same job, {job.id}): it runs once", file=sys.stderr)
                first.setdefault(job.id, num)
        except Exception as e:  # Hydra turns a callback's exception into a warning: exit instead
            print(f"[reproduce] {where}: {e if isinstance(e, ReproduceError) else f'{type(e).__name__}: {e}'}", file=sys.stderr)
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
        self.seen0 = {j.num: self.seen(j.meta()) for j in self.jobs}
        self.stop = threading.Event()
        print(f"[sweep] {len(self.jobs)} jobs, {sum(self.finished(j) for j in self.jobs)} already finished; "
              f"results in {self.results_dir / config.log.sweep}", file=sys.stderr)
        threading.Thread(target=self.watch, daemon=True).start()

    def finished(self, j: SweepJob) -> bool:
        return j.meta().get("status") == "done"

    @staticmethod
    def seen(m: dict) -> int:
        """Samples seen by the job of meta m (0 if it failed)."""
        return int(m.get("n_seen") or 0) if m.get("status") != "failed" else 0

    def this_sweep(self, j: SweepJob) -> bool:
        """Job j's meta file was written since this sweep began."""
        return j.job.meta.stat().st_mtime >= self.t0

    def trained(self, j: SweepJob, m: dict) -> int:
        """Samples this sweep has trained of job j: from where its process started or resumed it (n_start), not
        from what its meta said when the sweep began (a resumed job's samples before its checkpoint are not this
        sweep's)."""
        if m.get("status") == "failed":
            return 0
        return self.seen(m) - (int(m["n_start"]) if "n_start" in m and self.this_sweep(j) else self.seen0[j.num])

    def watch(self) -> None:
        while not self.stop.wait(MONITOR_EVERY_S):
            print(self.progress(), file=sys.stderr, flush=True)

    def progress(self) -> str:
        """[sweep] 5/18 done; running 6/18 mnist-aevb-nz10-s0-... (41%), ...; about 35 min left"""
        metas = {j.num: j.meta() for j in self.jobs}
        done = sum(m.get("status") == "done" for m in metas.values())
        running = [f"{j.num + 1}/{len(self.jobs)} {j.job.id} ({100 * int(metas[j.num].get('n_seen', 0)) // j.job.cfg.train.budget}%)"
                   for j in self.jobs if metas[j.num].get("status") == "running" and self.this_sweep(j)]
        trained = sum(self.trained(j, metas[j.num]) for j in self.jobs)
        left = sum(j.job.cfg.train.budget - min(self.seen(metas[j.num]), j.job.cfg.train.budget) for j in self.jobs)
        rate = trained / max(time.time() - self.t0, 1e-9)
        eta = f"about {left / rate / 60:.0f} min left" if rate > 0 else "time left: after the first progress"
        return f"[sweep] {done}/{len(self.jobs)} done; running {', '.join(running) or 'none'}; {eta}"

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.stop.set()
        print(self.summary(config), file=sys.stderr)
        elsewhere = [f"  {j.job.id} ({j.name}): its lock {j.job.lock_file} is held" for j in self.jobs if self.elsewhere(j)]
        failed = [f"  {j.job.id} ({j.name}): {m.get('error', m.get('status', 'no results'))}"
                  for j in self.jobs if (m := j.meta()).get("status") != "done" and not self.elsewhere(j)]
        if elsewhere:
            print(f"\n[reproduce] {len(elsewhere)} job(s) running elsewhere (another process trains them; this sweep "
                  "skipped them): rerun this command when they have ended to list their results", *elsewhere, sep="\n",
                  file=sys.stderr)
        if failed:
            print(f"\n[reproduce] {len(failed)} job(s) failed:", *failed, sep="\n", file=sys.stderr)
            sys.exit(1)

    def elsewhere(self, j: SweepJob) -> bool:
        """The job is not done here and another process holds its lock."""
        return j.meta().get("status") != "done" and j.job.running_elsewhere()

    def summary(self, config: DictConfig) -> str:
        """Each job's final train / test bound and test IS beside the paper's at the same samples seen."""
        import pandas as pd

        from reproduce.paper import load_reference, paper_value
        from reproduce.tables import markdown

        ref, rows = load_reference(), []
        for j in self.jobs:
            m, c = j.meta(), j.job.cfg
            if self.elsewhere(j):
                rows.append([j.job.id, "running elsewhere", m.get("n_seen", ""), "", "", ""])
                continue
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
