"""bnnprobe: how good are the gradients used to train binary neural networks?"""

__version__ = "0.1.0"
