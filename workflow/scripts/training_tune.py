"""The lr tuning of one estimator: every lr of its grid at every training dim, on the tuning seeds."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.io import save_csv  # noqa: E402
from bnnprobe.mlp.network import MLPSpec  # noqa: E402
from bnnprobe.training.tuning import tune  # noqa: E402

p = snakemake.params
compute = Compute.from_config(p.compute, threads=snakemake.threads)
tables = []
for dim in p.dims:
    problems = {seed: MLPSpec(dim=dim, seed=seed, num_batches=1, **p.problem) for seed in p.seeds}
    tables.append(tune(snakemake.wildcards.estimator, problems, p.grid, p.steps, p.val_batch_size, p.optimizer,
                       dict(p.settings), compute, p.extensions))
save_csv(pd.concat(tables, ignore_index=True), snakemake.output.table)
