"""The training study's figures from its tables."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.io import save_figure  # noqa: E402
from bnnprobe.training import figures  # noqa: E402

curves = pd.read_csv(snakemake.input.curves)
save_figure(figures.loss_vs_step(curves), snakemake.output.vs_step)
for dim, path in zip(snakemake.params.dims, snakemake.output.vs_cost, strict=True):
    save_figure(figures.loss_vs_cost(curves, dim), path)
if "lr" in snakemake.output.keys():  # training.lr: auto
    save_figure(figures.lr_tuning(pd.read_csv(snakemake.input.lr)), snakemake.output.lr)
