"""Findings of the MLP probe, generated from its tables (so they hold for any config), stated either
way with their confidence intervals: which layer carries the loss decrease, where the estimators
differ from CDG, and what sigma (eps) changes.

Comparisons are paired: two gradients of the same (seed, batch) are stepped on the same batch, each
at its own best lr; the difference of their loss decreases is one observation, and its mean gets a
Student-t 95% CI. A difference whose CI excludes 0 is stated as larger/smaller, else as
indistinguishable at this number of seeds x batches.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .stats import Paired, paired_difference

GROUP = ["estimator", "sigma", "eps", "step_layer", "dim"]
MISSING = -1.0  # stands for "no sigma/eps" in merge keys (NaN keys do not compare equal)


def _filled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(sigma=frame["sigma"].fillna(MISSING), eps=frame["eps"].fillna(MISSING),
                        step_layer=frame["step_layer"].astype(str))


def at_best_lr(runs: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Each group's rows at its best lr: one loss decrease per (seed, batch)."""
    runs, best = _filled(runs), _filled(best)
    rows = runs.merge(best[[*GROUP, "best_lr"]], on=GROUP)
    return rows[np.isclose(rows["lr"], rows["best_lr"], rtol=1e-12, atol=0)]


def _columns(p: Paired) -> dict:
    return {"diff_mean": p.mean, "diff_ci95_low": p.low, "diff_ci95_high": p.high, "n_pairs": p.n}


def verdict(row) -> str:
    """The verdict (:mod:`bnnprobe.analysis.stats`) of a table row's paired difference."""
    return Paired(row["diff_mean"], row["diff_ci95_low"], row["diff_ci95_high"], row["n_pairs"], 0, 0).verdict


def _by_pair(rows: pd.DataFrame) -> pd.Series:
    return rows.set_index(["seed", "batch"])["loss_decrease"]


def layer_comparisons(runs: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Per (dim, step layer, estimator) at its reference setting: the best loss decrease, its share of
    the same estimator's all-layer best decrease, and the paired difference to CDG's best decrease
    stepping the same layer."""
    ref_runs = runs[runs["reference_setting"].astype(bool)]
    ref_best = best[best["reference_setting"].astype(bool)]
    rows = at_best_lr(ref_runs, ref_best)
    out = []
    for (dim, layer), at in rows.groupby(["dim", "step_layer"], sort=True):
        cdg = at[at["estimator"] == "cdg"]
        for name, own in at.groupby("estimator", sort=True):
            everything = rows[(rows["dim"] == dim) & (rows["step_layer"] == "all") & (rows["estimator"] == name)]
            share = own["loss_decrease"].mean() / everything["loss_decrease"].mean() if len(everything) else math.nan
            entry = {"dim": dim, "step_layer": layer, "estimator": name,
                     "best_loss_decrease_mean": own["loss_decrease"].mean(), "share_of_all_layers": share}
            entry.update(_columns(paired_difference(_by_pair(own), _by_pair(cdg))) if len(cdg) and name != "cdg" else
                         {"diff_mean": math.nan, "diff_ci95_low": math.nan, "diff_ci95_high": math.nan,
                          "n_pairs": 0})
            out.append(entry)
    table = pd.DataFrame(out)
    table["vs_cdg"] = [verdict(r) if r["estimator"] != "cdg" else "" for _, r in table.iterrows()]
    return table


def knob_comparisons(runs: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Per estimator run at several sigma (eps) values and dim, steps of all layers: each value's best
    loss decrease and its paired difference to the reference value's."""
    runs, best = runs[runs["step_layer"].astype(str) == "all"], best[best["step_layer"].astype(str) == "all"]
    rows = at_best_lr(runs, best)
    rows = rows.assign(knob=np.where(rows["sigma"] != MISSING, rows["sigma"], rows["eps"]))
    out = []
    for (name, dim), at in rows.groupby(["estimator", "dim"], sort=True):
        if at["knob"].nunique() < 2:
            continue
        reference = at[at["reference_setting"].astype(bool)]
        for knob, own in at.groupby("knob", sort=True):
            entry = {"estimator": name, "dim": dim, "knob": "sigma" if (own["sigma"] != MISSING).all() else "eps",
                     "value": knob, "reference": bool(own["reference_setting"].astype(bool).all()),
                     "best_loss_decrease_mean": own["loss_decrease"].mean(),
                     "cos_to_smoothed_mean": own["cos_to_smoothed"].mean()}
            entry.update(_columns(paired_difference(_by_pair(own), _by_pair(reference))))
            out.append(entry)
    table = pd.DataFrame(out, columns=["estimator", "dim", "knob", "value", "reference", "best_loss_decrease_mean",
                                       "cos_to_smoothed_mean", "diff_mean", "diff_ci95_low", "diff_ci95_high",
                                       "n_pairs"])
    table["vs_reference"] = [verdict(r) if not r["reference"] else "" for _, r in table.iterrows()]
    return table


def _ci(row) -> str:
    return f"{row['diff_mean']:+.3g} [{row['diff_ci95_low']:+.3g}, {row['diff_ci95_high']:+.3g}]"


def findings_markdown(layers: pd.DataFrame, knobs: pd.DataFrame) -> str:
    lines = ["# Findings: the one-step probe per layer and along sigma / eps", "",
             "Generated from `probe_runs.csv` and `probe_best.csv`. Differences are paired over (seed, batch), each "
             "gradient at its own best lr, mean [95% CI]; 'indistinguishable' means the CI contains 0.", ""]
    lines += ["## Which layer carries the loss decrease", ""]
    stepped = sorted({str(x) for x in layers["step_layer"]} - {"all"}, key=lambda v: v.zfill(4))
    if not stepped:
        lines += ["probe.step_layers has only `all`: no per-layer steps in this config.", ""]
    else:
        last = stepped[-1]
        lines += [f"Best loss decrease of a step of one layer as a share of the same estimator's all-layer best "
                  f"(ratio of means; layer {last} is the last one listed).", "",
                  "| dim | estimator | " + " | ".join(f"layer {layer}" for layer in stepped) + " |",
                  "| --- | --- | " + " | ".join("---" for _ in stepped) + " |"]
        for (dim, name), at in layers.groupby(["dim", "estimator"], sort=True):
            shares = at.set_index("step_layer")["share_of_all_layers"]
            cells = [f"{shares.get(layer, math.nan):.0%}" if np.isfinite(shares.get(layer, math.nan)) else "-"
                     for layer in stepped]
            lines.append(f"| {dim} | {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Where the estimators differ from CDG", ""]
    others = layers[layers["estimator"] != "cdg"]
    for layer in ["all", *stepped]:
        at = others[others["step_layer"] == layer]
        if at.empty:
            continue
        lines.append(f"### {'all layers' if layer == 'all' else 'layer ' + layer + ' only'}")
        lines.append("")
        for dim, by_dim in at.groupby("dim", sort=True):
            parts = [f"{r['estimator']} {r['vs_cdg']} {_ci(r)}" for _, r in by_dim.iterrows()]
            counts = by_dim["vs_cdg"].value_counts()
            lines.append(f"- dim {dim}: {counts.get('larger', 0)} larger than CDG, {counts.get('smaller', 0)} "
                         f"smaller, {counts.get('indistinguishable', 0)} indistinguishable, "
                         f"{counts.get('identical', 0)} identical: " + "; ".join(parts))
        lines.append("")
    lines += ["## Sigma and eps", ""]
    if knobs.empty:
        lines += ["No estimator runs at more than one sigma or eps in this config.", ""]
    for (name, dim), at in knobs.groupby(["estimator", "dim"], sort=True):
        reference = at[at["reference"]].iloc[0]
        values = [f"{r['knob']} {r['value']:g} {r['vs_reference']} {_ci(r)}" for _, r in at[~at["reference"]].iterrows()]
        best_row = at.loc[at["best_loss_decrease_mean"].idxmax()]
        lines.append(f"- {name}, dim {dim}, against its reference {reference['knob']} {reference['value']:g}: "
                     + "; ".join(values) + f" (largest mean at {best_row['knob']} {best_row['value']:g})")
    lines.append("")
    return "\n".join(lines)
