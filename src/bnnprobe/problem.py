"""What an estimator may ask of a probe problem.

A *problem* is a loss ``L`` over a flat vector ``theta`` of the probed coordinates
(every weight of the MLP, or a sample of one ResNet layer's weights), evaluated on
one fixed batch. Estimators only ever see this interface; they never import a model.
"""

from __future__ import annotations

import math

import torch


class NonFiniteLossError(FloatingPointError):
    """A loss came out NaN or infinite; the job stops rather than writing garbage."""


def check_finite(values: torch.Tensor, what: str) -> torch.Tensor:
    if not bool(torch.isfinite(values).all()):
        bad = int((~torch.isfinite(values)).sum())
        raise NonFiniteLossError(f"{bad} of {values.numel()} values are NaN or infinite in {what}")
    return values


class ProbeProblem:
    """Base class: subclasses implement :meth:`losses`; the rest has generic defaults.

    Attributes a subclass sets: ``theta0`` (the current probed coordinates, 1-D),
    ``device`` and ``dtype``.
    """

    theta0: torch.Tensor
    description: str = "problem"

    @property
    def n_coords(self) -> int:
        return self.theta0.numel()

    @property
    def device(self) -> torch.device:
        return self.theta0.device

    @property
    def dtype(self) -> torch.dtype:
        return self.theta0.dtype

    def losses(self, thetas: torch.Tensor) -> torch.Tensor:
        """Loss (float64) of each row of ``thetas`` (shape C x n_coords)."""
        raise NotImplementedError

    def loss(self, theta: torch.Tensor | None = None) -> float:
        theta = self.theta0 if theta is None else theta
        return float(self.losses(theta.reshape(1, -1))[0])

    def paired_losses(self, theta: torch.Tensor, deltas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(L(theta + delta_k), L(theta - delta_k))`` for each row of ``deltas``.

        Antithetic estimators call this; a problem may share work between the pair.
        """
        both = self.losses(torch.cat([theta + deltas, theta - deltas]))
        return both[: len(deltas)], both[len(deltas):]

    def exact_cdg(self, eps: float, scheme: str = "forward") -> torch.Tensor | None:
        """Hook: the CDG of every coordinate by a fast exact path, or ``None`` where the problem has
        none (then :func:`bnnprobe.estimators.cdg.cdg` evaluates perturbed copies)."""
        return None

    def smoothed_coordinate_gradient(self, sigma: float) -> torch.Tensor | None:
        """Hook: ``d/dmu E_z[L(theta0 + (mu + sigma z) e_i)]`` at mu = 0 for every coordinate i, exactly,
        or ``None`` where the problem has no closed form (the MLP has one: :mod:`bnnprobe.mlp.flips`)."""
        return None

    def coordinate_loss_changes(self, coords: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """``L(theta0 + steps[c, s] e_{coords[c]}) - L(theta0)``, float64, shape of ``steps``.

        This generic path evaluates one perturbed copy per step; a problem may compute it faster.
        """
        base = self.loss()
        n_steps = steps.shape[1]
        thetas = self.theta0.repeat(steps.numel(), 1)
        rows = torch.arange(steps.numel())
        thetas[rows, coords.cpu().repeat_interleave(n_steps).to(thetas.device)] += steps.reshape(-1).to(
            device=thetas.device, dtype=thetas.dtype)
        changes = torch.cat([self.losses(chunk) for chunk in thetas.split(256)]) - base
        return changes.reshape(steps.shape).double()

    def coordinate_groups(self) -> dict[str, slice]:
        """Named groups of coordinates that a step may be restricted to (e.g. the layers of a
        network); none by default."""
        return {}

    def ste_gradient(self, variant: str, params=None) -> torch.Tensor:
        """Gradient of the loss at ``theta0`` w.r.t. the probed coordinates, using an STE."""
        raise NotImplementedError(f"{type(self).__name__} offers no STE gradient")

    def chunk_size(self, memory_budget_mb: float, bytes_per_row: float) -> int:
        return max(1, int(memory_budget_mb * 2**20 // max(bytes_per_row, 1)))


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity; NaN where either vector is zero (the angle is undefined)."""
    a64, b64 = a.double().flatten(), b.double().flatten()
    na, nb = float(a64.norm()), float(b64.norm())
    if na == 0.0 or nb == 0.0:
        return math.nan
    return float(a64 @ b64) / (na * nb)
