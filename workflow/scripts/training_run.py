"""Train the student of one (schedule, dim) for every seed: curves and weight snapshots; resumes from a checkpoint."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from pathlib import Path  # noqa: E402

from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.io import save_csv, save_torch  # noqa: E402
from bnnprobe.training.trainer import TrainingSpec, train_student  # noqa: E402

compute = Compute.from_config(snakemake.params.compute, threads=snakemake.threads)
settings = {name: dict(values) for name, values in snakemake.params.settings.items()}
for spec_dict, curve_path, snapshot_path in zip(snakemake.params.specs, snakemake.output.curves,
                                                snakemake.output.snapshots, strict=True):
    spec = TrainingSpec(**{**spec_dict, "probe_fractions": tuple(spec_dict["probe_fractions"])})
    # the checkpoint is not an output: Snakemake keeps it when the job dies, and the re-run resumes
    checkpoint = Path(curve_path).with_name("checkpoint.pt")
    result = train_student(spec, settings, checkpoint, compute)
    save_torch({"spec": spec.as_dict(), "snapshots": result.snapshots, "switch_step": result.switch_step,
                "plateau_step": result.plateau_step}, snapshot_path)
    curve = result.curve.assign(schedule=spec.schedule, dim=spec.dim, seed=spec.seed, switch_step=result.switch_step)
    save_csv(curve, curve_path)
    checkpoint.unlink()
