"""The training study's tables from every run's curve and the lr tuning (torch-free)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.io import save_csv  # noqa: E402
from bnnprobe.training import tables  # noqa: E402
from bnnprobe.training.tuning import TUNING_COLUMNS, read_tuning  # noqa: E402

smooth = snakemake.params.smooth
curves = tables.curves_table(pd.read_csv(path) for path in snakemake.input.curves)
runs = tables.runs_table(curves, smooth)
budgets = tables.budgets_table(curves, smooth)
# none when training.lr is a number
tuning = read_tuning(list(snakemake.input.tuning)) if snakemake.input.tuning else pd.DataFrame(columns=TUNING_COLUMNS)
out = snakemake.output
save_csv(curves, out.curves)
save_csv(runs, out.runs)
save_csv(tables.final_table(runs), out.final)
save_csv(budgets, out.budgets)
save_csv(tables.budget_leaders(budgets), out.leaders)
save_csv(tables.comparisons_table(curves, runs, snakemake.params.controls, smooth, tuning), out.comparisons)
save_csv(tuning, out.lr)
