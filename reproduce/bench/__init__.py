"""`python -m reproduce.bench`: training throughput and GFLOP/s of our step next to the fp32 sgemm ceiling
and a plain eager loop of the same model, measured in the same run; a whole run's time split; IS throughput.

The modules: timing (timed calls, the sgemm ceiling), step (one case's step in each mode, the baselines, jobs at
once), whole_run (a run's time split, IS throughput), cli (the tables). Side studies: python -m
reproduce.bench.<is_loop | is_pythae | is_ladder | stacked_seeds | softplus_ab | full_vb_init>."""
from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    from reproduce.bench.cli import main as run

    run(argv, description=__doc__.splitlines()[0])
