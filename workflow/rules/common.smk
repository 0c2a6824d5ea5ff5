# Wildcard constraints, result paths and input functions shared by every rule module (the config is
# read and checked in the Snakefile).
# Everything imported here is torch-free (tests/test_architecture.py checks it): parsing stays fast.
import os
import re

from bnnprobe.codedeps import code_files, module_file
from bnnprobe.config import (
    mlp_probe_estimators,
    mlp_probe_instances,
    probe_estimators,
    reference_values,
)
from bnnprobe.estimators.registry import family_of
from bnnprobe.finetune.data import imagefolder_files
from bnnprobe.finetune.runs import resolve_runs
from bnnprobe.naming import (
    INSTANCE_REGEX,
    instance,
    reference_instance,
    settings_for,
    split_instance,
)
from bnnprobe.probes import PHASES, PROBES
from bnnprobe.training.schedule import (
    SLUG_PATTERN,
    grid_key,
    parse_schedule,
    schedule_from_slug,
    schedule_slug,
)

ESTIMATORS = mlp_probe_instances(config)  # one per (estimator, sigma or eps value)
DIMS = config["probe"]["dims"]
SEEDS = config["probe"]["seeds"]
# the records one MLP-probe gradient job writes (its output, and the specs read off it)
MLP_RECORD_AXES = {"dim": DIMS, "seed": SEEDS}
GRIDS = ["coarse", "fine"]
ENV = "../../envs/bnnprobe.yaml"


wildcard_constraints:
    estimator=INSTANCE_REGEX,
    dim=r"\d+",
    seed=r"\d+",
    dataset="cifar10|ucm|digits|imagefolder",
    split="train|val|test",
    width=r"\d+",
    run=r"w\d+_[^/]+",
    schedule=SLUG_PATTERN,


# ---- result paths: the intermediate files, each pattern written once ----------------------------
# Rules and input functions fill them with path(); the wildcards left unfilled stay wildcards.
PATHS = {
    "data": "results/data/{dataset}/tensors.pt",
    "probe_record": "results/probe/gradients/{estimator}/dim{dim}/seed{seed}.pt",
    "probe_sweep": "results/probe/sweeps/{grid}/{estimator}/dim{dim}.csv",
    "probe_fine_grid": "results/probe/fine_grids/{estimator}/dim{dim}.json",
    "pretrained": "results/finetune/pretrain/{dataset}/w{width}/seed{seed}/{file}",
    "finetuned": "results/finetune/xnor/{dataset}/{run}/seed{seed}/{file}",
    "layer_record": "results/layerprobe/gradients/{run}/{estimator}/seed{seed}.pt",
    "layer_sweep": "results/layerprobe/sweeps/{grid}/{run}/{estimator}.csv",
    "layer_fine_grid": "results/layerprobe/fine_grids/{run}/{estimator}.json",
    "training_run": "results/training/runs/{schedule}/dim{dim}/seed{seed}/{file}",
    "phase_record": "results/training/probe/gradients/{schedule}/{estimator}/dim{dim}/seed{seed}/{phase}.pt",
    "phase_sweep": "results/training/probe/sweeps/{grid}/{schedule}/{estimator}/dim{dim}/{phase}.csv",
    "phase_fine_grid": "results/training/probe/fine_grids/{schedule}/{estimator}/dim{dim}/{phase}.json",
    "tuning": "results/training/tuning/{estimator}.csv",
    "switch_points": "results/training/tuning/switch_points/{estimator}.pt",
    "switch_tuning": "results/training/tuning/switches/{schedule}.csv",
}


def path(name, **values):
    """PATHS[name] with ``values`` filled in, the other wildcards kept: a list of every combination
    when a value is a list, else one path."""
    paths = expand(PATHS[name], **values, allow_missing=True)
    return (
        paths
        if any(isinstance(v, (list, tuple)) for v in values.values())
        else paths[0]
    )


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


def family_code(name):
    """The bnnprobe files estimator ``name`` (or an instance name) runs: its family's module and its imports."""
    fam = family_of(split_instance(name)[0])
    return code_files(module_file(f"bnnprobe.estimators.{fam.module}"))


def estimator_code(
    script, probe=None, estimators=lambda wildcards: [wildcards.estimator]
):
    """``code(script, probe)`` plus the code of the estimator families the job runs: editing
    estimators/ste.py re-runs the STE jobs only."""

    def inputs(wildcards):
        own = {f for name in estimators(wildcards) for f in family_code(name)}
        return sorted(set(code(script, probe)) | {relative(f) for f in own})

    return inputs


def wants_gpu(names):
    """A GPU for a job that runs an estimator the registry marks as heavy, unless the study runs on the CPU."""
    heavy = any(family_of(split_instance(n)[0]).gpu for n in names)
    return 1 if heavy and config["compute"]["device"] != "cpu" else 0


def compute_params():
    c = config["compute"]
    return {k: c[k] for k in ("device", "dtype", "memory_budget_mb", "fused")}


def gpu_count(wildcards):
    return wants_gpu([wildcards.estimator])


def training_gpus(wildcards):
    return 0 if config["compute"]["device"] == "cpu" else 1


def budget_mb(problem="mlp"):
    """The memory budget a job of ``problem`` uses (bnnprobe.device.MEMORY_BUDGET_MB for auto):
    a job resolves auto by the device it gets, so ask for the larger case unless it is the CPU.
    """
    budget = config["compute"]["memory_budget_mb"]
    if budget == "auto":
        cpu = {"mlp": 16, "layer": 1024}[problem]
        return cpu if config["compute"]["device"] == "cpu" else max(cpu, 2048)
    return budget


# ---- the MLP probe ------------------------------------------------------------------------------
# what an MLP probe problem depends on besides its dim and seed
MLP_PROBLEM_KEYS = [
    "num_batches",
    "batch_size",
    "activation",
    "depth",
    "teacher_seed",
    "teacher",
    "init_scale",
]


# the cosine references of the MLP probe: CDG at its reference eps, the smoothed coordinate gradient at
# the swept estimator's own sigma where it is computed there, else at its reference sigma
REFERENCE_CDG = reference_instance("cdg", config)
SMOOTHED_SIGMAS = [float(v) for v in config["smoothed"]["sigma"]]


def smoothed_reference(wildcards):
    _, knob, value = split_instance(wildcards.estimator)
    sigma = (
        value if knob == "sigma" and value in SMOOTHED_SIGMAS else SMOOTHED_SIGMAS[0]
    )
    return path(
        "probe_record", estimator=instance("smoothed", sigma), dim=DIMS, seed=SEEDS
    )


# The spec functions take the wildcards only and list the job's outputs themselves: Snakemake leaves a
# param computed from `output` out of its params re-run trigger (it counts as derived from the files).
def mlp_specs(wildcards):
    """The problem spec of each record an MLP probe gradient job writes, read off its path."""
    p = config["probe"]
    specs = []
    for record in path(
        "probe_record", estimator=wildcards.estimator, **MLP_RECORD_AXES
    ):
        dim, seed = re.search(r"\bdim(\d+)/seed(\d+)\.pt$", record).groups()
        specs.append(
            {"dim": int(dim), "seed": int(seed), **{k: p[k] for k in MLP_PROBLEM_KEYS}}
        )
    return specs


def gradient_mem_mb(wildcards):
    dim = int(wildcards.dim) if "dim" in wildcards.keys() else max(DIMS)
    data_mb = 3 * config["probe"]["batch_size"] * dim * 8 / 2**20
    return int(budget_mb() * 1.5 + data_mb + 1024)


def layer_mem_mb(wildcards):
    return int(budget_mb("layer") * 1.5 + 3000)


def sweep_mem_mb(wildcards):
    data_mb = 3 * config["probe"]["batch_size"] * max(DIMS) * 8 / 2**20
    return int(budget_mb() * 1.5 + data_mb + 1024)


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


# ---- finetunes and the layer probe ----------------------------------------------------------------
FINETUNE_RUNS = {run["id"]: run for run in resolve_runs(config["finetune"])}
FT_DATASET = config["finetune"]["dataset"]
FT_DATA = path("data", dataset=FT_DATASET)
LAYER_SEEDS = config["layerprobe"]["seeds"]
LAYER_RECORD_AXES = {"run": list(FINETUNE_RUNS), "seed": LAYER_SEEDS}
LAYER_ESTIMATORS = probe_estimators({"estimators": config["layerprobe"]["estimators"]})


def pretrained_model(wildcards):
    width = FINETUNE_RUNS[wildcards.run]["width"]
    return path(
        "pretrained",
        dataset=wildcards.dataset,
        width=width,
        seed=wildcards.seed,
        file="model.pt",
    )


def finetuned_model(run):
    """The layer probe reads the XNOR finetune of the first finetune seed."""
    seed = config["finetune"]["seeds"][0]
    return path("finetuned", dataset=FT_DATASET, run=run, seed=seed, file="model.pt")


def layer_specs(wildcards):
    """The problem spec of each record a layer-probe gradient job writes, read off its path."""
    probe = config["layerprobe"]
    specs = []
    for record in path(
        "layer_record", estimator=wildcards.estimator, **LAYER_RECORD_AXES
    ):
        run, seed = re.search(
            r"\bgradients/([^/]+)/[^/]+/seed(\d+)\.pt$", record
        ).groups()
        specs.append(
            {
                "run_id": run,
                "width": FINETUNE_RUNS[run]["width"],
                "model": finetuned_model(run),
                "data": FT_DATA,
                "layer": probe["layer"],
                "k": probe["k"],
                "batch_size": probe["batch_size"],
                "num_batches": probe["num_batches"],
                "seed": int(seed),
            }
        )
    return specs


# ---- the study along training ---------------------------------------------------------------------
TRAINING = config["training"]
TRAINING_RUN_AXES = {"dim": TRAINING["dims"], "seed": TRAINING["seeds"]}
TRAINING_SLUGS = [schedule_slug(s) for s in TRAINING["schedules"]]
TUNED = TRAINING["lr"] == "auto"
SCHEDULES = {text: parse_schedule(text) for text in TRAINING["schedules"]}
SWITCHES = {text: s for text, s in SCHEDULES.items() if s.switches}
# tuned from the initialisation: every estimator a run starts with, and every estimator run alone
TRAINING_ESTIMATORS = list(dict.fromkeys(s.first for s in SCHEDULES.values()))
# trained on the tuning seeds to their convergence: the first estimators of the switches (their second
# estimators are tuned from there)
SWITCH_FIRSTS = list(dict.fromkeys(s.first for s in SWITCHES.values()))
TUNING_TABLES = (
    [path("tuning", estimator=name) for name in TRAINING_ESTIMATORS]
    + [path("switch_tuning", schedule=schedule_slug(text)) for text in SWITCHES]
    if TUNED
    else []
)
PRECISION_SLUGS = [schedule_slug(s) for s in TRAINING["precision"]["schedules"]]
# the first estimators of the switches, alone: after their convergence they go on with the decay budget the
# switch's second estimator gets (the control "A alone, continued")
CONTINUED = set(SWITCH_FIRSTS)
PROBED_SCHEDULES = list(TRAINING["probe"]["schedules"])
TRAINING_LR_FIGURE = (
    {
        "lr": report(
            "results/figures/training/lr_tuning.png",
            caption="../report/training.rst",
            category="Along training",
        )
    }
    if TUNED
    else {}
)


def schedule_estimators(wildcards):
    return SCHEDULES[schedule_from_slug(wildcards.schedule)].estimators


def schedule_tuning(wildcards):
    """The lr tuning tables a schedule's runs read (none with a fixed lr): its first estimator's, and for a
    switch its second estimator's at the switch point."""
    text = schedule_from_slug(wildcards.schedule)
    if not TUNED:
        return []
    tables = [path("tuning", estimator=SCHEDULES[text].first)]
    if SCHEDULES[text].switches:
        tables.append(path("switch_tuning", schedule=wildcards.schedule))
    return tables


def training_settings(wildcards):
    return {name: settings_for(name, config) for name in schedule_estimators(wildcards)}


def training_compute():
    """The probes' compute section with the training study's own dtype."""
    return {**compute_params(), "dtype": TRAINING["dtype"]}


def training_problem():
    """What a training run's MLP problem depends on besides its dim and seed."""
    p = config["probe"]
    return {
        "batch_size": TRAINING["batch_size"],
        **{
            k: p[k]
            for k in ("activation", "depth", "teacher_seed", "teacher", "init_scale")
        },
    }


def tuning_budget():
    """What a tuning run depends on besides its estimator, lr and start."""
    t = TRAINING
    return {
        "steps": t["tuning"]["steps"],
        "eval_every": t["eval_every"],
        "smooth": t["plateau"]["smooth"],
        "val_batch_size": t["val_batch_size"],
        "optimizer": t["optimizer"],
    }


def tuning_grid(wildcards):
    name = (
        wildcards.estimator
        if "estimator" in wildcards.keys()
        else SCHEDULES[schedule_from_slug(wildcards.schedule)].then
    )
    return TRAINING["tuning"]["grid"][grid_key(name, TRAINING["optimizer"])]


def protocol():
    """The training protocol every run follows (a TrainingSpec's fields besides problem, schedule, lrs)."""
    t = TRAINING
    return {
        "steps": t["steps"],
        "val_batch_size": t["val_batch_size"],
        "eval_every": t["eval_every"],
        "optimizer": t["optimizer"],
        "patience": t["plateau"]["patience"],
        "rel_tol": t["plateau"]["rel_tol"],
        "smooth": t["plateau"]["smooth"],
        "decay_factor": t["decay"]["factor"],
        "reductions": t["decay"]["reductions"],
        "stationarity_batches": t["stationarity"]["batches"],
    }


def training_spec(schedule, dim, seed):
    """A training run's spec (bnnprobe.training.trainer.TrainingSpec without its lrs)."""
    switches = SCHEDULES[schedule].switches
    return {
        "problem": {"dim": dim, "seed": seed, "num_batches": 1, **training_problem()},
        "schedule": schedule,
        **protocol(),
        "switch": TRAINING["switch"] if switches else "converged",
        "extra_reductions": (
            TRAINING["decay"]["reductions"] if schedule in CONTINUED else 0
        ),
        "keep_trajectory": schedule in PROBED_SCHEDULES,
    }


def training_specs(wildcards):
    """The spec of each run a training job writes, in the order of its outputs (every dim, then seed)."""
    schedule = schedule_from_slug(wildcards.schedule)
    return [
        training_spec(schedule, dim, seed)
        for dim in TRAINING["dims"]
        for seed in TRAINING["seeds"]
    ]


def precision_specs(wildcards):
    """The runs a precision job trains twice: the first seed at each precision dim, at the tuned lr for a
    fixed number of steps (no decay: both precisions take the same steps)."""
    schedule = schedule_from_slug(wildcards.schedule)
    seed = TRAINING["seeds"][0]
    steps = TRAINING["precision"]["steps"] or TRAINING["steps"]
    return [
        {
            **training_spec(schedule, dim, seed),
            "steps": steps,
            "stops": False,
            "keep_trajectory": False,
            "stationarity_batches": 0,
        }
        for dim in TRAINING["precision"]["dims"]
    ]


def training_run_gpus(wildcards):
    return wants_gpu(schedule_estimators(wildcards))


def training_mem_mb(wildcards):
    data_mb = 3 * TRAINING["val_batch_size"] * max(TRAINING["dims"]) * 8 / 2**20
    return int(budget_mb() * 1.5 + data_mb + 1024)


# ---- the one-step probe along training ------------------------------------------------------------
PHASE_SLUGS = [schedule_slug(s) for s in TRAINING["probe"]["schedules"]]
# CDG and the smoothed coordinate gradient (at its reference sigma) are the cosine references here too
PHASE_ESTIMATORS = mlp_probe_estimators({"estimators": TRAINING["probe"]["estimators"]})
PROBED_PHASES = list(PHASES)
PHASE_RECORD_AXES = {**TRAINING_RUN_AXES, "phase": PROBED_PHASES}


def phase_specs(wildcards):
    """The spec of each record the job writes, read off its path (.../dim<d>/seed<s>/<phase>.pt)."""
    p = config["probe"]
    specs = []
    records = path(
        "phase_record",
        schedule=wildcards.schedule,
        estimator=wildcards.estimator,
        **PHASE_RECORD_AXES,
    )
    for record in records:
        dim, seed, phase = re.search(
            r"\bdim(\d+)/seed(\d+)/(\w+)\.pt$", record
        ).groups()
        specs.append(
            {
                "dim": int(dim),
                "seed": int(seed),
                **{k: p[k] for k in MLP_PROBLEM_KEYS},
                "num_batches": TRAINING["probe"]["num_batches"] or p["num_batches"],
                "schedule": schedule_from_slug(wildcards.schedule),
                "phase": phase,
                "snapshots": path(
                    "training_run",
                    schedule=wildcards.schedule,
                    dim=dim,
                    seed=seed,
                    file="snapshots.pt",
                ),
            }
        )
    return specs


def phase_groups(wildcards, output):
    """The group of each sweep output, read off its path (.../dim<d>/<phase>.csv)."""
    return [
        {"dim": int(dim), "phase": phase}
        for dim, phase in (
            re.search(r"\bdim(\d+)/(\w+)\.csv$", sweep).groups()
            for sweep in output.coarse
        )
    ]
