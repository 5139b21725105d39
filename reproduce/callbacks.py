"""Hydra callbacks (configured in conf/config.yaml under hydra.callbacks)."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def sweep_jobs(config: DictConfig) -> list[list[str]]:
    """The override list of every job the basic sweeper will launch (config params, then command line)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    parsed = OverridesParser.create().parse_overrides(params + list(config.hydra.overrides.task))
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def validate_sweep(config: DictConfig) -> None:
    """Compose and validate every job of the multirun before the first one trains, so a bad value in
    any job stops the sweep with no results written (the message names the job and the field)."""
    from hydra import compose
    from omegaconf import OmegaConf

    for job in sweep_jobs(config):
        try:
            OmegaConf.to_object(compose(config.hydra.job.config_name, overrides=job))
        except Exception as e:  # Hydra turns a callback's exception into a warning: exit instead
            print(f"[reproduce] sweep job {' '.join(job)}: {type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(2)


class FailureSummary(Callback):
    """At the end of a multirun, list the jobs of this sweep that failed since it began, and exit 1.

    It reads the status each job wrote beside its results, so it works under every launcher
    (in-process, joblib, submitit), where the jobs' own exceptions never reach this process."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.t0 = time.time()
        validate_sweep(config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        results = Path(config.log.results_dir) / config.log.sweep
        failed = []
        for meta in sorted(results.glob("*.yaml")):
            doc = yaml.safe_load(meta.read_text())["meta"]
            if doc.get("status") == "failed" and meta.stat().st_mtime >= self.t0:
                failed.append(f"  {doc.get('run_id')}: {doc.get('error')}")
        if failed:
            print(f"\n[reproduce] {len(failed)} job(s) failed:", *failed, sep="\n", file=sys.stderr)
            sys.exit(1)
