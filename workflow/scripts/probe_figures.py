"""The probe study's figures over all dims, from its tables (the lr curves of each dim: probe_lr_curves.py):
the main ones at the reference sigma/eps, one step per layer, and the sigma/eps axes."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

from bnnprobe.analysis import figures  # noqa: E402
from bnnprobe.analysis.tables import load_table, main_rows  # noqa: E402
from bnnprobe.io import save_figure  # noqa: E402

runs = load_table(snakemake.input.runs)
summary = load_table(snakemake.input.summary)
best = load_table(snakemake.input.best)
panels = list(snakemake.params.panels)
out = snakemake.output

# the main figures: every estimator at its reference sigma/eps, steps of all coordinates
save_figure(figures.quick_check(main_rows(summary), panels, snakemake.params.quick_check_lr), out.quick_check)
save_figure(figures.best_vs_dim(main_rows(best)), out.best_vs_dim)
save_figure(figures.cosine_vs_dim(main_rows(runs)), out.cosine_vs_dim)
save_figure(figures.best_per_layer(best), out.best_per_layer)
save_figure(figures.sigma_eps(best, runs), out.sigma_eps)
