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
from bnnprobe.training.tuning import tune  # noqa: E402

p = snakemake.params
compute = Compute.from_config(p.compute, threads=snakemake.threads)
name = snakemake.wildcards.get("estimator") or p.estimator
after = p.get("after", "")
points = load_torch(snakemake.input.points) if after else None  # dim -> seed -> the switch point
tables = []
for dim in p.dims:
    starts = {seed: (MLPSpec(dim=dim, seed=seed, num_batches=1, **p.problem),
                     points[dim][seed]["theta"] if points is not None else None) for seed in p.seeds}
    tables.append(tune(name, starts, p.grid, dict(p.budget), dict(p.settings), compute, p.extensions, after=after))
save_csv(pd.concat(tables, ignore_index=True), snakemake.output.table)
