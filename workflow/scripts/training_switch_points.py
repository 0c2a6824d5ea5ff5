"""The first estimator of a switch trained on the tuning seeds to its convergence, at its tuned lr: the weights
its switches' second estimators are tuned from."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.io import save_torch  # noqa: E402
from bnnprobe.mlp.network import MLPSpec  # noqa: E402
from bnnprobe.plan import SwitchPointJob  # noqa: E402
from bnnprobe.training.tuning import chosen_lr, converged_starts, read_tuning  # noqa: E402

job = SwitchPointJob(**snakemake.params.job)
compute = Compute.from_config(job.compute, threads=snakemake.threads)
table = read_tuning([job.tuning]) if job.tuning else None
points = {}
for dim in job.dims:
    problems = {seed: MLPSpec(dim=dim, seed=seed, num_batches=1, **job.problem) for seed in job.seeds}
    lr = chosen_lr(table, job.estimator, dim) if table is not None else float(job.lr)
    points[dim] = converged_starts(job.estimator, problems, dict(job.protocol), dict(job.settings), lr, compute)
save_torch(points, job.points)
