# Config validation, wildcard constraints, input functions shared by every rule module.
import os

from bnnprobe.config import ConfigError, probe_estimators, validate_config
from bnnprobe.data import imagefolder_files
from bnnprobe.finetune import resolve_runs
from bnnprobe.naming import FAMILY_MODULES, NAME_PATTERN, family, settings_for

try:
    validate_config(config, REPO / "workflow" / "schemas" / "config.schema.yaml")
except ConfigError as error:
    raise WorkflowError(str(error)) from None

ESTIMATORS = probe_estimators(config)
DIMS = config["probe"]["dims"]
SEEDS = config["probe"]["seeds"]
GRIDS = ["coarse", "fine"]


wildcard_constraints:
    estimator=NAME_PATTERN.pattern.strip("^$"),
    dim=r"\d+",
    seed=r"\d+",
    dataset="cifar10|ucm|digits|imagefolder",
    split="train|val|test",
    width=r"\d+",
    run=r"w\d+_[^/]+",


def library(*modules):
    """src/bnnprobe modules, relative to the working directory: rules list the code they run so that
    edits re-run them, and relative paths keep a moved checkout from re-running everything.
    """
    return [os.path.relpath(REPO / "src" / "bnnprobe" / m) for m in modules]


PROBLEM_CODE = library(
    "problem.py",
    "seeding.py",
    "binary.py",
    "mlp.py",
    "study.py",
    "naming.py",
    "estimators/__init__.py",
)


def gradient_code(wildcards):
    return PROBLEM_CODE + library(*FAMILY_MODULES[family(wildcards.estimator)])


def problem_params():
    """What the probe problem depends on (dim and seed come from the path)."""
    keys = [
        "num_batches",
        "batch_size",
        "activation",
        "depth",
        "teacher_seed",
        "init_scale",
    ]
    return {k: config["probe"][k] for k in keys}


def compute_params():
    c = config["compute"]
    return {
        "device": c["device"],
        "dtype": c["dtype"],
        "memory_budget_mb": c["memory_budget_mb"],
    }


def gpu_count(wildcards):
    """Stochastic estimators are the heavy jobs; they take a GPU unless the study runs on the CPU."""
    heavy = family(wildcards.estimator) in ("nes", "guided-es")
    return 1 if heavy and config["compute"]["device"] != "cpu" else 0


def gradient_mem_mb(wildcards):
    p = config["probe"]
    data_mb = 3 * p["batch_size"] * int(wildcards.dim) * 8 / 2**20
    budget = config["compute"]["memory_budget_mb"]
    if (
        budget == "auto"
    ):  # the job resolves it by the device it gets; ask for the larger case
        budget = 16 if config["compute"]["device"] == "cpu" else 2048
    return int(budget * 1.5 + data_mb + 1024)


def sweep_inputs(wildcards):
    seeds = {"seed": SEEDS, "dim": wildcards.dim}
    return {
        "gradients": expand(
            "results/probe/gradients/{estimator}/dim{dim}/seed{seed}.pt",
            estimator=wildcards.estimator,
            **seeds,
        ),
        "cdg": expand("results/probe/gradients/cdg/dim{dim}/seed{seed}.pt", **seeds),
        "code": library("sweep.py", "lrgrid.py", "tables.py") + PROBLEM_CODE,
    }


UCM_SPLITS = ["train", "val", "test"]


def ucm_offline_split(wildcards):
    folder = config["data"]["ucm"]["splits_dir"]
    return str(Path(folder) / f"uc_merced-{wildcards.split}.txt") if folder else None


def data_cache_inputs(wildcards):
    inputs = {"code": library("data.py")}
    if wildcards.dataset == "imagefolder" and config["data"]["imagefolder"]["root"]:
        # every image is an input: adding, removing or editing one remakes the cache
        inputs["images"] = [
            str(p) for p in imagefolder_files(config["data"]["imagefolder"]["root"])
        ]
    if wildcards.dataset == "cifar10":
        inputs["archive"] = "results/data/cifar10/cifar-10-python.tar.gz"
    elif wildcards.dataset == "ucm":
        inputs["archive"] = "results/data/ucm/UCMerced_LandUse.zip"
        inputs["splits"] = expand(
            "results/data/ucm/uc_merced-{split}.txt", split=UCM_SPLITS
        )
    return inputs


def data_cache_settings(dataset):
    """What a cache depends on beyond its input files (URLs and md5s act through the archives)."""
    settings = dict(config["data"][dataset])
    for key in ("url", "md5", "archive", "splits_url", "splits_md5", "splits_dir"):
        settings.pop(key, None)
    return settings


FINETUNE_RUNS = {run["id"]: run for run in resolve_runs(config["finetune"])}
TRAIN_CODE = library(
    "binary.py",
    "resnet.py",
    "train.py",
    "finetune.py",
    "data.py",
    "io.py",
    "seeding.py",
)


def pretrained_model(wildcards):
    width = FINETUNE_RUNS[wildcards.run]["width"]
    return f"results/finetune/pretrain/{wildcards.dataset}/w{width}/seed{wildcards.seed}/model.pt"


def training_gpus(wildcards):
    return 0 if config["compute"]["device"] == "cpu" else 1


FT_DATASET = config["finetune"]["dataset"]
LAYER_SEEDS = config["layerprobe"]["seeds"]
LAYER_ESTIMATORS = probe_estimators({"estimators": config["layerprobe"]["estimators"]})


def finetuned_model(wildcards):
    """The layer probe reads the XNOR finetune of the first finetune seed."""
    seed = config["finetune"]["seeds"][0]
    return f"results/finetune/xnor/{FT_DATASET}/{wildcards.run}/seed{seed}/model.pt"
