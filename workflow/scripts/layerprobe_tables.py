"""layerprobe_runs/summary/best.csv and the layer-probe figures."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe import figures  # noqa: E402
from bnnprobe.io import save_csv, save_figure  # noqa: E402
from bnnprobe.layerprobe import LAYER_KEY, LAYER_RUN_COLUMNS  # noqa: E402
from bnnprobe.tables import best_table, runs_table, summary_table  # noqa: E402

BY = ("run_id", "layer", "k", "estimator")
runs = runs_table((pd.read_csv(p) for p in snakemake.input.sweeps), key=LAYER_KEY, columns=LAYER_RUN_COLUMNS)
summary = summary_table(runs, by=BY)
best = best_table(summary, by=BY)
out = snakemake.output
save_csv(runs, out.runs)
save_csv(summary, out.summary)
save_csv(best, out.best)
panels = [dict(p) for p in snakemake.params.panels]
save_figure(figures.layer_lr_curves(summary, panels), out.lr_curves)
save_figure(figures.best_vs_hyperparameter(best, [dict(r) for r in snakemake.params.runs]),
            out.best_vs_hyperparameter)
