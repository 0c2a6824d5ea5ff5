"""Cost of the coordinate-wise estimators against exact CDG, measured in the same run.

    .venv/bin/python benchmarks/coordinate_estimators.py                 # laptop batch 8192, dims 8 32 64
    .venv/bin/python benchmarks/coordinate_estimators.py --batch 160000  # the paper preset's batch

For each dim, on one batch of the MLP probe (float32, the config's memory budget), it times exact
CDG (forward, eps 0.01), the exact smoothed coordinate gradient and per-parameter NES
(``nes-coord-<M>``) at each sigma, and joint NES at the same population for comparison; it prints
seconds and the ratio to exact CDG. Per-parameter NES by its definition would take M x n_coords
loss evaluations; the ``definition`` column gives that count's time at the measured cost of one
loss evaluation of this batch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bnnprobe.cost import best_time as timed  # noqa: E402
from bnnprobe.estimators import estimate  # noqa: E402
from bnnprobe.mlp import MLPProbe, MLPSpec  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--samples", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.001, 0.01, 0.1])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--budget-mb", type=float, default=16.0)
    args = parser.parse_args()
    print(f"device {args.device}, batch {args.batch}, torch threads {torch.get_num_threads()}, "
          f"memory budget {args.budget_mb} MB")
    print(f"{'dim':>4} {'estimator':<18} {'sigma':>7} {'seconds':>9} {'x exact CDG':>12} {'definition (s)':>15}")
    for dim in args.dims:
        spec = MLPSpec(dim=dim, seed=0, batch_size=args.batch, num_batches=1)
        problem = MLPProbe(spec, device=args.device, memory_budget_mb=args.budget_mb).batch(0)
        n = problem.n_coords
        one_loss = timed(lambda: problem.loss(), repeats=3)

        def run(name, settings, fresh=True):
            def go():
                p = MLPProbe(spec, device=args.device, memory_budget_mb=args.budget_mb).batch(0) if fresh else problem
                estimate(name, p, settings, seed_parts=(0,))
            return timed(go, repeats=1)

        # every estimator gets a fresh problem (its flip table is built inside the timing)
        build = timed(lambda: MLPProbe(spec, device=args.device, memory_budget_mb=args.budget_mb).batch(0))
        cdg_seconds = run("cdg", {"eps": 0.01, "scheme": "forward"}) - build
        print(f"{dim:>4} {'cdg (exact)':<18} {'':>7} {cdg_seconds:>9.3f} {1.0:>12.2f} {(n + 1) * one_loss:>15.1f}")
        for sigma in args.sigmas:
            rows = [("smoothed", {"sigma": sigma}, n + 1)]
            rows += [(f"nes-coord-{m}", {"samples": m, "sigma": sigma}, m * n) for m in args.samples]
            rows += [(f"nes-{m}", {"population": m, "sigma": sigma, "fitness_shaping": False}, m)
                     for m in args.samples]
            for name, settings, evals in rows:
                seconds = run(name, settings) - build
                print(f"{dim:>4} {name:<18} {sigma:>7g} {seconds:>9.3f} {seconds / cdg_seconds:>12.2f} "
                      f"{evals * one_loss:>15.1f}")


if __name__ == "__main__":
    main()
