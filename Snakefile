# bnnprobe: how good are the gradients used to train binary neural networks?
#
#   snakemake --cores 2                                            # the paper preset (config.yaml)
#   snakemake --cores 2 --configfile workflow/presets/quick.yaml   # laptop scale
#
# The science lives in src/bnnprobe; rules and scripts only wire files to it.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("8.0")

REPO = Path(workflow.basedir)
# Scripts import bnnprobe from this checkout, also inside conda envs and cluster jobs.
sys.path.insert(0, str(REPO / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in [str(REPO / "src"), os.environ.get("PYTHONPATH", "")] if p
)


configfile: str(REPO / "config.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        rules.probe_tables.output,
        rules.probe_figures.output,
    default_target: True
