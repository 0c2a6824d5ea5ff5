"""The fused Triton evaluation against the torch path, on the CPU under Triton's interpreter.

TRITON_INTERPRET must be set before Triton decorates the kernel: this module sets it before importing
bnnprobe.mlp.fused, which nothing else imports on a CPU.
"""

import os

os.environ["TRITON_INTERPRET"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402
from triton.runtime.interpreter import InterpretedFunction  # noqa: E402

from bnnprobe.mlp import MLPProbe, MLPSpec  # noqa: E402
from bnnprobe.mlp import fused  # noqa: E402

# widths below, at and above tl.dot's 16 and not powers of two; depths 2-4; batches that are not a
# multiple of the 64-sample block
SHAPES = [(2, 3, "zero_one", 100), (5, 3, "sign", 130), (16, 4, "zero_one", 64), (17, 2, "sign", 70),
          (33, 3, "zero_one", 65)]


def problem(dim, depth, activation, batch, fused_path=False):
    spec = MLPSpec(dim=dim, seed=3, batch_size=batch, num_batches=1, activation=activation, depth=depth)
    return MLPProbe(spec, dtype=torch.float32, fused=fused_path).batch(0)


def test_the_kernel_runs_in_the_interpreter():
    assert isinstance(fused._member_block_sq_error, InterpretedFunction)


@pytest.mark.parametrize("dim,depth,activation,batch", SHAPES)
def test_fused_losses_equal_the_torch_path(dim, depth, activation, batch):
    p = problem(dim, depth, activation, batch)
    gen = torch.Generator().manual_seed(dim)
    thetas = p.theta0 + 0.1 * torch.randn(7, p.n_coords, generator=gen)
    reference = p.losses(thetas)
    got = fused.fused_sq_errors(p.x, p.y, depth, p.act, thetas=thetas) / p.y.numel()
    torch.testing.assert_close(got, reference, rtol=2e-5, atol=1e-7)
    # the pairs: theta + delta then theta - delta, weights formed in the kernel
    deltas = 0.1 * torch.randn(3, p.n_coords, generator=gen)
    plus, minus = p.paired_losses(p.theta0, deltas)
    both = fused.fused_sq_errors(p.x, p.y, depth, p.act, theta=p.theta0, deltas=deltas) / p.y.numel()
    torch.testing.assert_close(both, torch.cat([plus, minus]), rtol=2e-5, atol=1e-7)


def test_a_problem_built_with_the_fused_path_uses_it():
    plain, with_fused = problem(5, 3, "sign", 130), problem(5, 3, "sign", 130, fused_path=True)
    assert with_fused.fused and not plain.fused
    deltas = 0.05 * torch.randn(4, plain.n_coords, generator=torch.Generator().manual_seed(0))
    for a, b in zip(with_fused.paired_losses(with_fused.theta0, deltas), plain.paired_losses(plain.theta0, deltas)):
        torch.testing.assert_close(a, b, rtol=2e-5, atol=1e-7)
    thetas = plain.theta0 - torch.outer(torch.tensor([0.0, 0.1, 1.0]), deltas[0])
    torch.testing.assert_close(with_fused.losses(thetas), plain.losses(thetas), rtol=2e-5, atol=1e-7)


def test_wrong_shapes_are_refused():
    p = problem(4, 3, "sign", 20)
    with pytest.raises(ValueError, match="coordinates given"):
        fused.fused_sq_errors(p.x, p.y, 2, p.act, thetas=p.theta0[None])
