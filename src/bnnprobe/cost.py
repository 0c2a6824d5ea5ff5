"""What a config costs, before it runs: ``python -m bnnprobe.cost --configfile config.yaml``.

For each stage it counts the jobs and the work their definitions imply (loss evaluations of the
MLP, exact-CDG passes, training steps, images through a ResNet), multiplies them by rates measured
on this machine in a few seconds (:func:`measure_rates`), adds each job's start-up (a Python process
that imports torch), and prints job counts and projected hours per stage. ``--measured
results/benchmarks`` puts the job seconds of a finished run (Snakemake's benchmark files) beside the
projection, stage by stage.

The model, and where it is crude:
* MLP work is affine in the batch: a fixed cost plus seconds per sample at each dim, fitted to
  timings at 512 and ``min(batch, 8192)`` samples. A stacked loss evaluation (the lr sweeps) is the
  measured cost of one member of a stack of 8. Each estimator family is measured at its registry
  ``example`` (NES at a population of 64: noise drawn, antithetic pairs evaluated, as the jobs do)
  with the config's settings, and scaled to another name by its work in loss evaluations
  (:meth:`bnnprobe.estimators.registry.Family.work`, a backprop pass counted as two): per-parameter
  NES at M samples costs M/500 of ``nes-coord-500`` (its cost also grows with sigma, which this misses).
* A ResNet's training, evaluation and layer-probe cost per image is measured at each width on the
  data set's image size up to width 32 and 64 px, and scaled by (width ratio)^2 x (pixel ratio)^2
  beyond (convolution work, not memory traffic); every epoch also evaluates the validation images.
* Parallel jobs are not modelled: the numbers are job-seconds (what a cluster bills), not wall time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from .config import ConfigError, deep_update, read_config_file, validate_config
from .estimators.registry import FAMILIES, family_of
from .naming import settings_for
from .plan import job_mem_mb

MEASURE_BATCH = 8192
# train images, pixels per side, validation images (UCM: Neumann et al.'s split of its 2100 images)
DATASET_IMAGES = {"digits": (1438, 8, 359), "cifar10": (50000, 32, 10000), "ucm": (1680, 256, 210)}
STAGE_FOLDERS = {"probe": ("probe/gradients", "probe/sweeps"),
                 "training": ("training/runs", "training/tuning", "training/precision"),
                 "phase probe": ("training/probe",), "finetune": ("finetune",), "layer probe": ("layerprobe",)}


def best_time(fn, repeats: int = 2) -> float:
    """The shortest wall time of ``repeats`` calls of ``fn`` (GPU work waited for)."""
    import torch

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def _fit(seconds_at, small: int, large: int) -> tuple[float, float]:
    """(fixed seconds, seconds per sample) of a cost measured at two batch sizes."""
    t_small, t_large = seconds_at(small), seconds_at(large)
    slope = max(t_large - t_small, 0.0) / (large - small)
    return max(t_small - slope * small, 0.0), slope


RATES_CACHE = Path("results") / "cost"  # measured rates, reused by the next projection of the same config


def cached_rates(config: dict, device: str = "cpu", cache: Path = RATES_CACHE, remeasure: bool = False) -> tuple:
    """(rates, where they came from): the rates measured earlier on this machine for this config and device
    (a file under ``cache`` named by a digest of the config, the device, the processor and torch's version),
    else measured now and kept there."""
    import ast
    import hashlib
    import json

    import torch

    from .io import cpu_model

    key = json.dumps([config, device, cpu_model(), torch.__version__], sort_keys=True, default=str)
    path = Path(cache) / f"rates_{hashlib.sha256(key.encode()).hexdigest()[:16]}.txt"
    if path.is_file() and not remeasure:
        try:
            return ast.literal_eval(path.read_text()), f"measured earlier, kept in {path} (--remeasure to redo)"
        except (ValueError, SyntaxError):
            pass  # a damaged cache is measured again
    rates = measure_rates(config, device)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(repr(rates))  # int keys and tuples read back as written (JSON would not)
    return rates, f"measured now, kept in {path}"


def measure_rates(config: dict, device: str = "cpu", fused: bool | None = None) -> dict:
    """Seconds per unit of work on this machine (see the module docstring); ``fused`` (default: on a
    GPU) evaluates stacked losses with the fused kernel, as the jobs do. MLP costs are (fixed seconds,
    seconds per sample) pairs, measured at two batch sizes."""
    import torch

    from .estimators import estimate
    from .finetune.resnet import ResNet18
    from .mlp import MLPProbe, MLPSpec

    fused = torch.device(device).type == "cuda" if fused is None else fused
    if torch.device(device).type == "cpu":
        torch.set_num_threads(int(config["compute"]["threads"]))  # as each job runs
    rates = {"device": device, "fused": fused, "eval": {}, "n_coords": {}, **{name: {} for name in FAMILIES}}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    rates["startup"] = time.perf_counter() - start + 1.0  # + Snakemake's own job overhead, about a second
    p = config["probe"]
    small, large = 512, max(min(p["batch_size"], MEASURE_BATCH), 1024)
    for dim in sorted(set(p["dims"]) | set(config.get("training", {}).get("dims", []))):
        def problem_of(batch, _dim=dim):
            spec = MLPSpec(dim=_dim, seed=0, batch_size=batch, num_batches=1, activation=p["activation"],
                           depth=p["depth"])
            return MLPProbe(spec, device=device, fused=fused).batch(0)

        def stacked(batch, members=8):
            problem = problem_of(batch)
            thetas = problem.theta0.repeat(members, 1)
            return best_time(lambda: problem.losses(thetas)) / members

        def estimator(name, repeats):
            # a fresh problem each time: building the flip table is part of the cost
            settings = settings_for(name, config)
            return lambda batch: best_time(lambda: estimate(name, problem_of(batch), settings, seed_parts=(0,)),
                                           repeats=repeats)

        rates["eval"][dim] = _fit(stacked, small, large)
        rates["n_coords"][dim] = problem_of(small).n_coords
        # each family at its example (NES at a population of 64: noise drawn, pairs evaluated, as the jobs do)
        for fam in FAMILIES.values():
            repeats = 1 if fam.work(settings_for(fam.example, config), rates["n_coords"][dim]) > 10_000 else 2
            rates[fam.name][dim] = _fit(estimator(fam.example, repeats), small, large)
    if config.get("finetune"):
        from .finetune.runs import resolve_runs

        _, px, _ = _dataset_images(config)
        rates["resnet"] = {w: _resnet_rates(w, px, config.get("layerprobe"), device)
                           for w in sorted({r["width"] for r in resolve_runs(config["finetune"])})}
    return rates


MEASURE_WIDTH, MEASURE_PX, MEASURE_IMAGES = 32, 64, 32  # the largest ResNet measured as itself


def _resnet_rates(width: int, px: int, layerprobe: dict | None, device: str) -> dict:
    """Seconds per image of a training step, an evaluation and a layer-probe copy of the XNOR-ResNet-18
    at ``width`` and ``px``: measured as itself up to width 32 and 64 px, beyond that at those sizes
    and scaled by (width ratio)^2 x (pixel ratio)^2 (convolution work)."""
    import torch

    from .device import resolve_memory_budget
    from .finetune.resnet import ResNet18
    from .layerprobe.problem import LayerProbeProblem, LayerProbeSpec, default_layer

    w, side = min(width, MEASURE_WIDTH), min(px, MEASURE_PX)
    scale = (width / w) ** 2 * (px / side) ** 2
    model = ResNet18(10, w, 3, side, binary=True).to(device)
    images = torch.randn(MEASURE_IMAGES, 3, side, side, device=device)
    labels = torch.zeros(MEASURE_IMAGES, dtype=torch.long, device=device)
    optimiser = torch.optim.Adam(model.parameters())

    def step():
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimiser.step()

    out = {"train": best_time(step) / MEASURE_IMAGES * scale}
    with torch.no_grad():
        model.eval()
        out["eval"] = best_time(lambda: model(images)) / MEASURE_IMAGES * scale
    if layerprobe:
        copies = 8
        data = {"train": {"images": torch.randint(0, 255, (MEASURE_IMAGES, 3, side, side), dtype=torch.uint8),
                          "labels": torch.zeros(MEASURE_IMAGES, dtype=torch.long)}}
        layer = default_layer(model) if layerprobe["layer"] == "auto" else layerprobe["layer"]
        spec = LayerProbeSpec(layer=layer, k=layerprobe["k"], batch_size=MEASURE_IMAGES, seed=0)
        problem = LayerProbeProblem(model, data, spec, device=device,
                                    memory_budget_mb=resolve_memory_budget("auto", torch.device(device), "layer"))
        thetas = problem.theta0.repeat(copies, 1)
        out["layer_copy"] = best_time(lambda: problem.losses(thetas)) / (copies * MEASURE_IMAGES) * scale
    return out


def _dataset_images(config: dict) -> tuple[int, int, int]:
    """(train images, pixels per side, validation images) of the finetune data set."""
    dataset = config["finetune"]["dataset"]
    train, px, val = DATASET_IMAGES.get(dataset, (10000, 64, 2000))
    if dataset == "ucm":
        px = config["data"]["ucm"]["size"]
    if dataset == "imagefolder" and config["data"]["imagefolder"]["size"] != "auto":
        px = config["data"]["imagefolder"]["size"]
    return train, px, val


def _cost(rates: dict, kind: str, dim: int, samples: int) -> float:
    fixed, per_sample = rates[kind][dim]
    return fixed + per_sample * samples


def _gradient_seconds(name: str, settings: dict, dim: int, samples: int, rates: dict, config: dict) -> float:
    """One gradient estimate of estimator ``name`` on ``samples`` samples at ``dim``: its family's example,
    as measured, scaled by the work (:meth:`~bnnprobe.estimators.registry.Family.work`) of ``settings``."""
    fam = family_of(name)
    n = rates["n_coords"][dim]
    scale = fam.work(settings, n) / fam.work(settings_for(fam.example, config), n)
    return _cost(rates, fam.name, dim, samples) * scale


def _sweep_evals(config: dict, fine: dict | None = None) -> int:
    """Loss evaluations of one lr sweep of one gradient: the coarse grid and the fine one (with about half its
    extensions)."""
    fine = fine or config["lr"]["fine"]
    points = 0 if fine["mode"] == "none" else fine["points"] * (1 + (fine.get("extend", 0) if fine["mode"] == "auto"
                                                                     else 0) / 2)
    return len(config["lr"]["coarse"]) + 1 + int(points)


# the stage of each kind of job (the plan's tables)
STAGE_OF = {"mlp": "probe", "phase": "phase probe", "layer": "layer probe"}
MEMORY_OF = {"probe": "probe", "phase probe": "probe", "layer probe": "layerprobe", "training": "training",
             "finetune": "finetune"}  # each stage's jobs ask for bnnprobe.plan.job_mem_mb of this
# a projection this many times the published laptop run's measured job-seconds is said to be large
LARGE_VS_LAPTOP = 10


def project(config: dict, rates: dict) -> dict[str, dict]:
    """Per stage: jobs (the plan's, so the same as the workflow's) and projected job-seconds."""
    from .plan import Plan

    plan = Plan.from_config(config)
    stages = defaultdict(lambda: {"jobs": 0, "seconds": 0.0})

    def add(stage, seconds):
        stages[stage]["jobs"] += 1
        stages[stage]["seconds"] += rates["startup"] + seconds

    images = None
    if config.get("finetune"):
        images, _, val_images = _dataset_images(config)

    def layer_copies(spec):  # seconds of one perturbed copy of a layer problem's batch
        return rates["resnet"][spec["width"]]["layer_copy"] * min(spec["batch_size"], images)

    for (probe, _), job in plan.gradients.items():
        if probe == "layer":
            evals = family_of(job.name).work(job.settings, job.specs[0]["k"])
            add(STAGE_OF[probe], sum(s["num_batches"] * evals * layer_copies(s) for s in job.specs))
        else:
            add(STAGE_OF[probe], sum(s["num_batches"] * _gradient_seconds(job.name, job.settings, s["dim"],
                                                                          s["batch_size"], rates, config)
                                     for s in job.specs))
    for (probe, key), job in plan.sweeps.items():
        specs = plan.gradients[probe, key].specs
        evals = _sweep_evals(config, job.fine_settings) * len(job.step_layers)
        if probe == "layer":
            add(STAGE_OF[probe], sum(s["num_batches"] * evals * layer_copies(s) for s in specs))
        else:
            add(STAGE_OF[probe], sum(s["num_batches"] * evals * _cost(rates, "eval", s["dim"], s["batch_size"])
                                     for s in specs))
    training = config.get("training")

    def run_seconds(names, dim, steps, runs):
        """``runs`` training runs of ``steps`` steps (a switch: half of them with each estimator): an upper bound
        where runs converge before the step cap."""
        per_step = sum(_gradient_seconds(n, settings_for(n, config), dim, training["batch_size"], rates, config)
                       for n in names) / len(names)
        evaluations = 2 * (steps // training["eval_every"] + 1)  # the validation and the test batch
        return runs * (steps * per_step + evaluations * _cost(rates, "eval", dim, training["val_batch_size"]))

    for job in [*plan.tuning.values(), *plan.switch_tuning.values()]:  # every lr (about one extension) and seed
        add("training", sum(run_seconds([job.estimator], dim, job.budget["steps"], (len(job.grid) + 1) * len(job.seeds))
                            for dim in job.dims))
    for job in plan.switch_points.values():
        add("training", sum(run_seconds([job.estimator], dim, job.protocol["steps"], len(job.seeds))
                            for dim in job.dims))
    for job in [*plan.training.values(), *plan.precision.values()]:
        runs = 2 if job.table else 1  # a precision job trains its run in float32 and in float64
        add("training", sum(run_seconds(job.estimators, s["problem"]["dim"], s["steps"], runs) for s in job.specs))
    for job in [*plan.pretrain.values(), *plan.xnor.values()]:
        r = rates["resnet"][job.width]
        add("finetune", job.settings["epochs"] * (images * r["train"] + val_images * r["eval"]))
    for stage, values in stages.items():
        values["mem_mb"] = job_mem_mb(config, MEMORY_OF[stage])
    return dict(stages)


def laptop_job_seconds() -> float | None:
    """The published laptop run's measured job-seconds (docs/laptop/peaks.csv), if this checkout has it."""
    from .published import PEAKS, PUBLISHED_DIR

    path = PUBLISHED_DIR / PEAKS
    if not path.is_file():
        return None
    import pandas as pd

    return float(pd.read_csv(path)["seconds"].sum())


def size_warning(stages: dict, laptop_seconds: float | None) -> str:
    """A line saying how far the projection is above the laptop run's, when it is :data:`LARGE_VS_LAPTOP`
    times or more; else ``""``."""
    total = sum(v["seconds"] for v in stages.values())
    if not laptop_seconds or total < LARGE_VS_LAPTOP * laptop_seconds:
        return ""
    return (f"warning: this config projects {readable_hours(total / 3600)} of jobs, {total / laptop_seconds:,.0f} "
            f"times the laptop preset's measured run ({readable_hours(laptop_seconds / 3600)}): run it on a cluster "
            f"(docs/cluster.md), or check the seeds, dims and populations it asks for")


def measured_peaks(benchmarks: Path) -> dict[str, float]:
    """The largest job's peak memory (MB) per stage of a finished run, from Snakemake's benchmark files."""
    import pandas as pd

    peaks = {}
    for stage, folders in STAGE_FOLDERS.items():
        files = [f for folder in folders for f in (benchmarks / folder).rglob("*.tsv")]
        peaks[stage] = max((float(pd.read_csv(f, sep="\t")["max_rss"].max()) for f in files), default=0.0)
    return peaks


def measured_seconds(benchmarks: Path) -> dict[str, float]:
    """Job seconds per stage of a finished run, from Snakemake's benchmark files."""
    import pandas as pd

    totals = {}
    for stage, folders in STAGE_FOLDERS.items():
        files = [f for folder in folders for f in (benchmarks / folder).rglob("*.tsv")]
        totals[stage] = sum(float(pd.read_csv(f, sep="\t")["s"].iloc[-1]) for f in files)
    return totals


def readable_hours(hours: float) -> str:
    """Job-hours as a person reads them: minutes below an hour, days above two."""
    if hours < 1:
        return f"{hours * 60:.1f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:,.0f} days"


def cost_table(stages: dict, measured: dict | None = None, peaks: dict | None = None) -> str:
    """The projection per stage (jobs, job-hours, the memory each job asks for), with a finished run's measured
    job-hours and largest peak beside it when given."""
    head = "| stage | jobs | projected job-hours | mem_mb per job |" + (
        " measured job-hours | projected / measured |" if measured else "") + (" measured peak MB |" if peaks else "")
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    total = 0.0
    for stage, values in stages.items():
        hours = values["seconds"] / 3600
        total += hours
        row = f"| {stage} | {values['jobs']} | {readable_hours(hours)} | {values.get('mem_mb', '-')} |"
        if measured:
            got = measured.get(stage, 0.0) / 3600
            row += f" {readable_hours(got)} | {hours / got:.2f} |" if got else " - | - |"
        if peaks:
            row += f" {peaks[stage]:.0f} |" if peaks.get(stage) else " - |"
        lines.append(row)
    lines.append(f"| total | {sum(v['jobs'] for v in stages.values())} | {readable_hours(total)} | |" + (
        f" {readable_hours(sum(measured.values()) / 3600)} | |" if measured else "") + (" |" if peaks else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bnnprobe.cost", description=__doc__.split("\n")[0])
    parser.add_argument("--configfile", nargs="+", default=["config.yaml"],
                        help="config.yaml and overrides, merged as Snakemake merges --configfile")
    parser.add_argument("--device", default="cpu", help="where to measure the rates (cpu, cuda)")
    parser.add_argument("--remeasure", action="store_true", help="measure the rates again, not from the cache")
    parser.add_argument("--measured", type=Path, help="results/benchmarks of a finished run to compare with")
    args = parser.parse_args(argv)
    try:
        for path in args.configfile:
            if not Path(path).is_file():
                raise ConfigError(f"config file {path} does not exist")
        merged = read_config_file(args.configfile[0])
        for extra in args.configfile[1:]:
            deep_update(merged, read_config_file(extra))
        config = validate_config(merged)
        if args.measured is not None and not args.measured.is_dir():
            raise ConfigError(f"--measured {args.measured} is not a folder (give the results/benchmarks of a finished run)")
        import torch

        if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"--device {args.device}: no CUDA device is visible here; measure on cpu or on a GPU machine")
    except (ConfigError, ValueError, RuntimeError) as error:
        print(f"python -m bnnprobe.cost: {error}", file=sys.stderr)
        return 2
    rates, source = cached_rates(config, args.device, remeasure=args.remeasure)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"rates on {args.device} {source}; under the machine's load when measured a busy machine projects more "
          f"(1-minute load average now {load:.1f} on {os.cpu_count()} CPUs): job start-up {rates['startup']:.1f} s")
    stages = project(config, rates)
    print(cost_table(stages, *((measured_seconds(args.measured), measured_peaks(args.measured)) if args.measured
                               else ())))
    warning = size_warning(stages, laptop_job_seconds())
    if warning:
        print(warning)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
