"""The layer probe's perturbed copies evaluated from the probed conv on, against the whole network per copy.

    .venv/bin/python benchmarks/layer_probe.py            # the laptop preset's sizes (width 16, 8 px, batch 64)
    .venv/bin/python benchmarks/layer_probe.py --paper    # the paper preset's (width 192, 32 px, batch 256)

An XNOR ResNet-18 with random weights, the default (middle) layer, K coordinates; for P copies it times
``LayerProbeProblem.losses`` with the split forward (what precedes the layer once per batch) and with the
whole network run per copy (the same problem, ``split`` set to None), interleaved, and prints the seconds
of each, their ratio and the largest relative difference of the losses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bnnprobe.cost import best_time as timed  # noqa: E402
from bnnprobe.finetune.resnet import ResNet18  # noqa: E402
from bnnprobe.layerprobe.problem import LayerProbeProblem, LayerProbeSpec, default_layer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--paper", action="store_true")
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    width, px, batch, k = (192, 32, 256, 256) if args.paper else (16, 8, 64, 64)
    torch.manual_seed(0)
    model = ResNet18(10, width=width, in_channels=3 if args.paper else 1, image_size=px, binary=True).eval()
    channels = model.in_channels
    data = {"train": {"images": torch.randint(0, 256, (batch, channels, px, px), dtype=torch.uint8),
                      "labels": torch.randint(0, 10, (batch,))}}
    layer = default_layer(model)
    problem = LayerProbeProblem(model, data, LayerProbeSpec(layer=layer, k=k, batch_size=batch, seed=0),
                                memory_budget_mb=512)
    split = problem.split
    thetas = problem.theta0 + 0.01 * torch.randn(args.copies, len(problem.coords))

    def run(with_split):
        problem.split = split if with_split else None
        return problem.losses(thetas)

    times = {True: float("inf"), False: float("inf")}
    for _ in range(args.repeats):  # interleaved: both see the same machine load
        for mode in (True, False):
            times[mode] = min(times[mode], timed(lambda: run(mode), repeats=1))
    diff = float(((run(True) - run(False)).abs() / run(False).abs()).max())
    print(f"XNOR ResNet-18 width {width}, {px} px, batch {batch}, layer {layer}, K {k}, {args.copies} copies, "
          f"torch threads {torch.get_num_threads()}")
    print(f"split forward {times[True]:.3f} s, whole network {times[False]:.3f} s: "
          f"{times[False] / times[True]:.2f}x faster; max relative loss difference {diff:.1e}")


if __name__ == "__main__":
    main()
