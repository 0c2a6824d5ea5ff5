"""The MLP probe: teacher/student networks with binary hidden activations (the log's first study)."""

from .teacher_student import MLPProbe, MLPSpec, draw_teacher, init_layers, mlp_forward, pack

__all__ = ["MLPProbe", "MLPSpec", "draw_teacher", "init_layers", "mlp_forward", "pack"]
