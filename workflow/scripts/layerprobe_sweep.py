"""Loss decreases of one (run, estimator) on its probed layer, all seeds: coarse grid, then the fine grid."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import torch  # noqa: E402

from bnnprobe.io import load_torch, save_csv, save_json  # noqa: E402
from bnnprobe.layerprobe import layer_sweep_one, load_xnor  # noqa: E402
from bnnprobe.sweep import sweep_coarse_and_fine  # noqa: E402

torch.set_num_threads(snakemake.threads)
data = load_torch(snakemake.input.data)
model = load_xnor(snakemake.input.model, data, int(snakemake.params.width))
records = [load_torch(p) for p in snakemake.input.gradients]
cdg_records = [load_torch(p) for p in snakemake.input.cdg]
coarse, fine_lrs, fine = sweep_coarse_and_fine(records, cdg_records, snakemake.params.coarse_lrs,
                                               dict(snakemake.params.fine), sweep_one=layer_sweep_one(model, data))
save_csv(coarse, snakemake.output.coarse)
save_csv(fine, snakemake.output.fine)
save_json({"lrs": fine_lrs, "settings": dict(snakemake.params.fine)}, snakemake.output.fine_grid)
