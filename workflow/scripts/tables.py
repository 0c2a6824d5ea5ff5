"""runs, summary, best and cross-fit tables of one probe from all its sweeps (torch-free)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from bnnprobe.analysis.tables import load_table, probe_tables  # noqa: E402
from bnnprobe.io import save_csv  # noqa: E402
from bnnprobe.probes import PROBES  # noqa: E402

sweeps = [load_table(path) for path in snakemake.input.sweeps]
tables = probe_tables(sweeps, PROBES[snakemake.params.probe], dict(snakemake.params.reference_values))
for table, path in zip(tables, [snakemake.output.runs, snakemake.output.summary, snakemake.output.best,
                               snakemake.output.crossfit], strict=True):
    save_csv(table, path)
