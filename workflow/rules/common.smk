# Config validation, wildcard constraints, input functions shared by every rule module.
from bnnprobe.config import ConfigError, probe_estimators, validate_config
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


def library(*modules):
    """Absolute paths of src/bnnprobe modules: rules list the code they run so that edits re-run them."""
    return [str(REPO / "src" / "bnnprobe" / m) for m in modules]


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
    return int(config["compute"]["memory_budget_mb"] * 1.5 + data_mb + 1024)


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
