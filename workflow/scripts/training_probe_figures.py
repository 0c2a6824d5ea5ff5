"""The one-step probe along one training run: its STE's cosine to CDG and to the smoothed gradient per layer."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from bnnprobe.analysis.tables import load_table  # noqa: E402
from bnnprobe.io import save_figure  # noqa: E402
from bnnprobe.training import figures  # noqa: E402

save_figure(figures.phase_probe(load_table(snakemake.input.runs), snakemake.params.schedule), snakemake.output.figure)
