# bnnprobe: how good are the gradients used to train binary neural networks?
#
#   snakemake --cores 2                                            # the paper preset (config.yaml)
#   snakemake --cores 2 --configfile workflow/presets/quick.yaml   # laptop scale
#
# The science lives in src/bnnprobe; rules and scripts only wire files to it.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("8.0")

REPO = Path(workflow.basedir)
# The rule modules import bnnprobe from this checkout (scripts do the same for themselves).
sys.path.insert(0, str(REPO / "src"))


configfile: str(REPO / "config.yaml")


# One code path reads, merges and checks the config (python -m bnnprobe.config uses it too): Snakemake's
# own YAML reading names no line and keeps the last of a key written twice, and it leaves nested --config
# values as strings.
from bnnprobe.config import ConfigError, assemble_config

try:
    checked = assemble_config(
        [REPO / "config.yaml", *workflow.overwrite_configfiles],
        workflow.config_settings.config,
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None
config.clear()
config.update(checked)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/layerprobe.smk"
include: "workflow/rules/training.smk"


# Rules marked localrule (tables, figures, findings, downloads, targets) take seconds or need the
# network: they run on the submitting host, not as cluster jobs.
# Every study: the MLP probe, the finetunes, the layer probe and the study along training.
rule all:
    default_target: True
    input:
        rules.probe.input,
        rules.finetune.input,
        rules.layerprobe.input,
        rules.training.input,
    localrule: True
