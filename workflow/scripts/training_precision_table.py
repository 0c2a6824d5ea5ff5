"""training_precision.csv: every precision job's float32-vs-float64 comparison in one table (torch-free)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.io import save_csv  # noqa: E402

save_csv(pd.concat([pd.read_csv(path) for path in snakemake.input.tables], ignore_index=True), snakemake.output.table)
