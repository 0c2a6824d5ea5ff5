"""Train the student of one schedule at every dim and seed (curves and weight snapshots; resumes from a
checkpoint), or (a precision job) its first seed in float32 and in float64."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.io import load_torch, save_csv, save_torch  # noqa: E402
from bnnprobe.plan import TrainingJob  # noqa: E402
from bnnprobe.training.run import learning_rates, machine_name, precision_rows, run_record  # noqa: E402
from bnnprobe.training.trainer import StudentTrainer, TrainingSpec  # noqa: E402

job = TrainingJob(**snakemake.params.job)
compute = Compute.from_config(job.compute, threads=snakemake.threads)
settings = {name: dict(values) for name, values in job.settings.items()}
if job.table:  # the precision check
    rows = [precision_rows({**spec, "lrs": learning_rates(job.estimators, spec["problem"]["dim"], job.lr, job.tuning)},
                           settings, job.compute, snakemake.threads) for spec in job.specs]
    save_csv(pd.DataFrame(rows), job.table)
specs = job.specs if not job.table else []
for spec_dict, curve_path, snapshot_path, handoff_path in zip(specs, job.curves, job.snapshots,
                                                              job.handoffs or [None] * len(specs), strict=True):
    lrs = learning_rates(job.estimators, spec_dict["problem"]["dim"], job.lr, job.tuning)
    spec = TrainingSpec.from_dict({**spec_dict, "lrs": lrs})
    # the checkpoint is not an output: Snakemake keeps it when the job dies, and the re-run resumes
    checkpoint = Path(curve_path).with_name("checkpoint.pt")
    trainer = StudentTrainer(spec, settings, compute)
    # a first estimator's run that never converged hands nothing over: the switch then trains from the start
    result = trainer.run(checkpoint, load_torch(handoff_path).get("handoff") if handoff_path else None)
    curve, snapshots = run_record(spec, result, trainer.validation_noise(), machine_name(compute.device))
    save_torch(snapshots, snapshot_path)
    save_csv(curve, curve_path)
    checkpoint.unlink(missing_ok=True)  # none was written when the run took over at its last evaluation
