"""The training study's figures from its curves table."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import pandas as pd  # noqa: E402

from bnnprobe.analysis import figures  # noqa: E402
from bnnprobe.io import save_figure  # noqa: E402

curves = pd.read_csv(snakemake.input.curves)
save_figure(figures.student_loss_vs_step(curves), snakemake.output.vs_step)
save_figure(figures.student_loss_vs_evals(curves), snakemake.output.vs_evals)
