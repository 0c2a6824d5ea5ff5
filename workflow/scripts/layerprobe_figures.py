"""The layer probe's figures from its tables."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.layerprobe import figures  # noqa: E402
from bnnprobe.io import save_figure  # noqa: E402

summary = pd.read_csv(snakemake.input.summary)
best = pd.read_csv(snakemake.input.best)
panels = [dict(p) for p in snakemake.params.panels]
save_figure(figures.layer_lr_curves(summary, panels), snakemake.output.lr_curves)
save_figure(figures.best_vs_hyperparameter(best, [dict(r) for r in snakemake.params.runs]),
            snakemake.output.best_vs_hyperparameter)
