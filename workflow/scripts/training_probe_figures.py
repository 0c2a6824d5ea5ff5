"""The one-step probe along one training run: best loss decrease and cosine to CDG vs phase."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.analysis import figures  # noqa: E402
from bnnprobe.io import save_figure  # noqa: E402

figure = figures.phase_probe(pd.read_csv(snakemake.input.best), pd.read_csv(snakemake.input.runs),
                             snakemake.params.schedule, list(snakemake.params.phases))
save_figure(figure, snakemake.output.figure)
