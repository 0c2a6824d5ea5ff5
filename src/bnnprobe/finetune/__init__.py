"""The XNOR-ResNet-18 finetunes: data sets, the (XNOR-)ResNet-18, the training loop, the runs and their table.

``runs`` is torch-free (the Snakefile imports it); the rest needs torch.
"""
