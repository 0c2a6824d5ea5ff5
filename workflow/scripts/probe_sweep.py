"""Loss decreases of one (estimator, dim), all seeds: the coarse lr grid, then the fine grid chosen from it."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import logging  # noqa: E402

import torch  # noqa: E402

from bnnprobe.io import load_torch, save_csv, save_json  # noqa: E402
from bnnprobe.sweep import sweep_coarse_and_fine  # noqa: E402

torch.set_num_threads(snakemake.threads)
compute = snakemake.params.compute
records = [load_torch(path) for path in snakemake.input.gradients]
cdg_records = [load_torch(path) for path in snakemake.input.cdg]
coarse, fine_lrs, fine = sweep_coarse_and_fine(records, cdg_records, snakemake.params.coarse_lrs,
                                               dict(snakemake.params.fine), device=compute["device"],
                                               memory_budget_mb=compute["memory_budget_mb"])
logging.info("fine lr grid: %s", fine_lrs)
save_csv(coarse, snakemake.output.coarse)
save_csv(fine, snakemake.output.fine)
save_json({"lrs": fine_lrs, "settings": dict(snakemake.params.fine)}, snakemake.output.fine_grid)
