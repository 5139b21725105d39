"""Hydra callbacks (configured in conf/config.yaml under hydra.callbacks)."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class FailureSummary(Callback):
    """At the end of a multirun, list the jobs of this sweep that failed since it began, and exit 1.

    It reads the status each job wrote beside its results, so it works under every launcher
    (in-process, joblib, submitit), where the jobs' own exceptions never reach this process."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.t0 = time.time()

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
