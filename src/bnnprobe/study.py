"""The MLP probe study's expensive step: the gradients of every batch, computed once.

A gradient does not depend on the learning rate, so :func:`compute_gradients` stores
the gradients of all batches of one (estimator, dim, seed) and every lr is evaluated
from them later (:mod:`bnnprobe.sweep`). The record it returns is what the workflow
saves as ``results/probe/gradients/<estimator>/dim<dim>/seed<seed>.pt``; its keys:

``format``           record format version (int)
``estimator``        estimator name, e.g. ``nes-5000``
``settings``         the estimator's settings (eps, sigma, population, ...)
``spec``             the problem (:class:`bnnprobe.mlp.MLPSpec` as a dict)
``dtype``            floating type of the evaluation (``float32``)
``student``          the student's initial layers, list of (dim, dim+1) float64 tensors ``[W | b]``
``teacher``          the teacher's layers, same layout
``batch_seeds``      the derived seed of each batch's inputs (ints)
``gradients``        float32 tensor (num_batches, n_coords): one flat gradient per batch
``loss_before``      float64 tensor (num_batches,): the student's loss on each batch
``seconds``          float64 tensor (num_batches,): wall time of each batch's estimate
``n_loss_evals``     int tensor (num_batches,): loss evaluations the estimator's definition uses
``device``           where it ran
"""

from __future__ import annotations

import logging
import time

import torch

from .estimators import estimate
from .mlp import MLPProbe, MLPSpec
from .seeding import derive_seed

RECORD_FORMAT = 1
DTYPES = {"float32": torch.float32, "float64": torch.float64}
log = logging.getLogger(__name__)


def least_loaded_gpu(free_bytes: list[int]) -> int:
    """Index of the GPU with the most free memory (the first on ties)."""
    return max(range(len(free_bytes)), key=lambda i: (free_bytes[i], -i))


def resolve_device(device: str) -> torch.device:
    """``auto``: the visible GPU with the most free memory, else the CPU.

    Neither Snakemake nor its SLURM plugin sets CUDA_VISIBLE_DEVICES on a shared node, so a
    job picks its GPU itself; under SLURM's GPU binding only the allocated ones are visible.
    An explicit ``cuda`` without a visible GPU is an error.
    """
    if device == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
        return torch.device("cuda", least_loaded_gpu(free))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"compute.device is {device!r} but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device(device)


# Default memory budget of one block of stacked forward passes. On a CPU the block must stay in the
# caches: 2048 MB made NES 3.4x slower per member than 16 MB (dim 16, batch 160000, measured); a
# GPU wants large blocks to fill its cores.
MEMORY_BUDGET_MB = {"cpu": 16.0, "cuda": 2048.0}


def resolve_memory_budget(memory_budget_mb: float | str, device: torch.device) -> float:
    """``auto``: the default for the device's type (:data:`MEMORY_BUDGET_MB`); a number is kept."""
    if memory_budget_mb == "auto":
        return MEMORY_BUDGET_MB.get(torch.device(device).type, MEMORY_BUDGET_MB["cpu"])
    return float(memory_budget_mb)


def compute_gradients(spec: MLPSpec, estimator: str, settings: dict, device: str = "cpu",
                      dtype: str = "float32", memory_budget_mb: float | str = "auto") -> dict:
    dev = resolve_device(device)
    probe = MLPProbe(spec, device=dev, dtype=DTYPES[dtype],
                     memory_budget_mb=resolve_memory_budget(memory_budget_mb, dev))
    grads, losses, seconds, evals = [], [], [], []
    started = time.perf_counter()
    for b in range(spec.num_batches):
        problem = probe.batch(b)
        t0 = time.perf_counter()
        result = estimate(estimator, problem, settings, seed_parts=(spec.dim, spec.seed, b))
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds.append(time.perf_counter() - t0)
        if not bool(torch.isfinite(result.gradient).all()):
            raise FloatingPointError(f"{estimator} gave a NaN or infinite gradient on {problem.description}")
        grads.append(result.gradient.float().cpu())
        losses.append(problem.loss())
        evals.append(result.n_loss_evals)
        done = b + 1
        elapsed = time.perf_counter() - started
        log.info("%s dim=%d seed=%d: batch %d/%d in %.2fs (ETA %.0fs)", estimator, spec.dim, spec.seed, done,
                 spec.num_batches, seconds[-1], elapsed / done * (spec.num_batches - done))
    return {
        "format": RECORD_FORMAT,
        "estimator": estimator,
        "settings": dict(settings),
        "spec": spec.as_dict(),
        "dtype": dtype,
        "student": [t.clone() for t in probe.student],
        "teacher": [t.clone() for t in probe.teacher],
        "batch_seeds": [derive_seed(*probe.batch_seed_parts(b)) for b in range(spec.num_batches)],
        "gradients": torch.stack(grads),
        "loss_before": torch.tensor(losses, dtype=torch.float64),
        "seconds": torch.tensor(seconds, dtype=torch.float64),
        "n_loss_evals": torch.tensor(evals, dtype=torch.int64),
        "device": str(dev),
    }


def probe_from_record(record: dict, device: str = "cpu", memory_budget_mb: float | str = "auto") -> MLPProbe:
    """Rebuild the problem a record was computed on, and check it really is the same one."""
    if record.get("format") != RECORD_FORMAT:
        raise ValueError(f"gradient record has format {record.get('format')!r}, expected {RECORD_FORMAT}")
    dev = resolve_device(device)
    probe = MLPProbe(MLPSpec(**record["spec"]), device=dev, dtype=DTYPES[record["dtype"]],
                     memory_budget_mb=resolve_memory_budget(memory_budget_mb, dev))
    if not all(torch.equal(a, b) for a, b in zip(probe.student, record["student"])):
        raise ValueError("the stored student weights differ from the ones the code generates for this spec; "
                         "the record was made by another version of bnnprobe: delete it and re-run")
    return probe
