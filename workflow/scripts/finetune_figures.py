"""The finetunes' training curves."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.finetune import figures  # noqa: E402
from bnnprobe.io import save_figure  # noqa: E402

paths = iter(snakemake.input.metrics)
frames = [(dict(run), seed, pd.read_csv(next(paths))) for run in snakemake.params.runs for seed in snakemake.params.seeds]
save_figure(figures.finetune_curves(frames), snakemake.output.curves)
