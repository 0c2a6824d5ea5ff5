"""The probe study's figures over all dims, from its tables (the lr curves of each dim: probe_lr_curves.py)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.analysis import figures  # noqa: E402
from bnnprobe.io import save_figure  # noqa: E402

runs = pd.read_csv(snakemake.input.runs)
summary = pd.read_csv(snakemake.input.summary)
best = pd.read_csv(snakemake.input.best)
panels = list(snakemake.params.panels)
out = snakemake.output

save_figure(figures.quick_check(summary, panels, snakemake.params.quick_check_lr), out.quick_check)
save_figure(figures.best_vs_dim(best), out.best_vs_dim)
save_figure(figures.cosine_vs_dim(runs), out.cosine_vs_dim)
