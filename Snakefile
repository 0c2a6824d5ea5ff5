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


# Snakemake's own YAML error names no line and keeps the last of a key written twice: read every
# config file once ourselves first.
from bnnprobe.config import ConfigError, read_config_file

try:
    for path in [REPO / "config.yaml", *workflow.overwrite_configfiles]:
        read_config_file(path)
except ConfigError as error:
    raise WorkflowError(str(error)) from None


configfile: str(REPO / "config.yaml")


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
