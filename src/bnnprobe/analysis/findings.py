"""Findings of the MLP probe, generated from its tables (so they hold for any config), stated either
way with their confidence intervals: how the estimators rank, which layer carries the loss decrease,
where the estimators differ from CDG, and what sigma (eps) changes.

The unit is the student (a seed, its batches averaged first). Every estimator's lr is chosen out of
sample (:mod:`bnnprobe.analysis.crossfit`): on the other seeds, then scored on this one. Comparisons are
paired over seeds: two estimators' held-out decreases on the same student are one observation, and their
mean difference gets a Student-t 95% CI. A difference whose CI excludes 0 is stated as larger/smaller,
else as indistinguishable at this number of seeds; a comparison involving a best lr at the edge of the
grid is undetermined (the decrease there is only a lower bound).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .stats import Paired, paired_difference, verdict

GROUP = ["estimator", "sigma", "eps", "step_layer", "dim"]
MISSING = -1.0  # stands for "no sigma/eps" in merge keys (NaN keys do not compare equal)
# what a comparison reports of each estimator besides the difference: the cross-fitted decrease, the
# in-sample best (the log's own figure) and the winner's bias between them, the gradient's scale and angle
DESCRIPTION = ["best_loss_decrease_mean", "in_sample_loss_decrease_mean", "winner_bias", "grad_norm_mean",
               "cos_to_cdg_mean", "near_linear", "lr_undetermined"]
DIFFERENCE = ["diff_mean", "diff_ci95_low", "diff_ci95_high", "n_pairs"]


def _filled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(sigma=frame["sigma"].fillna(MISSING), eps=frame["eps"].fillna(MISSING),
                        step_layer=frame["step_layer"].astype(str))


def _columns(p: Paired) -> dict:
    return {"diff_mean": p.mean, "diff_ci95_low": p.low, "diff_ci95_high": p.high, "n_pairs": p.n}


NO_DIFFERENCE = {"diff_mean": math.nan, "diff_ci95_low": math.nan, "diff_ci95_high": math.nan, "n_pairs": 0}


def _by_seed(rows: pd.DataFrame) -> pd.Series:
    """The held-out loss decreases of one group, by seed."""
    return rows.set_index("seed")["loss_decrease"]


def _winner_bias(in_sample: float, held_out: float) -> float:
    """In-sample minus cross-fitted decrease; 0 where the folds chose the in-sample lr every time (the two means
    then differ only by summation order)."""
    bias = in_sample - held_out
    return 0.0 if abs(bias) <= 1e-9 * max(abs(in_sample), abs(held_out)) else bias


def _describe(best_row: pd.Series, own: pd.DataFrame) -> dict:
    return {"best_loss_decrease_mean": own["loss_decrease"].mean(),
            "in_sample_loss_decrease_mean": float(best_row["loss_decrease_mean"]),
            "winner_bias": _winner_bias(float(best_row["loss_decrease_mean"]), own["loss_decrease"].mean()),
            "grad_norm_mean": own["grad_norm"].mean(), "cos_to_cdg_mean": own["cos_to_cdg"].mean(),
            "near_linear": bool(best_row["near_linear"]), "lr_undetermined": bool(best_row["lr_undetermined"])}


def _best_rows(best: pd.DataFrame) -> dict:
    return {tuple(row[GROUP]): row for _, row in _filled(best).iterrows()}


def layer_comparisons(folds: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Per (dim, step layer, estimator) at its reference setting: the cross-fitted best loss decrease, its
    share of the same estimator's all-layer one, the description (:data:`DESCRIPTION`) and the paired
    difference to CDG stepping the same layer (``vs_cdg``: the verdict, undetermined at a grid edge)."""
    folds = _filled(folds[folds["reference_setting"].astype(bool)])
    best_of = _best_rows(best[best["reference_setting"].astype(bool)])
    out = []
    for (dim, layer), at in folds.groupby(["dim", "step_layer"], sort=True):
        cdg = at[at["estimator"] == "cdg"]
        for name, own in at.groupby("estimator", sort=True):
            row = best_of[tuple(own.iloc[0][GROUP])]
            everything = folds[(folds["dim"] == dim) & (folds["step_layer"] == "all") & (folds["estimator"] == name)]
            share = own["loss_decrease"].mean() / everything["loss_decrease"].mean() if len(everything) else math.nan
            entry = {"dim": dim, "step_layer": layer, "estimator": name, **_describe(row, own),
                     "share_of_all_layers": share}
            if len(cdg) and name != "cdg":
                entry.update(_columns(paired_difference(_by_seed(own), _by_seed(cdg))))
                edge = [n for n, r in ((name, row), ("cdg", best_of[tuple(cdg.iloc[0][GROUP])]))
                        if r["lr_undetermined"]]
                entry["vs_cdg"] = verdict(Paired(entry["diff_mean"], entry["diff_ci95_low"], entry["diff_ci95_high"],
                                                 entry["n_pairs"], 0, 0), edge)
            else:
                entry.update(NO_DIFFERENCE, vs_cdg="")
            out.append(entry)
    return pd.DataFrame(out, columns=["dim", "step_layer", "estimator", *DESCRIPTION, "share_of_all_layers",
                                      *DIFFERENCE, "vs_cdg"])


def knob_comparisons(folds: pd.DataFrame, best: pd.DataFrame) -> pd.DataFrame:
    """Per estimator run at several sigma (eps) values and dim, steps of all layers: each value's
    cross-fitted best loss decrease and its paired difference to the reference value's."""
    folds = _filled(folds[folds["step_layer"].astype(str) == "all"])
    best_of = _best_rows(best[best["step_layer"].astype(str) == "all"])
    folds = folds.assign(knob=np.where(folds["sigma"] != MISSING, folds["sigma"], folds["eps"]))
    out = []
    for (name, dim), at in folds.groupby(["estimator", "dim"], sort=True):
        if at["knob"].nunique() < 2:
            continue
        reference = at[at["reference_setting"].astype(bool)]
        reference_row = best_of[tuple(reference.iloc[0][GROUP])] if len(reference) else None
        for knob, own in at.groupby("knob", sort=True):
            row = best_of[tuple(own.iloc[0][GROUP])]
            is_reference = bool(own["reference_setting"].astype(bool).all())
            entry = {"estimator": name, "dim": dim, "knob": "sigma" if (own["sigma"] != MISSING).all() else "eps",
                     "value": knob, "reference": is_reference, **_describe(row, own),
                     "cos_to_smoothed_mean": own["cos_to_smoothed"].mean(),
                     **_columns(paired_difference(_by_seed(own), _by_seed(reference)))}
            edge = [f"{name} at {entry['knob']} {value:g}" for value, r in [(knob, row)] + (
                [(reference["knob"].iloc[0], reference_row)] if reference_row is not None else [])
                if r["lr_undetermined"]]
            entry["vs_reference"] = "" if is_reference else verdict(
                Paired(entry["diff_mean"], entry["diff_ci95_low"], entry["diff_ci95_high"], entry["n_pairs"], 0, 0),
                edge)
            out.append(entry)
    return pd.DataFrame(out, columns=["estimator", "dim", "knob", "value", "reference", *DESCRIPTION,
                                      "cos_to_smoothed_mean", *DIFFERENCE, "vs_reference"])


def _ci(row) -> str:
    return f"{row['diff_mean']:+.3g} [{row['diff_ci95_low']:+.3g}, {row['diff_ci95_high']:+.3g}]"


def _ranking(layers: pd.DataFrame) -> list[str]:
    lines = ["## How the estimators rank (all layers stepped)", "",
             "Each estimator at its own lr chosen out of sample, ranked by its cross-fitted best loss decrease "
             "(mean over seeds), beside the in-sample best (the maximum over the lr grid on the same rows: the "
             "log's figure) and the winner's bias between the two, the gradient's norm and its cosine to CDG. "
             "*near-linear*: at its best lr the decrease is still proportional to the lr (within "
             "10% of one grid step below): there the ranking orders gradient scales as much as directions. "
             "*edge*: its best lr is at the edge of the grid, its decrease a lower bound, its rank undetermined. "
             "A ranking describes; the paired comparisons against CDG below are the tests.", ""]
    at = layers[layers["step_layer"] == "all"]
    for dim, frame in at.groupby("dim", sort=True):
        frame = frame.sort_values("best_loss_decrease_mean", ascending=False)
        lines += [f"dim {dim}:", "", "| rank | estimator | best decrease (cross-fitted) | in-sample | winner's bias | "
                  "gradient norm | cos to CDG | note |", "|---|---|---|---|---|---|---|---|"]
        for rank, row in enumerate(frame.itertuples(), start=1):
            note = "; ".join(word for word, flag in (("edge", row.lr_undetermined), ("near-linear", row.near_linear))
                             if flag)
            lines.append(f"| {'-' if row.lr_undetermined else rank} | {row.estimator} | "
                         f"{row.best_loss_decrease_mean:.4g} | {row.in_sample_loss_decrease_mean:.4g} | "
                         f"{row.winner_bias:+.2g} | {row.grad_norm_mean:.3g} | {row.cos_to_cdg_mean:.3f} | {note} |")
        lines.append("")
    return lines


def findings_markdown(layers: pd.DataFrame, knobs: pd.DataFrame) -> str:
    n = int(layers["n_pairs"].max()) if len(layers) and layers["n_pairs"].notna().any() else 0
    lines = ["# Findings: the one-step probe per layer and along sigma / eps", "",
             "Generated from `probe_crossfit.csv` and `probe_best.csv`. The unit is the student (seed), its "
             "batches averaged first. Each estimator's lr is chosen out of sample: on the other seeds, then its "
             "decrease is scored on the held-out one (cross-fitting). Differences are paired over seeds, mean "
             "[95% CI]; 'indistinguishable' means the CI contains 0; 'undetermined' means a best lr sits at the "
             f"edge of the grid tried. Pairs per comparison: up to {n}.", ""]
    lines += _ranking(layers)
    lines += ["## Which layer carries the loss decrease", ""]
    stepped = sorted({str(x) for x in layers["step_layer"]} - {"all"}, key=lambda v: v.zfill(4))
    if not stepped:
        lines += ["probe.step_layers has only `all`: no per-layer steps in this config.", ""]
    else:
        last = stepped[-1]
        lines += [f"Cross-fitted best loss decrease of a step of one layer as a share of the same estimator's "
                  f"all-layer one (ratio of means; layer {last} is the last one listed).", "",
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
            edge = int(by_dim["vs_cdg"].str.startswith("undetermined: the best lr").sum())
            lines.append(f"- dim {dim}: {counts.get('larger', 0)} larger than CDG, {counts.get('smaller', 0)} "
                         f"smaller, {counts.get('indistinguishable', 0)} indistinguishable, "
                         f"{counts.get('identical', 0)} identical, {edge} undetermined (an lr at the grid's edge): "
                         + "; ".join(parts))
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
    if n and n < 3:
        lines += [f"With {n} seeds a t interval has {n - 1} degree(s) of freedom: it can hardly exclude 0; add "
                  "seeds (probe.seeds) before reading these verdicts.", ""]
    return "\n".join(lines)
