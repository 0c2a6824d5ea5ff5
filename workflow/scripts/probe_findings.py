"""The probe's findings per layer and along sigma/eps, with the tables they are read from (torch-free)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from pathlib import Path  # noqa: E402

from bnnprobe.analysis.findings import findings_markdown, knob_comparisons, layer_comparisons  # noqa: E402
from bnnprobe.analysis.tables import load_table  # noqa: E402
from bnnprobe.io import atomic_path, save_csv  # noqa: E402

folds, best = load_table(snakemake.input.crossfit), load_table(snakemake.input.best)
layers, knobs = layer_comparisons(folds, best), knob_comparisons(folds, best)
save_csv(layers, snakemake.output.layers)
save_csv(knobs, snakemake.output.sigma_eps)
with atomic_path(snakemake.output.findings) as tmp:
    Path(tmp).write_text(findings_markdown(layers, knobs))
