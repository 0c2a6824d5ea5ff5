"""Where and how a job computes: ``compute.device``, ``dtype``, ``memory_budget_mb``, ``threads``.

Every job of every study goes through :class:`Compute`, so the MLP probe, the layer
probe and the finetunes honour the same config keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}
# Default memory budget of one block of stacked forward passes, by device and problem. The MLP on a
# CPU: the block must stay in the caches (2048 MB made NES 3.4x slower per member than 16 MB at dim
# 16, batch 160000, measured). A ResNet layer on a CPU: vmapped copies amortise each call's overhead
# (16 MB: 1 copy a call, 24.9 ms a copy; 1024 MB: 32 copies, 6.7 ms; width 16, batch 256, measured).
# A GPU wants large blocks to fill its cores.
MEMORY_BUDGET_MB = {("cpu", "mlp"): 16.0, ("cpu", "layer"): 1024.0, ("cuda", "mlp"): 2048.0,
                    ("cuda", "layer"): 2048.0}


def least_loaded_gpu(free_bytes: list[int]) -> int:
    """Index of the GPU with the most free memory (the first on ties)."""
    return max(range(len(free_bytes)), key=lambda i: (free_bytes[i], -i))


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto``: the visible GPU with the most free memory, else the CPU.

    Neither Snakemake nor its SLURM plugin sets CUDA_VISIBLE_DEVICES on a shared node, so a
    job picks its GPU itself; under SLURM's GPU binding only the allocated ones are visible.
    An explicit ``cuda`` without a visible GPU is an error.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
        return torch.device("cuda", least_loaded_gpu(free))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"compute.device is {device!r} but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device(device)


def resolve_memory_budget(memory_budget_mb: float | str, device: torch.device, problem: str = "mlp") -> float:
    """``auto``: the default for the device's type and the problem (:data:`MEMORY_BUDGET_MB`); a number is kept."""
    if memory_budget_mb == "auto":
        kind = "cuda" if torch.device(device).type == "cuda" else "cpu"
        return MEMORY_BUDGET_MB[kind, problem]
    return float(memory_budget_mb)


@dataclass(frozen=True)
class Compute:
    """A resolved ``compute`` section: a concrete device, a dtype, a budget in MB, CPU threads."""

    device: torch.device
    dtype: torch.dtype = torch.float32
    memory_budget: float | str = "auto"  # MB, or auto: see budget_mb
    threads: int | None = None
    fused: bool = False  # the MLP's stacked losses by the fused Triton kernel (bnnprobe.mlp.fused)

    @classmethod
    def from_config(cls, compute: dict | None = None, threads: int | None = None) -> "Compute":
        """From the config's ``compute`` section (or the defaults); ``threads`` overrides its threads
        (Snakemake passes the job's threads). Sets torch's CPU threads when given."""
        compute = dict(compute or {})
        device = resolve_device(compute.get("device", "cpu"))
        if device.type == "cuda":
            # float32 means float32: cuDNN's convolutions default to TF32 (10-bit mantissa), which flips
            # binary activations (a layer probe's losses moved by 7e-3 relative on an H200, measured)
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
        threads = threads if threads is not None else compute.get("threads")
        if threads:
            torch.set_num_threads(int(threads))
        fused = compute.get("fused", "auto")
        if fused == "on" and device.type != "cuda":
            raise ValueError("compute.fused: on needs a CUDA device (the Triton kernel runs on a GPU; use auto)")
        return cls(device=device, dtype=DTYPES[compute.get("dtype", "float32")],
                   memory_budget=compute.get("memory_budget_mb", "auto"), threads=threads,
                   fused=device.type == "cuda" and fused != "off" and DTYPES[compute.get("dtype", "float32")]
                   == torch.float32)

    def budget_mb(self, problem: str) -> float:
        """The memory budget in MB for blocks of stacked passes of ``problem`` (``mlp``, ``layer``)."""
        return resolve_memory_budget(self.memory_budget, self.device, problem)

    def synchronize(self) -> None:
        """Wait for queued GPU work, so that wall times measure it."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
