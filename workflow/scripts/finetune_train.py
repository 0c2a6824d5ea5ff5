"""Full-precision pretrain (a job without ``pretrained``) or XNOR finetune of one run; resumes from its checkpoint."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from pathlib import Path  # noqa: E402

from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.finetune.pipeline import finetune_xnor, pretrain, settings_from  # noqa: E402
from bnnprobe.io import load_torch, save_csv, save_torch  # noqa: E402
from bnnprobe.plan import FinetuneJob  # noqa: E402

job = FinetuneJob(**snakemake.params.job)
device = Compute.from_config(job.compute, threads=snakemake.threads).device
data = load_torch(job.data)
settings = settings_from(dict(job.settings), job.seed)
# the checkpoint is not an output: Snakemake keeps it when the job dies, and the re-run resumes
checkpoint = Path(job.model).with_name("checkpoint.pt")
if job.pretrained:
    state, metrics = finetune_xnor(data, job.width, load_torch(job.pretrained), settings, checkpoint, device)
else:
    state, metrics = pretrain(data, job.width, settings, checkpoint, device)
save_torch({k: v.cpu() for k, v in state.items()}, job.model)
save_csv(metrics, job.metrics)
checkpoint.unlink()  # it duplicates model.pt plus optimiser state: large at width 256
