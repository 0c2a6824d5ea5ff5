# The plan of every job (bnnprobe.plan, built once from the config checked in the Snakefile), wildcard
# constraints, and what the rules ask of it: paths to expand, code to track, resources.
# Everything imported here is torch-free (tests/test_architecture.py checks it): parsing stays fast.
import os
import re

from bnnprobe.codedeps import code_files, module_file
from bnnprobe.estimators.registry import FAMILIES
from bnnprobe.finetune.data import imagefolder_files
from bnnprobe.plan import GRIDS, PATHS, Plan, job_mem_mb
from bnnprobe.probes import PHASES, PROBES

PLAN = Plan.from_config(config)
ENV = "../../envs/bnnprobe.yaml"


def alternatives(values):
    """A wildcard constraint that matches exactly ``values``."""
    return "|".join(re.escape(str(v)) for v in sorted(set(values), key=str)) or "(?!)"


MLP_INSTANCES = [i.label for i in PLAN.mlp_instances]
DIMS = config["probe"]["dims"]
SEEDS = config["probe"]["seeds"]
MLP_RECORD_AXES = {"dim": DIMS, "seed": SEEDS}


wildcard_constraints:
    estimator=alternatives(
        [key[-1] if isinstance(key, tuple) else key for _, key in PLAN.gradients]
        + [*PLAN.tuning, *PLAN.switch_points]
    ),
    dim=r"\d+",
    seed=r"\d+",
    dataset="cifar10|ucm|digits|imagefolder",
    split="train|val|test",
    width=r"\d+",
    run=r"w\d+_[^/]+",
    schedule=alternatives([*PLAN.schedules, *PLAN.switch_tuning]) or "(?!)",
    phase=alternatives(PHASES),


def path(name, **values):
    """PATHS[name] with ``values`` filled in, the other wildcards kept: a list of every combination
    when a value is a list, else one path."""
    paths = expand(PATHS[name], **values, allow_missing=True)
    return (
        paths
        if any(isinstance(v, (list, tuple)) for v in values.values())
        else paths[0]
    )


def job_of(table, *names):
    """An input or params function: the job of ``table`` at the wildcards ``names``, as a dict."""

    def lookup(wildcards):
        key = tuple(wildcards[n] for n in names)
        return table[key if len(key) > 1 else key[0]].as_dict()

    return lookup


# ---- code tracking (derived from each script's imports, never listed by hand) ------------------
def relative(path):
    """Paths relative to the working directory: a moved checkout keeps its results."""
    return os.path.relpath(path)


def code(script, probe=None):
    """The bnnprobe files ``script`` runs (with the probe's source, which it imports by name).
    Estimator families are imported by name when they run: estimator_code adds each job's own.
    """
    dynamic = [PROBES[probe].source] if probe else []
    files = code_files(REPO / "workflow" / "scripts" / script, dynamic=dynamic)
    return [relative(f) for f in files]


def family_code(family):
    """The bnnprobe files estimator family ``family`` runs: its module and its imports."""
    return code_files(module_file(f"bnnprobe.estimators.{FAMILIES[family].module}"))


def estimator_code(script, families, probe=None):
    """``code(script, probe)`` plus the code of the estimator families the job runs (``families``:
    wildcards -> family names): editing estimators/ste.py re-runs the STE jobs only."""

    def inputs(wildcards):
        own = {f for family in families(wildcards) for f in family_code(family)}
        return sorted(set(code(script, probe)) | {relative(f) for f in own})

    return inputs


# ---- resources ----------------------------------------------------------------------------------
def gpu(table, *names):
    def count(wildcards):
        key = tuple(wildcards[n] for n in names)
        return int(table[key if len(key) > 1 else key[0]].gpu)

    return count


def training_gpus(wildcards):
    return 0 if config["compute"]["device"] == "cpu" else 1


def mlp_mem_mb(wildcards):
    return job_mem_mb(config, "probe")


def layer_mem_mb(wildcards):
    return job_mem_mb(config, "layerprobe")


# ---- data ---------------------------------------------------------------------------------------
UCM_SPLITS = ["train", "val", "test"]


def ucm_offline_split(wildcards):
    folder = config["data"]["ucm"]["splits_dir"]
    return str(Path(folder) / f"uc_merced-{wildcards.split}.txt") if folder else None


def data_cache_inputs(wildcards):
    inputs = {}
    if wildcards.dataset == "imagefolder" and config["data"]["imagefolder"]["root"]:
        # every image is an input: adding, removing or editing one remakes the cache
        inputs["images"] = [
            str(p) for p in imagefolder_files(config["data"]["imagefolder"]["root"])
        ]
    if wildcards.dataset == "cifar10":
        inputs["archive"] = "results/data/cifar10/cifar-10-python.tar.gz"
    elif wildcards.dataset == "ucm":
        inputs["archive"] = "results/data/ucm/UCMerced_LandUse.zip"
        inputs["splits"] = [
            f"results/data/ucm/uc_merced-{split}.txt" for split in UCM_SPLITS
        ]
    return inputs


def data_cache_settings(dataset):
    """What a cache depends on beyond its input files (URLs and md5s act through the archives)."""
    settings = dict(config["data"][dataset])
    for key in ("url", "md5", "archive", "splits_url", "splits_md5", "splits_dir"):
        settings.pop(key, None)
    return settings


# ---- finetunes and the layer probe ----------------------------------------------------------------
FINETUNE_RUNS = PLAN.finetune_runs
FT_DATASET = config["finetune"]["dataset"]
FT_DATA = path("data", dataset=FT_DATASET)
LAYER_INSTANCES = [i.label for i in PLAN.layer_instances]
LAYER_RECORD_AXES = {
    "run": list(FINETUNE_RUNS),
    "seed": config["layerprobe"]["seeds"],
}


# ---- the study along training ---------------------------------------------------------------------
TRAINING = config["training"]
TRAINING_RUN_AXES = {"dim": TRAINING["dims"], "seed": TRAINING["seeds"]}
TRAINING_SLUGS = list(PLAN.training)
PRECISION_SLUGS = list(PLAN.precision)
TUNING_TABLES = [
    job.table for job in [*PLAN.tuning.values(), *PLAN.switch_tuning.values()]
]
TRAINING_LR_FIGURE = (
    {
        "lr": report(
            "results/figures/training/lr_tuning.png",
            caption="../report/training.rst",
            category="Along training",
        )
    }
    if TUNING_TABLES
    else {}
)


def job_families(table, *names):
    """The estimator families the job of ``table`` at the wildcards ``names`` runs."""

    def families(wildcards):
        key = tuple(wildcards[n] for n in names)
        job = table[key if len(key) > 1 else key[0]]
        return job.families if hasattr(job, "families") else [job.family]

    return families


def training_mem_mb(wildcards):
    return job_mem_mb(config, "training")


# ---- the one-step probe along training ------------------------------------------------------------
PHASE_SLUGS = [
    slug
    for slug, schedule in PLAN.schedules.items()
    if schedule.name in TRAINING["probe"]["schedules"]
]
PHASE_INSTANCES = [i.label for i in PLAN.phase_instances]
PHASE_RECORD_AXES = {**TRAINING_RUN_AXES, "phase": list(PHASES)}
