"""Convert one data set into its compact tensor cache (uint8 images, int64 labels)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from bnnprobe.finetune.data import build_cache  # noqa: E402
from bnnprobe.io import save_torch  # noqa: E402

inputs = snakemake.input
splits = None
if "splits" in inputs.keys():
    splits = dict(zip(snakemake.params.split_names, inputs.splits, strict=True))
archive = inputs.archive if "archive" in inputs.keys() else None
cache = build_cache(snakemake.wildcards.dataset, dict(snakemake.params.settings), archive, splits)
save_torch(cache, snakemake.output.tensors)
