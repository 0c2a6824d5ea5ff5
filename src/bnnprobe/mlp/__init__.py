"""The MLP probe: teacher/student networks with binary hidden activations (the log's first study).

:mod:`~bnnprobe.mlp.network` holds the spec and pure functions on layers,
:mod:`~bnnprobe.mlp.problem` the loss of a batch as a probe problem and the teacher/student pair
that makes them, :mod:`~bnnprobe.mlp.flips` the closed forms built on flipping activations.
"""

from .network import MLPSpec, draw_teacher, init_layers, mlp_forward, pack, unpack
from .problem import MLPBatchProblem, MLPProbe

__all__ = ["MLPBatchProblem", "MLPProbe", "MLPSpec", "draw_teacher", "init_layers", "mlp_forward", "pack", "unpack"]
