"""Gradient records of one estimator for a list of problem specs (any probe; see bnnprobe.study)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.io import save_torch  # noqa: E402
from bnnprobe.study import compute_record, load_source  # noqa: E402

source = load_source(snakemake.params.source)
compute = Compute.from_config(snakemake.params.compute, threads=snakemake.threads)
for spec, path in zip(snakemake.params.specs, snakemake.output.records, strict=True):
    record = compute_record(source, dict(spec), snakemake.wildcards.estimator, dict(snakemake.params.settings), compute)
    save_torch(record, path)
