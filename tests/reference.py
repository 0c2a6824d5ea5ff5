"""Independent NumPy (float64) reference implementations the tests compare the library with.

Written from the definitions in docs/methods.md and the formulas in the modules' docstrings, not from
the library's code.
"""

from __future__ import annotations

import numpy as np

ACT = {  # threshold t, half-width h, low value, high value
    "zero_one": (0.5, 0.5, 0.0, 1.0),
    "sign": (0.0, 1.0, -1.0, 1.0),
}


def hard(z, activation):
    t, _, low, high = ACT[activation]
    return np.where(z >= t, high, low)


def forward(layers, x, activation):
    """layers: list of (W, b) NumPy pairs; hidden activations hard binary, last layer linear."""
    h = x
    cache = []
    for k, (w, b) in enumerate(layers):
        z = h @ w.T + b
        cache.append((h, z))
        h = z if k == len(layers) - 1 else hard(z, activation)
    return h, cache


def mse(layers, x, y, activation):
    out, _ = forward(layers, x, activation)
    return float(np.mean((out - y) ** 2))


def surrogate_prime(variant, u, k=2.0, beta=5.0):
    if variant == "identity":
        return np.ones_like(u)
    if variant == "vanilla":
        return (np.abs(u) <= 1).astype(float)
    if variant == "steep":
        return k * (np.abs(u) <= 1 / k)
    if variant == "polynomial":
        return np.where(np.abs(u) <= 1, 2 - 2 * np.abs(u), 0.0)
    if variant == "swishsign":
        bu = beta * u
        return beta * (2 - bu * np.tanh(bu / 2)) / (1 + np.cosh(bu))
    raise ValueError(variant)


def ste_backprop(layers, x, y, activation, variant):
    """Hand-written backprop with da/dz = (r / 2h) S'((z - t) / h) at the hidden layers."""
    t, half, low, high = ACT[activation]
    out, cache = forward(layers, x, activation)
    grad_out = 2 * (out - y) / out.size
    grads = [None] * len(layers)
    delta = grad_out
    for k in range(len(layers) - 1, -1, -1):
        h_in, _ = cache[k]
        w, _ = layers[k]
        grads[k] = (delta.T @ h_in, delta.sum(axis=0))
        if k > 0:
            z_prev = cache[k - 1][1]
            scale = (high - low) / (2 * half)
            delta = (delta @ w) * scale * surrogate_prime(variant, (z_prev - t) / half)
    return grads


def flatten(grads):
    """Same layout as bnnprobe: per layer the rows of [W | b]."""
    return np.concatenate([np.concatenate([gw, gb[:, None]], axis=1).ravel() for gw, gb in grads])


def layers_from_theta(theta, dim, depth):
    out, start = [], 0
    for _ in range(depth):
        a = np.asarray(theta[start:start + dim * (dim + 1)], dtype=float).reshape(dim, dim + 1)
        out.append((a[:, :-1], a[:, -1]))
        start += dim * (dim + 1)
    return out


def batched_mse(thetas, dim, depth, x, y, activation):
    """MSE of every row of ``thetas`` (T x n), vectorised over T (for quadrature over a coordinate)."""
    a = np.asarray(thetas, dtype=float).reshape(len(thetas), depth, dim, dim + 1)
    h = np.broadcast_to(x, (len(thetas), *x.shape))
    for k in range(depth):
        z = np.einsum("tnd,tkd->tnk", h, a[:, k, :, :-1]) + a[:, k, None, :, -1]
        h = z if k == depth - 1 else hard(z, activation)
    return ((h - y) ** 2).mean(axis=(1, 2))
