"""Gradient records of one estimator instance for every spec of its job (any probe; see bnnprobe.study)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.plan import GradientJob  # noqa: E402
from bnnprobe.probes import PROBES  # noqa: E402
from bnnprobe.study import compute_record, load_source, save_record  # noqa: E402

job = GradientJob(**snakemake.params.job)
assert sorted(job.records) == sorted(snakemake.output.records), "the plan's records are the rule's outputs"
source = load_source(PROBES[job.probe].source)
compute = Compute.from_config(job.compute, threads=snakemake.threads)
for spec, path in zip(job.specs, job.records, strict=True):
    save_record(compute_record(source, dict(spec), job.name, dict(job.settings), compute), path)
