"""Fast vs naive estimator paths, measured in the same run, and the paper preset's projected cost.

    .venv/bin/python benchmarks/estimators.py            # dims 16 and 64, batch 160000
    .venv/bin/python benchmarks/estimators.py --quick    # a smaller batch, for a smoke test

For each dim it times, on one batch of the paper preset's problem:
* CDG: the exact fast path against the per-coordinate loop (one loss evaluation per
  coordinate; timed on a sample of coordinates and scaled to all of them);
* NES: the batched antithetic path against a per-sample loop (one loss evaluation per
  population member; timed on a sample of members and scaled to the population);
and prints their ratios and the projected wall time of the paper preset's whole probe study.

Each loop is timed with two kinds of loss evaluation: ``plain`` is the textbook forward
pass (``mlp_forward`` on the whole batch, then the mean squared error); ``blocked`` is
this package's single evaluation (samples in cache-sized blocks, thresholds in place),
itself part of the speed-up. ``ratio`` columns divide each loop's time by the fast path's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bnnprobe.config import load_config, probe_estimators  # noqa: E402
from bnnprobe.estimators import estimate  # noqa: E402
from bnnprobe.estimators.sampling import noise_blocks  # noqa: E402
from bnnprobe.mlp import MLPProbe, MLPSpec, mlp_forward  # noqa: E402
from bnnprobe.naming import family, settings_for  # noqa: E402
from bnnprobe.device import resolve_device, resolve_memory_budget  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def plain_loss(problem, theta) -> float:
    """The textbook evaluation: one forward pass over the whole batch, then the MSE."""
    layers = [t[0] for t in problem.unpack(theta.reshape(1, -1))]
    out = mlp_forward(layers, problem.x, problem.activation)
    return float(((out - problem.y) ** 2).mean())


def blocked_loss(problem, theta) -> float:
    return problem.loss(theta)


def naive_cdg_seconds(problem, eps: float, sample: int, loss) -> float:
    """Per-coordinate loop: one loss evaluation per perturbed coordinate."""
    coords = torch.linspace(0, problem.n_coords - 1, sample).long()

    def run():
        base = loss(problem, problem.theta0)
        for i in coords.tolist():
            theta = problem.theta0.clone()
            theta[i] += eps
            loss(problem, theta) - base
    _, seconds = timed(run)
    return seconds / sample * problem.n_coords


def naive_nes_seconds(problem, sigma: float, population: int, sample_pairs: int, loss) -> float:
    """Per-sample loop: one loss evaluation per population member."""
    def run():
        for _, noise in noise_blocks(("bench",), sample_pairs, problem.n_coords, problem.device, problem.dtype):
            for s in noise:
                loss(problem, problem.theta0 + sigma * s) - loss(problem, problem.theta0 - sigma * s)
    _, seconds = timed(run)
    return seconds / (2 * sample_pairs) * population


def table_row(dim: int, path: str, fast: float, loops: list[float], digits: int) -> str:
    """One line of the printed table: the fast path, then each loop's time and its ratio to the fast path."""
    return f"{dim:>4} {path:<5} {fast:>9.{digits}f}" + "".join(
        f" {loop:>{width}.1f} {loop / fast:>6.1f}" for loop, width in zip(loops, (13, 15)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--batch-size", type=int, default=None, help="default: the paper preset's")
    parser.add_argument("--population", type=int, default=None, help="NES population timed (default: largest)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="batch 16384 and fewer samples")
    args = parser.parse_args()

    config = load_config(REPO / "config.yaml")
    batch = args.batch_size or (16384 if args.quick else config["probe"]["batch_size"])
    nes_names = [n for n in probe_estimators(config) if family(n) == "nes"]
    population = args.population or max(int(n.split("-")[1]) for n in nes_names)
    timed_population = min(population, 50 if args.quick else 200)
    device = resolve_device(args.device)
    budget = resolve_memory_budget(config["compute"]["memory_budget_mb"], device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch}")
    print(f"{'dim':>4} {'path':<5} {'fast s':>9} {'plain loop s':>13} {'ratio':>6} {'blocked loop s':>15} {'ratio':>6}")
    per_batch = {}
    for dim in args.dims:
        problem = MLPProbe(MLPSpec(dim=dim, seed=0, batch_size=batch, num_batches=1), device=device,
                           memory_budget_mb=budget).batch(0)
        cdg_settings = settings_for("cdg", config)
        _, fast_cdg = timed(lambda: estimate("cdg", problem, cdg_settings))
        loops = [naive_cdg_seconds(problem, cdg_settings["eps"], 8 if args.quick else 32, loss)
                 for loss in (plain_loss, blocked_loss)]
        print(table_row(dim, "cdg", fast_cdg, loops, 3))
        nes_settings = {**settings_for(nes_names[0], config), "population": timed_population}
        _, fast_nes = timed(lambda: estimate(f"nes-{timed_population}", problem, nes_settings, (0,)))
        fast_nes *= population / timed_population
        loops = [naive_nes_seconds(problem, nes_settings["sigma"], population, 4 if args.quick else 16, loss)
                 for loss in (plain_loss, blocked_loss)]
        print(table_row(dim, "nes", fast_nes, loops, 2) + f"   (population {population}, timed {timed_population})")
        per_batch[dim] = {"cdg": fast_cdg, "nes_per_eval": fast_nes / population}

    # Projection: NES and guided-ES cost scales with the population and, between the dims
    # measured, like dim^2; CDG and STE are small next to them.
    p = config["probe"]
    # cost per loss evaluation grows linearly with the batch: scale what was timed to the preset's
    repeats = len(p["seeds"]) * p["num_batches"] * p["batch_size"] / batch
    total = 0.0
    measured = sorted(per_batch)
    for dim in p["dims"]:
        ref = min(measured, key=lambda m: abs(m - dim))
        scale = max(dim / ref, 1 / 16) ** 2
        evals = sum(int(n.split("-")[1]) for n in nes_names)
        if "guided-es" in config["estimators"]:
            evals += config["guided_es"]["population"]
        total += repeats * (evals * per_batch[ref]["nes_per_eval"] + per_batch[ref]["cdg"]) * scale
    print(f"projected paper-preset probe study on this machine: {total / 3600:.1f} h "
          f"({len(p['dims'])} dims x {len(p['seeds'])} seeds x {p['num_batches']} batches, "
          f"populations {[n for n in nes_names]} + guided-es)")


if __name__ == "__main__":
    main()
