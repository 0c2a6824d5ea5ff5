"""The training study's tables from every run's curve and the lr tuning (torch-free)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.io import save_csv  # noqa: E402
from bnnprobe.training import tables  # noqa: E402
from bnnprobe.training.tuning import TUNING_COLUMNS  # noqa: E402

curves = tables.curves_table(pd.read_csv(path) for path in snakemake.input.curves)
runs = tables.runs_table(curves, snakemake.params.patience, snakemake.params.smooth)
budgets = tables.budgets_table(curves)
out = snakemake.output
save_csv(curves, out.curves)
save_csv(runs, out.runs)
save_csv(tables.final_table(runs), out.final)
save_csv(budgets, out.budgets)
save_csv(tables.budget_leaders(budgets), out.leaders)
save_csv(tables.comparisons_table(curves, snakemake.params.controls), out.comparisons)
tuned = [pd.read_csv(path) for path in snakemake.input.tuning]  # none when training.lr is a number
save_csv(pd.concat(tuned, ignore_index=True) if tuned else pd.DataFrame(columns=TUNING_COLUMNS), out.lr)
