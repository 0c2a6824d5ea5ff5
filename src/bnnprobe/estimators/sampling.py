"""Noise shared by the ES families that sample all coordinates jointly (NES, Guided ES).

Noise is drawn in fixed blocks of ``NOISE_BLOCK`` pairs, each from its own derived
seed, so the numbers do not depend on how the evaluation is chunked.
"""

from __future__ import annotations

import torch

from ..seeding import generator

NOISE_BLOCK = 64


def check_population(population: int) -> None:
    if population < 2 or population % 2:
        raise ValueError(f"ES population must be an even number >= 2 (antithetic pairs), got {population}")


def noise_blocks(seed_parts: tuple, n_pairs: int, n_coords: int, device, dtype):
    """Yield (start, standard normal block) covering ``n_pairs`` rows of ``n_coords``."""
    for block, start in enumerate(range(0, n_pairs, NOISE_BLOCK)):
        rows = min(NOISE_BLOCK, n_pairs - start)
        gen = generator(*seed_parts, "noise", block, device=device)
        # always draw a whole block, so a population's noise is a prefix of any larger one's
        yield start, torch.randn(NOISE_BLOCK, n_coords, generator=gen, device=device, dtype=dtype)[:rows]
