"""The paper preset's heavy paths on one GPU, in one run (about 5 minutes on an H100-class GPU):

    .venv/bin/python benchmarks/gpu.py              # on a CUDA machine
    .venv/bin/python benchmarks/gpu.py --quick      # small sizes: a smoke test on the CPU too

It prints, each against its baseline in the same run:
* NES-50000 at dim 64, batch 160 000: the plain stacked torch path vs the fused Triton kernel
  (seconds per batch, ratio, and the cosine between the two gradients: the same noise, so ~1);
* exact CDG and guided ES 5000 at dim 64 (fused);
* an XNOR-ResNet-18 width-256 training step rate: bf16 autocast + channels_last vs plain fp32;
* one layer-probe NES-500 evaluation at the paper's size (width 256, 256 px, batch 256, K = 256);
* the paper preset's projected job-hours per stage from rates measured here (bnnprobe.cost).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bnnprobe.config import load_config  # noqa: E402
from bnnprobe.cost import cost_table, measure_rates, project  # noqa: E402
from bnnprobe.estimators import estimate  # noqa: E402
from bnnprobe.mlp import MLPProbe, MLPSpec  # noqa: E402
from bnnprobe.problem import cosine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def mlp_section(device, dim, batch, population, fused_available):
    spec = MLPSpec(dim=dim, seed=0, batch_size=batch, num_batches=1)
    nes = {"population": population, "sigma": 0.01, "fitness_shaping": False}
    plain = MLPProbe(spec, device=device, memory_budget_mb=2048).batch(0)
    (g_plain, t_plain) = timed(lambda: estimate(f"nes-{population}", plain, nes, seed_parts=(0,)).gradient)
    print(f"NES-{population} dim {dim} batch {batch}: plain stacked torch {t_plain:.2f} s")
    if fused_available:
        fast = MLPProbe(spec, device=device, memory_budget_mb=2048, fused=True).batch(0)
        estimate("nes-10", fast, {**nes, "population": 10}, seed_parts=(0,))  # compile the kernel first
        (g_fused, t_fused) = timed(lambda: estimate(f"nes-{population}", fast, nes, seed_parts=(0,)).gradient)
        print(f"  fused Triton {t_fused:.2f} s: {t_plain / t_fused:.1f}x; cosine to the plain gradient "
              f"{cosine(g_plain, g_fused):.6f}")
    problem = MLPProbe(spec, device=device, memory_budget_mb=2048, fused=fused_available).batch(0)
    _, t_cdg = timed(lambda: estimate("cdg", problem, {"eps": 0.01, "scheme": "forward"}))
    guided = {"population": population // 10, "sigma": 0.01, "alpha": 0.5, "beta": 1.0,
              "guides": ["vanilla", "steep", "swishsign", "polynomial"], "steep_k": 2.0, "swishsign_beta": 5.0}
    _, t_guided = timed(lambda: estimate("guided-es", problem, guided, seed_parts=(0,)))
    print(f"exact CDG dim {dim}: {t_cdg:.2f} s; guided ES {population // 10} dim {dim}: {t_guided:.2f} s "
          f"({'fused' if fused_available else 'plain'})")


def resnet_section(device, width, px, batch):
    from bnnprobe.finetune.resnet import ResNet18

    model = ResNet18(21, width, 3, px, binary=True).to(device)
    images = torch.randn(batch, 3, px, px, device=device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    optimiser = torch.optim.Adam(model.parameters())

    def steps(n, bf16):
        for _ in range(n):
            optimiser.zero_grad()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.cross_entropy(model(images), labels)
            loss.backward()
            optimiser.step()

    rates = {}
    for name, bf16, layout in (("plain fp32", False, torch.contiguous_format),
                               ("bf16 + channels_last", device.type == "cuda", torch.channels_last)):
        model.to(memory_format=layout)
        images = images.contiguous(memory_format=layout)
        steps(1, bf16)  # warm-up (cuDNN picks its algorithms)
        _, seconds = timed(lambda: steps(3, bf16))
        rates[name] = 3 * batch / seconds
        print(f"XNOR-ResNet-18 width {width}, {px} px, batch {batch}, {name}: {rates[name]:.0f} images/s")
    print(f"  ratio {rates['bf16 + channels_last'] / rates['plain fp32']:.2f}")


def layer_probe_section(device, width, px, batch, k, population):
    from bnnprobe.finetune.resnet import ResNet18
    from bnnprobe.layerprobe.problem import LayerProbeProblem, LayerProbeSpec, default_layer

    model = ResNet18(21, width, 3, px, binary=True)
    data = {"train": {"images": torch.randint(0, 255, (batch, 3, px, px), dtype=torch.uint8),
                      "labels": torch.zeros(batch, dtype=torch.long)}}
    spec = LayerProbeSpec(layer=default_layer(model), k=k, batch_size=batch, seed=0)
    problem = LayerProbeProblem(model, data, spec, device=device,
                                memory_budget_mb=2048 if device.type == "cuda" else 1024)
    nes = {"population": population, "sigma": 0.01, "fitness_shaping": False}
    _, seconds = timed(lambda: estimate(f"nes-{population}", problem, nes, seed_parts=(0,)))
    print(f"layer probe NES-{population}, width {width}, {px} px, batch {batch}, K {k}: {seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test, also on a CPU)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fused_available = device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device: {name}, torch {torch.__version__}")
    if args.quick:
        mlp_section(device, 8, 2048, 200, fused_available)
        resnet_section(device, 8, 32, 16)
        layer_probe_section(device, 8, 32, 16, 16, 20)
        config = load_config(REPO / "config.yaml", REPO / ".test" / "config.yaml")
    else:
        mlp_section(device, 64, 160_000, 50_000, fused_available)
        resnet_section(device, 256, 256, 32)
        layer_probe_section(device, 256, 256, 256, 256, 500)
        config = load_config(REPO / "config.yaml")
    rates = measure_rates(config, str(device))
    print("projected job-hours of " + ("the tiny config" if args.quick else "the paper preset") + " on this device:")
    print(cost_table(project(config, rates)))


if __name__ == "__main__":
    main()
