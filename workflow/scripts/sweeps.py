"""Loss decreases of one estimator's records over the coarse lr grid, then the fine grid chosen from it,
one output set per group (a dim of the MLP probe, a finetune run of the layer probe), for every step
layer; cosines to the references (CDG, and the smoothed coordinate gradient where the rule gives it)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import logging  # noqa: E402

from bnnprobe.analysis.sweep import sweep_groups  # noqa: E402
from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.io import save_csv, save_json  # noqa: E402
from bnnprobe.study import load_record, load_source  # noqa: E402

source = load_source(snakemake.params.source)
compute = Compute.from_config(snakemake.params.compute, threads=snakemake.threads)
records = [load_record(path, source) for path in snakemake.input.gradients]
references = {name: [load_record(path, source) for path in snakemake.input.get(name, [])]
              for name in ("cdg", "smoothed")}
fine = dict(snakemake.params.fine)
out = snakemake.output
swept = sweep_groups(source, records, references, [dict(g) for g in snakemake.params.groups],
                     snakemake.params.coarse_lrs, fine, compute, [str(x) for x in snakemake.params.step_layers])
for (group, coarse, fine_lrs, fine_rows), coarse_path, fine_path, grid_path in zip(
        swept, out.coarse, out.fine, out.fine_grid, strict=True):
    logging.info("%s: fine lr grids %s", group, fine_lrs)
    save_csv(coarse, coarse_path)
    save_csv(fine_rows, fine_path)
    save_json({"lrs_by_step_layer": fine_lrs, "settings": fine}, grid_path)
