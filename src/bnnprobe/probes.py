"""The probes the study layer knows, and the columns their rows carry (torch-free: the Snakefile
and the table jobs read it; each probe's source, :mod:`bnnprobe.mlp.source` and
:mod:`bnnprobe.layerprobe.source`, takes its columns from here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeColumns:
    source: str  # the module whose SOURCE builds this probe's problems
    key_columns: tuple[str, ...]  # what a row is about, besides estimator, batch and lr
    group_columns: tuple[str, ...]  # what a summary row (and a fine lr grid) is per, besides estimator
    # the independent unit of a summary's statistics: each seed, its batches averaged first (a seed's
    # batches share its student, and the layer probe's its coordinate sample: they are not independent)
    ci_unit: tuple[str, ...] = ("seed",)

    @property
    def run_columns(self) -> list[str]:
        return [*ESTIMATOR_COLUMNS, *self.key_columns, *ROW_COLUMNS]

    @property
    def row_key(self) -> list[str]:
        """The columns that identify a row of the runs table."""
        return [*ESTIMATOR_COLUMNS, *self.key_columns, "batch", "lr"]

    @property
    def summary_by(self) -> list[str]:
        return [*ESTIMATOR_COLUMNS, *self.group_columns]


# what a row's gradient and step are: the estimator, its knob value (sigma, or CDG's eps; empty where it
# has none) and the coordinates the step moves ("all", or one layer: "1" is the first)
ESTIMATOR_COLUMNS = ["estimator", "sigma", "eps", "step_layer"]
# columns every sweep row has besides the probe's key columns. The cosines are over the stepped
# coordinates; cos_to_smoothed compares with the exact smoothed coordinate gradient at smoothed_sigma
# (the row's own sigma where the smoothed gradient was computed at it, else the reference one).
ROW_COLUMNS = ["batch", "lr", "grid", "loss_before", "loss_after", "loss_decrease", "grad_norm", "cos_to_cdg",
               "cos_to_smoothed", "smoothed_sigma", "seconds", "n_loss_evals"]
ALL_COORDINATES = "all"

PROBES = {
    "mlp": ProbeColumns("bnnprobe.mlp.source", key_columns=("dim", "seed"), group_columns=("dim",)),
    "layer": ProbeColumns("bnnprobe.layerprobe.source", key_columns=("run_id", "layer", "k", "seed"),
                          group_columns=("run_id", "layer", "k")),
    # the MLP probe at snapshots of a training run (phase init: the MLP probe's own problem)
    "phase": ProbeColumns("bnnprobe.training.source", key_columns=("schedule", "phase", "step", "dim", "seed"),
                          group_columns=("schedule", "phase", "dim")),
}

# the probe along training's phases, in training order: fractions of each run's own converged step
PHASES = {"init": 0.0, "f25": 0.25, "f50": 0.5, "f75": 0.75, "converged": 1.0}
