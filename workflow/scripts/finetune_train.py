"""Full-precision pretrain (no 'pretrained' input) or XNOR finetune of one run; resumes from its checkpoint."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from pathlib import Path  # noqa: E402

from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.finetune.pipeline import finetune_xnor, pretrain, settings_from  # noqa: E402
from bnnprobe.io import load_torch, save_csv, save_torch  # noqa: E402

device = Compute.from_config(snakemake.params.compute, threads=snakemake.threads).device
data = load_torch(snakemake.input.data)
settings = settings_from(dict(snakemake.params.settings), int(snakemake.wildcards.seed))
# the checkpoint is not an output: Snakemake keeps it when the job dies, and the re-run resumes
checkpoint = Path(snakemake.output.model).with_name("checkpoint.pt")
if "pretrained" in snakemake.input.keys():
    width = int(snakemake.params.settings["width"])
    state, metrics = finetune_xnor(data, width, load_torch(snakemake.input.pretrained), settings, checkpoint, device)
else:
    state, metrics = pretrain(data, int(snakemake.wildcards.width), settings, checkpoint, device)
save_torch({k: v.cpu() for k, v in state.items()}, snakemake.output.model)
save_csv(metrics, snakemake.output.metrics)
checkpoint.unlink()  # it duplicates model.pt plus optimiser state: large at width 256
