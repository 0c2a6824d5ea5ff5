"""Gradients of every batch for one (estimator, dim, seed); see bnnprobe.study for the record's keys."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import torch  # noqa: E402

from bnnprobe.io import save_torch  # noqa: E402
from bnnprobe.mlp import MLPSpec  # noqa: E402
from bnnprobe.study import compute_gradients  # noqa: E402

torch.set_num_threads(snakemake.threads)
spec = MLPSpec(dim=int(snakemake.wildcards.dim), seed=int(snakemake.wildcards.seed), **snakemake.params.problem)
record = compute_gradients(spec, snakemake.wildcards.estimator, dict(snakemake.params.settings),
                           **snakemake.params.compute)
save_torch(record, snakemake.output.gradients)
