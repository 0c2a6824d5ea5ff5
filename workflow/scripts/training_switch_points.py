"""The first estimator of a switch trained on the tuning seeds to its convergence, at its tuned lr: the weights
its switches' second estimators are tuned from."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.io import save_torch  # noqa: E402
from bnnprobe.mlp.network import MLPSpec  # noqa: E402
from bnnprobe.training.tuning import chosen_lr, converged_starts, read_tuning  # noqa: E402

p = snakemake.params
compute = Compute.from_config(p.compute, threads=snakemake.threads)
name = snakemake.wildcards.estimator
table = read_tuning([snakemake.input.tuning])
points = {}
for dim in p.dims:
    problems = {seed: MLPSpec(dim=dim, seed=seed, num_batches=1, **p.problem) for seed in p.seeds}
    points[dim] = converged_starts(name, problems, dict(p.protocol), dict(p.settings), chosen_lr(table, name, dim),
                                   compute)
save_torch(points, snakemake.output.points)
