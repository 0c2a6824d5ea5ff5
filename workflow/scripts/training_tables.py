"""training_curves.csv, training_final.csv and training_switches.csv from every run's curve (torch-free)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.io import save_csv  # noqa: E402
from bnnprobe.training.tables import curves_table, final_table, switch_comparisons  # noqa: E402

curves = curves_table(pd.read_csv(path) for path in snakemake.input.curves)
final = final_table(curves)
switches = switch_comparisons(curves)
save_csv(curves, snakemake.output.curves)
save_csv(final, snakemake.output.final)
save_csv(switches, snakemake.output.switches)
