"""Gradient of one estimator on a sampled layer of a finetuned XNOR-ResNet (one seed)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../../src")  # bnnprobe from this checkout, in any env

from bnnprobe.logs import to_file  # noqa: E402

to_file(snakemake.log[0])

import torch  # noqa: E402

from bnnprobe.io import load_torch, save_torch  # noqa: E402
from bnnprobe.layerprobe import LayerProbeSpec, compute_layer_gradients, default_layer, load_xnor  # noqa: E402

torch.set_num_threads(snakemake.threads)
data = load_torch(snakemake.input.data)
model = load_xnor(snakemake.input.model, data, int(snakemake.params.width))
probe = dict(snakemake.params.probe)
layer = default_layer(model) if probe["layer"] == "auto" else probe["layer"]
spec = LayerProbeSpec(layer=layer, k=int(probe["k"]), batch_size=int(probe["batch_size"]),
                      seed=int(snakemake.wildcards.seed))
record = compute_layer_gradients(model, data, spec, snakemake.wildcards.run, snakemake.wildcards.estimator,
                                 dict(snakemake.params.settings))
save_torch(record, snakemake.output.gradients)
