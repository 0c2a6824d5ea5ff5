"""Loss decreases of one estimator instance's records over the coarse lr grid, then the fine grid chosen from it,
one output set per group (a dim of the MLP probe, a finetune run of the layer probe, a (dim, phase) along
training), for every step layer; cosines to the references (CDG, and the smoothed coordinate gradient)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import logging  # noqa: E402

from bnnprobe.analysis.sweep import sweep_groups  # noqa: E402
from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.io import save_csv, save_json  # noqa: E402
from bnnprobe.plan import SweepJob  # noqa: E402
from bnnprobe.probes import PROBES  # noqa: E402
from bnnprobe.study import load_record, load_source  # noqa: E402

job = SweepJob(**snakemake.params.job)
source = load_source(PROBES[job.probe].source)
compute = Compute.from_config(job.compute, threads=snakemake.threads)
records = [load_record(path, source) for path in job.records]
references = {name: [load_record(path, source) for path in paths] for name, paths in job.references.items()}
swept = sweep_groups(source, records, references, job.groups, job.coarse_lrs, job.fine_settings, compute,
                     job.step_layers)
for (group, coarse, fine_lrs, fine_rows), coarse_path, fine_path, grid_path in zip(
        swept, job.coarse, job.fine, job.fine_grids, strict=True):
    logging.info("%s: fine lr grids %s", group, fine_lrs)
    save_csv(coarse, coarse_path)
    save_csv(fine_rows, fine_path)
    save_json({"lrs_by_step_layer": fine_lrs, "settings": job.fine_settings}, grid_path)
