"""runs, summary and best tables of one probe from all its sweeps (torch-free)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from bnnprobe.analysis.tables import probe_tables  # noqa: E402
from bnnprobe.io import save_csv  # noqa: E402
from bnnprobe.probes import PROBES  # noqa: E402

from bnnprobe.analysis.tables import load_table  # noqa: E402

sweeps = [load_table(path) for path in snakemake.input.sweeps]
runs, summary, best = probe_tables(sweeps, PROBES[snakemake.params.probe], dict(snakemake.params.reference_values))
save_csv(runs, snakemake.output.runs)
save_csv(summary, snakemake.output.summary)
save_csv(best, snakemake.output.best)
