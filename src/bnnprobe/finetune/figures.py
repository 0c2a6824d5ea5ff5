"""The finetunes' figure: training loss and validation accuracy per epoch of every run."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .. import style  # noqa: E402

style.apply()


def finetune_curves(frames: list):
    """Training loss and validation accuracy per epoch for each (run, seed) of the finetunes."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(style.WIDTH, 3.2), layout="constrained")
    for run, seed, frame in frames:
        label = f"{run['id']} seed {seed}"
        loss_ax.plot(frame["epoch"], frame["train_loss"], label=label)
        acc_ax.plot(frame["epoch"], frame["val_acc"], label=label)
    loss_ax.set(yscale="log", xlabel="epoch", ylabel="training loss\n(cross-entropy, log scale)",
                title="XNOR finetune: training loss")
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy (fraction)", ylim=(0, 1),
               title="XNOR finetune: validation accuracy")
    from matplotlib.ticker import MaxNLocator

    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    style.log_ticks(loss_ax)
    style.legend_below(fig, *style.collect_legend([loss_ax]), title="run (width, weight decay, ...) and seed", cols=2)
    return fig
