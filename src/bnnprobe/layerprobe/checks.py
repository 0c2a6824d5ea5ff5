"""The layer probe's config checks (torch-free: the config check runs them before any finetune)."""

from __future__ import annotations

from ..estimators.registry import family_of


class LayerProbeConfigError(ValueError):
    """A layerprobe section that cannot run; the message names the key."""


def probe_layers() -> list[str]:
    """Names of the XNOR-ResNet-18's convolution and linear layers, the layers a layer probe can
    step (torch-free: the Snakefile checks ``layerprobe.layer`` with it before any finetune; a test
    compares it with the model's modules). Blocks 0..7 are ``BN, act, conv, BN, act, conv``; the
    first block of stages 2-4 (blocks 2, 4, 6) has a 1x1 shortcut conv."""
    blocks = [f"blocks.{block}.body.{index}" for block in range(8) for index in (2, 5)]
    shortcuts = [f"blocks.{block}.shortcut.0" for block in (2, 4, 6)]
    return ["stem.0", *blocks, *shortcuts, "head"]


def check_layerprobe(layerprobe: dict, check_names) -> None:
    """Check the ``layerprobe`` section; ``check_names(names, key)`` checks a list of estimator names."""
    check_names(layerprobe["estimators"], "layerprobe.estimators")
    for i, name in enumerate(layerprobe["estimators"]):
        if family_of(name).closed_form_only:
            raise LayerProbeConfigError(
                f"key 'layerprobe.estimators[{i}]': {name!r} has a closed form for the MLP probe only (a ResNet "
                "layer's loss is no sum of steps along a coordinate); use nes-coord-<M>, its sampled version")
    layers = probe_layers()
    if layerprobe["layer"] != "auto" and layerprobe["layer"] not in layers:
        raise LayerProbeConfigError(f"key 'layerprobe.layer': {layerprobe['layer']!r} is not a convolution or linear "
                                    f"layer of the XNOR-ResNet-18; choose auto or one of {', '.join(layers)}")
