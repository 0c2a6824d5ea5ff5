"""Loss decrease vs lr at each num_dim, from the probe's summary table."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from bnnprobe.analysis import figures  # noqa: E402
from bnnprobe.analysis.tables import load_table, main_rows  # noqa: E402
from bnnprobe.io import save_figure  # noqa: E402

summary = main_rows(load_table(snakemake.input.summary))
for dim, path in zip(snakemake.params.dims, snakemake.output.figures, strict=True):
    save_figure(figures.lr_curves(summary, list(snakemake.params.panels), int(dim)), path)
