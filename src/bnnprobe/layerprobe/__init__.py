"""The layer probe: the one-step probe on K sampled weights of one layer of a finetuned XNOR-ResNet."""
