"""The same training runs in float32 and float64: how far precision moves them."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.io import save_csv  # noqa: E402
from bnnprobe.training.run import learning_rates, precision_rows  # noqa: E402

rows = []
for spec_dict in snakemake.params.specs:
    lrs = learning_rates(spec_dict, snakemake.params.lr, list(snakemake.input.tuning))
    rows.append(precision_rows({**spec_dict, "lrs": lrs}, dict(snakemake.params.settings), snakemake.params.compute,
                               snakemake.threads))
save_csv(pd.DataFrame(rows), snakemake.output.table)
