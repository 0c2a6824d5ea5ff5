"""Loss decreases of one (estimator, dim) over all seeds, on the coarse lr grid or on the fine one.

The fine grid is chosen here from the coarse sweep's rows (bnnprobe.lrgrid.fine_grid) and saved beside.
"""
from bnnprobe.logs import to_file

to_file(snakemake.log[0])

import logging  # noqa: E402

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from bnnprobe.io import load_torch, save_csv, save_json  # noqa: E402
from bnnprobe.lrgrid import fine_grid  # noqa: E402
from bnnprobe.sweep import sweep_record  # noqa: E402
from bnnprobe.tables import RUN_COLUMNS  # noqa: E402

torch.set_num_threads(snakemake.threads)
compute = snakemake.params.compute
if "grid" in snakemake.output.keys():
    fine = dict(snakemake.params.fine)
    lrs = fine_grid(pd.read_csv(snakemake.input.coarse), fine["mode"], fine["points"], fine["span_decades"],
                    fine["low"], fine["high"])
    logging.info("fine lr grid: %s", lrs)
    save_json({"lrs": lrs, "settings": fine}, snakemake.output.grid)
    grid = "fine"
else:
    lrs, grid = list(snakemake.params.lrs), "coarse"
frames = [
    sweep_record(load_torch(path), lrs, grid, cdg_record=load_torch(cdg_path), device=compute["device"],
                 memory_budget_mb=compute["memory_budget_mb"])
    for path, cdg_path in zip(snakemake.input.gradients, snakemake.input.cdg)
]
rows = pd.concat(frames, ignore_index=True) if lrs else pd.DataFrame(columns=RUN_COLUMNS)
save_csv(rows, snakemake.output.rows)
