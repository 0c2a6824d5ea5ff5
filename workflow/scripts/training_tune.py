"""The lr tuning of one estimator at every training dim on the tuning seeds: from the initialisation, or
(a switch's second estimator) from the first estimator's converged weights."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.io import load_torch, save_csv  # noqa: E402
from bnnprobe.mlp.network import MLPSpec  # noqa: E402
from bnnprobe.plan import TuningJob  # noqa: E402
from bnnprobe.training.tuning import tune  # noqa: E402

job = TuningJob(**snakemake.params.job)
compute = Compute.from_config(job.compute, threads=snakemake.threads)
points = load_torch(job.points) if job.points else None  # dim -> seed -> the switch point
tables = []
for dim in job.dims:
    starts = {seed: (MLPSpec(dim=dim, seed=seed, num_batches=1, **job.problem),
                     points[dim][seed]["theta"] if points is not None else None) for seed in job.seeds}
    tables.append(tune(job.estimator, starts, job.grid, dict(job.budget), dict(job.settings), compute, job.extend,
                       after=job.after))
save_csv(pd.concat(tables, ignore_index=True), job.table)
