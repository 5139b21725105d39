"""launcher=slurm's launcher (conf/launcher/slurm.yaml, docs/slurm.md): hydra-submitit-launcher's, following every
job of the sweep to its end. Its own raises at the first job that ends without a result (cancelled, killed on its
node, its node lost): the jobs after it are no longer followed and the sweep's summary never shows. (In this
package because Hydra loads launchers only from hydra_plugins.)"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from omegaconf import OmegaConf


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Submit the sweep as one job array (hydra-submitit-launcher's launch, as it is) and collect every job."""
        import submitit

        params = dict(self.params)
        executor = submitit.AutoExecutor(cluster="slurm", folder=params.pop("submitit_folder"),
                                         slurm_max_num_timeout=params.pop("max_num_timeout"))
        common = set(OmegaConf.structured(BaseQueueConf).keys())  # the rest are sbatch's: slurm_<key>
        executor.update_parameters(**{k if k in common else f"slurm_{k}": v for k, v in params.items()})
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        nums = range(initial_job_idx, initial_job_idx + len(job_overrides))
        jobs = executor.map_array(self, [list(o) for o in job_overrides], ["hydra.sweep.dir"] * len(nums), list(nums),
                                  [f"job_id_for_{i}" for i in nums], [Singleton.get_state()] * len(nums))
        return [collect(job, overrides) for job, overrides in zip(jobs, job_overrides)]


def collect(job, overrides: Sequence[str]) -> JobReturn:
    """The job's return. One that ended without a result is named here and returned as empty, so the sweep goes
    on: its results were never marked done, so the sweep's summary lists it as failed (callbacks.SweepMonitor).
    An exception the job raised is raised as before."""
    from submitit.core.utils import UncompletedJobError

    error = job.exception()
    if type(error) is not UncompletedJobError:  # a result, or the job's own exception (FailedJobError)
        return job.results()[0]
    print(f"[reproduce] Slurm job {job.job_id} ({' '.join(overrides)}) ended without a result: {job.state}; "
          f"its log: {job.paths.stderr}", file=sys.stderr)
    return JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
