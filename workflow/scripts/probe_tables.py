"""probe_runs.csv, probe_summary.csv and probe_best.csv from every sweep."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.io import save_csv  # noqa: E402
from bnnprobe.tables import best_table, runs_table, summary_table  # noqa: E402

runs = runs_table(pd.read_csv(path) for path in snakemake.input.sweeps)
summary = summary_table(runs)
save_csv(runs, snakemake.output.runs)
save_csv(summary, snakemake.output.summary)
save_csv(best_table(summary), snakemake.output.best)
