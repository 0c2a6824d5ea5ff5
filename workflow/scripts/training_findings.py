"""findings_training.md: the training study's findings, generated from its tables (torch-free)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from bnnprobe.analysis.tables import load_table  # noqa: E402
from bnnprobe.io import atomic_path, save_csv  # noqa: E402
from bnnprobe.training.findings import findings_markdown  # noqa: E402
from bnnprobe.training.tables import converged_probe, cosine_trend, ste_rankings  # noqa: E402
from bnnprobe.training.tuning import read_tuning  # noqa: E402

i, p = snakemake.input, snakemake.params
trend = cosine_trend(load_table(i.probe_runs))
probe_best = load_table(i.probe_best)
converged = converged_probe(probe_best, load_table(i.probe_crossfit))
save_csv(trend, snakemake.output.trend)
save_csv(converged, snakemake.output.converged)
lr = read_tuning([i.lr])
text = findings_markdown(pd.read_csv(i.runs), pd.read_csv(i.final), pd.read_csv(i.comparisons),
                         pd.read_csv(i.leaders), trend, converged, ste_rankings(probe_best),
                         protocol=dict(p.protocol), tuning=lr if len(lr) else None,
                         precision=pd.read_csv(i.precision) if i.precision else None)
with atomic_path(snakemake.output.findings) as tmp:
    Path(tmp).write_text(text)
