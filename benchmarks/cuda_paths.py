"""The CUDA paths of every probe, checked against the CPU and timed in one run.

    python benchmarks/cuda_paths.py            # on a machine with a GPU (a few minutes)
    python benchmarks/cuda_paths.py --quick    # small sizes (also runs on the CPU alone)

For the MLP probe (CDG, NES, STE, guided ES), the layer probe (an XNOR-ResNet-18 layer) and
training a student, the same computation runs on the CPU and on the GPU, both in float32
(compute.dtype's default): it prints the agreement (cosine of gradients, relative loss
difference) and the seconds of each, with the CPU/GPU ratio. It uses the library only (no
Snakemake), through the same Compute and sources the workflow's jobs use.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from bnnprobe.device import Compute  # noqa: E402
from bnnprobe.estimators import estimate  # noqa: E402
from bnnprobe.finetune.resnet import ResNet18  # noqa: E402
from bnnprobe.layerprobe.problem import LayerProbeProblem, LayerProbeSpec, default_layer  # noqa: E402
from bnnprobe.mlp.network import MLPSpec  # noqa: E402
from bnnprobe.mlp.source import SOURCE as MLP  # noqa: E402
from bnnprobe.naming import settings_for  # noqa: E402
from bnnprobe.problem import cosine  # noqa: E402
from bnnprobe.study import compute_record  # noqa: E402
from bnnprobe.training.trainer import TrainingSpec, train_student  # noqa: E402

CONFIG = {"cdg": {"eps": 0.01, "scheme": "forward"}, "nes": {"sigma": 0.01, "fitness_shaping": False},
          "ste": {"steep_k": 2.0, "swishsign_beta": 5.0},
          "guided_es": {"population": 500, "sigma": 0.01, "alpha": 0.5, "beta": 1.0,
                        "guides": ["vanilla", "steep", "swishsign", "polynomial"]}}


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    gpu = Compute.from_config({"device": "cuda" if cuda else "cpu", "dtype": "float32"})
    cpu = Compute.from_config({"device": "cpu", "dtype": "float32", "threads": torch.get_num_threads()})
    name = torch.cuda.get_device_name(0) if cuda else "no GPU (the 'gpu' column runs on the CPU, float32)"
    print(f"device: {name}; torch {torch.__version__}; CPU threads {torch.get_num_threads()}")
    batch, dims = (4096, [8]) if args.quick else (160000, [16, 64])

    print("\nMLP probe, one batch: cos(gpu, cpu) of the gradient, seconds on each. Stochastic estimators draw their")
    print("noise on the device that computes (CUDA's generator differs from the CPU's): for NES and guided ES the")
    print("cosine is that of two independent draws, the estimator's own spread; 'paired' checks the GPU's losses of")
    print("the same perturbations against the CPU's (max relative difference)")
    print(f"{'estimator':>12} {'dim':>4} {'cos':>9} {'cpu s':>8} {'gpu s':>8} {'cpu/gpu':>8}")
    for dim in dims:
        spec = {"dim": dim, "seed": 0, "batch_size": batch, "num_batches": 1}
        for est in ["cdg", "ste-vanilla", "nes-500" if args.quick else "nes-2000", "guided-es"]:
            settings = settings_for(est, {**CONFIG, "guided_es": {**CONFIG["guided_es"],
                                                                  "population": 50 if args.quick else 500}})
            ref, t_cpu = timed(lambda: compute_record(MLP, spec, est, settings, cpu))
            compute_record(MLP, spec, est, settings, gpu)  # warm-up (kernels, allocator)
            rec, t_gpu = timed(lambda: compute_record(MLP, spec, est, settings, gpu))
            cos = cosine(ref.gradients[0], rec.gradients[0])
            print(f"{est:>12} {dim:>4} {cos:9.6f} {t_cpu:8.2f} {t_gpu:8.2f} {t_cpu / t_gpu:8.1f}")
        on_cpu, on_gpu = MLP.open(spec, cpu).problem(0), MLP.open(spec, gpu).problem(0)
        deltas = 0.01 * torch.randn(256, on_cpu.n_coords, generator=torch.Generator().manual_seed(0))
        plus_c, minus_c = on_cpu.paired_losses(on_cpu.theta0, deltas)
        plus_g, minus_g = on_gpu.paired_losses(on_gpu.theta0, deltas)
        rel = max(float(((plus_g.cpu() - plus_c).abs() / plus_c.abs()).max()),
                  float(((minus_g.cpu() - minus_c).abs() / minus_c.abs()).max()))
        print(f"{'paired':>12} {dim:>4} 256 perturbations: max relative loss difference gpu vs cpu {rel:.2e}")

    print("\nLayer probe: an XNOR-ResNet-18 layer, losses of perturbed copies and NES on the GPU vs the CPU")
    width, px, n = (8, 32, 64) if args.quick else (16, 32, 256)
    torch.manual_seed(0)
    model = ResNet18(10, width=width, in_channels=3, image_size=px, binary=True)
    images = torch.randint(0, 256, (n, 3, px, px), dtype=torch.uint8)
    data = {"train": {"images": images, "labels": torch.randint(0, 10, (n,))}}
    spec = LayerProbeSpec(layer=default_layer(model), k=256, batch_size=n, seed=0)
    problem_cpu = LayerProbeProblem(model, data, spec, device="cpu", dtype=torch.float32,
                                    memory_budget_mb=cpu.budget_mb("layer"))
    thetas = problem_cpu.theta0.repeat(32, 1) + 0.01 * torch.randn(32, problem_cpu.n_coords, dtype=torch.float32)
    ref, t_cpu = timed(lambda: problem_cpu.losses(thetas))
    problem_gpu = LayerProbeProblem(model, data, spec, device=gpu.device, dtype=gpu.dtype,
                                    memory_budget_mb=gpu.budget_mb("layer"))
    problem_gpu.losses(thetas[:2])
    out, t_gpu = timed(lambda: problem_gpu.losses(thetas).cpu())
    print(f"width {width}, {px} px, batch {n}, 32 copies: max relative loss difference "
          f"{float(((out - ref).abs() / ref.abs()).max()):.2e}; cpu {t_cpu:.2f} s, gpu {t_gpu:.2f} s "
          f"({t_cpu / t_gpu:.1f}x); chunk cpu {problem_cpu.chunk}, gpu {problem_gpu.chunk}")
    nes = "nes-50" if args.quick else "nes-500"
    settings = settings_for(nes, CONFIG)
    nes_gpu, t_gpu = timed(lambda: estimate(nes, problem_gpu, settings, seed_parts=(0,)).gradient)
    nes_cpu, t_cpu = timed(lambda: estimate(nes, problem_cpu, settings, seed_parts=(0,)).gradient)
    print(f"{nes.upper()} on the layer: cos(gpu, cpu) {cosine(nes_gpu.cpu(), nes_cpu):.6f}; cpu {t_cpu:.2f} s, "
          f"gpu {t_gpu:.2f} s ({t_cpu / t_gpu:.1f}x)")

    print("\nTraining a student (ste-vanilla>cdg, switch at half-time): final validation loss on each")
    steps = 40 if args.quick else 200
    tspec = TrainingSpec(problem=MLPSpec(dim=16, seed=0, batch_size=1024, num_batches=1), schedule="ste-vanilla>cdg",
                         steps=steps, val_batch_size=16384, eval_every=10, lrs=(1.0, 1.0), switch=steps // 2)
    settings = {e: settings_for(e, CONFIG) for e in ("ste-vanilla", "cdg")}
    tmp = Path("/tmp/bnnprobe-cuda-paths")
    tmp.mkdir(exist_ok=True)
    a, t_cpu = timed(lambda: train_student(tspec, settings, tmp / "cpu.pt", cpu))
    b, t_gpu = timed(lambda: train_student(tspec, settings, tmp / "gpu.pt", gpu))
    for f in tmp.glob("*.pt"):
        f.unlink()
    print(f"{steps} steps: val loss cpu {a.curve.val_loss.iloc[-1]:.6f}, gpu {b.curve.val_loss.iloc[-1]:.6f}; "
          f"cpu {t_cpu:.1f} s, gpu {t_gpu:.1f} s ({t_cpu / t_gpu:.1f}x)")


if __name__ == "__main__":
    main()
