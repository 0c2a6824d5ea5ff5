"""One look for every figure (torch-free): each estimator's and schedule's colour, marker and line, the
page the figures are drawn for, and the drawing choices every study's figures share.

Colours come from the estimator registry's family list (:data:`bnnprobe.estimators.registry.FAMILIES`):
a family has one hue, its members (``nes-500``, ``nes-5000``; ``ste-vanilla``, ``ste-steep``) shades of it
with their own line style, so that ``ste-vanilla`` is the same colour in every panel of every figure. CDG,
the reference, is always a thick black line with round markers, drawn under the others (so that a curve
equal to it stays visible on top of it); the exact smoothed coordinate gradient is grey and dashed.

Figures are drawn at their printed size: at most :data:`PAGE_WIDTH` inches wide, no text smaller than
:data:`MIN_FONT` points, saved at :data:`DPI` (written into the PNG's metadata).
"""

from __future__ import annotations

import colorsys
import math
import re

from .estimators.registry import FAMILIES, STE_VARIANTS, family_of

PAGE_WIDTH = 7.0  # inches: one page's text width, the most a saved figure may be
WIDTH = 6.9  # inches: the width figures are drawn at (saving crops to the drawn content, padded 0.02 in)
MAX_HEIGHT = 9.0  # inches: one page's text height
DPI = 200
MIN_FONT = 7.0  # points, at the saved size

RC = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
      "legend.fontsize": 7, "legend.title_fontsize": 7, "figure.titlesize": 8.5, "figure.dpi": DPI,
      "savefig.dpi": DPI, "lines.linewidth": 1.2, "lines.markersize": 4, "axes.linewidth": 0.6,
      "legend.frameon": False}

REFERENCE = "cdg"
# hues for the families other than the two references, in the registry's order (nes, nes-coord, ste,
# guided-es, fogzo, snes, stochastic-ste, span, smc, metropolis: no two alike that share a study); a family
# added later takes the next one (the list repeats, lighter, past its end)
HUES = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#BCBD22", "#8C564B", "#7F3C8D", "#17BECF",
        "#E7298A", "#1F3A93", "#B8860B"]
MARKERS = ["s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*", "d"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1.5)), (0, (3, 1, 1, 1, 1, 1))]
FIXED = {"cdg": {"color": "#000000", "marker": "o", "linestyle": "-", "linewidth": 2.2, "zorder": 2},
         "smoothed": {"color": "#7F7F7F", "marker": "o", "linestyle": "--", "linewidth": 1.4, "zorder": 3,
                      "markerfacecolor": "white"}}


def _family_order() -> list[str]:
    return [name for name in FAMILIES if name not in FIXED]


def _shade(hex_colour: str, k: int) -> str:
    """Member ``k`` of a family: the family's hue at a lightness (and a small hue shift) of its own
    (0: the hue itself)."""
    r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    h, light, s = colorsys.rgb_to_hls(r, g, b)
    lightness = [light, 0.58, 0.25, 0.47, 0.35, 0.68]
    shift = [0.0, 0.0, 0.0, 0.035, -0.035, 0.02]
    r, g, b = colorsys.hls_to_rgb((h + shift[k % len(shift)]) % 1, lightness[k % len(lightness)], s)
    return "#" + "".join(f"{round(c * 255):02X}" for c in (r, g, b))


def member_index(name: str) -> int:
    """Which member of its family ``name`` is: an STE variant's place in the registry's list, else the
    half-decade of the number in its name (``nes-500``: 5, ``nes-5000``: 7), so that members a factor of
    ten apart never share a shade; 0 for a family of one."""
    if family_of(name).name == "ste":
        return STE_VARIANTS.index(name.split("-", 1)[1])
    number = re.search(r"-([0-9]+)$", name)
    if not number:
        return 0
    return int(math.floor(2 * math.log10(max(int(number.group(1)), 1)) + 1e-9))


def estimator_style(name: str) -> dict:
    """Matplotlib keyword arguments (colour, marker, line style, width, z-order) of estimator ``name``,
    the same in every figure."""
    fam = family_of(name)
    if fam.name in FIXED:
        return dict(FIXED[fam.name])
    order = _family_order().index(fam.name)
    hue = HUES[order % len(HUES)]
    if order >= len(HUES):
        hue = _shade(hue, 2)
    k = member_index(name)
    shade = k if fam.name == "ste" else (k + 1) // 2  # counted families: a shade per decade
    return {"color": _shade(hue, shade), "marker": MARKERS[order % len(MARKERS)],
            "linestyle": LINESTYLES[k % len(LINESTYLES)], "linewidth": 1.2, "zorder": 3}


def schedule_style(schedule: str) -> dict:
    """A training schedule's style, for curves of many points: a single estimator's colour and line style
    (the STE variants, shades of one hue, differ in both), no markers; a switch ``A>B`` takes B's colour, dashed and thinner, with B's marker (hollow) every tenth of
    the line, so that a switch to one STE stays apart from that STE's own run of the same hue; the restart
    ``A>A`` is A's colour, dotted, with hollow circles."""
    first, _, then = schedule.partition(">")
    if not then:
        style = estimator_style(first)
        style.update(marker=None)
        return style
    style = estimator_style(then)
    style.update(linestyle="--", linewidth=1.1, zorder=3, markerfacecolor="white", markevery=0.1, markersize=3.5)
    if then == first:
        style.update(linestyle=":", linewidth=1.3, marker="o")
    return style


def apply() -> None:
    """Set matplotlib's fonts and sizes for the printed page (every figure module calls it)."""
    import matplotlib

    matplotlib.rcParams.update(RC)


def panel_grid(n: int, cols: int | None = None, panel_height: float = 2.3, width: float = WIDTH,
               extra_height: float = 0.7, **kwargs):
    """A figure of ``n`` panels ``cols`` to a row (at most 3, fewer for fewer panels), page wide; unused
    panels hidden. Returns (figure, a flat list of the ``n`` axes)."""
    import matplotlib.pyplot as plt

    cols = cols or min(n, 2 if n <= 4 else 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width, panel_height * rows + extra_height), squeeze=False,
                             layout="constrained", **kwargs)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def suptitle(fig, text: str, width: int = 100) -> None:
    """The figure's title, each of its lines wrapped to the page (a title wider than the figure would
    widen the saved image)."""
    import textwrap

    fig.suptitle("\n".join(textwrap.fill(line, width) for line in text.split("\n")))


def panel_title(ax, text: str, cols: int, width: float = WIDTH) -> None:
    """A panel's title, wrapped to the panel's width (``cols`` panels to a row of ``width`` inches)."""
    import textwrap

    chars = max(int(width / cols * 72 / (0.55 * RC["axes.titlesize"])), 12)
    ax.set_title(textwrap.fill(text, chars))


def legend_below(fig, handles: list, labels: list, title: str | None = None, cols: int = 4) -> None:
    """One legend for the whole figure, under its panels (the styles are the same in every panel)."""
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(cols, len(handles)), title=title)


def collect_legend(axes) -> tuple[list, list]:
    """Every labelled artist of ``axes`` once, in the order first drawn."""
    seen = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    return list(seen.values()), list(seen.keys())




def at_edge(ax, x, edge: str, label: str | None, colour: str = "#444444", marker: str | None = None):
    """Points that have no place on a log axis (a non-positive mean; a diverged run) as open markers at
    the axis' lower (``edge`` = "bottom") or upper ("top") edge, never as numbers: x in data units, y in
    axes units. Returns the collection (``gid`` "edge-bottom" or "edge-top"), or None."""
    x = list(x)
    if not x:
        return None
    y = 0.0 if edge == "bottom" else 1.0
    marker = marker or ("v" if edge == "bottom" else "x")
    filled = {"facecolors": "none", "edgecolors": colour} if marker not in ("x", "+") else {"color": colour}
    drawn = ax.scatter(x, [y] * len(x), transform=ax.get_xaxis_transform(), clip_on=False, marker=marker, s=26,
                       linewidths=1.0, zorder=6, label=label, gid=f"edge-{edge}", **filled)
    import numpy as np

    ax.update_datalim(np.column_stack([x, np.ones(len(x))]), updatex=True, updatey=False)  # x range covers them
    ax.autoscale_view()
    return drawn


DODGE_SPREAD = 0.3  # of a factor of two: how far apart the first and last estimator sit at one dim


def dodge(frame, x: str, order: list[str], spread: float = DODGE_SPREAD):
    """``frame`` with ``x`` (values on a log axis, such as dims) moved a little per estimator, in the
    ``order`` given, so that error bars of estimators at the same value sit side by side instead of on top
    of each other: estimator i of k at ``x * 2 ** ((i / (k - 1) - 1/2) * spread)``. The ticks stay at the
    values themselves."""
    k = len(order)
    if k < 2:
        return frame
    shift = frame["estimator"].map({name: (i / (k - 1) - 0.5) * spread for i, name in enumerate(order)}).fillna(0.0)
    return frame.assign(**{x: frame[x].astype(float) * 2.0 ** shift})


def log_ticks(ax, axis: str = "y") -> None:
    """Label a log axis' minor ticks where it spans less than two decades (2 and 5 of each decade; 2, 3, 5
    and 7 within less than one), so that every part of its range has a number. Call it once the axis'
    limits are final."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator

    low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
    if low <= 0 or high <= 0 or abs(math.log10(high / low)) >= 2:
        return
    target = ax.yaxis if axis == "y" else ax.xaxis
    if abs(math.log10(high / low)) < 0.3:  # within a factor of two: matplotlib's own ticks, as plain numbers
        from matplotlib.ticker import FormatStrFormatter

        target.set_major_formatter(FormatStrFormatter("%.4g"))
        target.set_minor_formatter(FormatStrFormatter("%.4g"))
        return
    subs = (2.0, 3.0, 5.0, 7.0) if abs(math.log10(high / low)) < 1 else (2.0, 5.0)
    target.set_minor_locator(LogLocator(base=10, subs=subs))
    target.set_minor_formatter(LogFormatterSciNotation(labelOnlyBase=False, minor_thresholds=(2, 2)))


def value_ticks(ax, values, axis: str = "x") -> None:
    """Ticks at exactly ``values`` (the dims a study ran), written as plain numbers, on a log axis."""
    from matplotlib.ticker import NullLocator

    values = sorted({float(v) for v in values})
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xticks if axis == "x" else ax.set_yticks)(values, [f"{v:g}" for v in values])
    target.set_minor_locator(NullLocator())


def fit_limits(ax, values, axis: str = "y", bounds: tuple | None = None, pad: float = 0.06) -> None:
    """Linear limits fitted to ``values`` (finite ones), padded, within ``bounds`` where given."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not values.size:
        return
    low, high = float(values.min()), float(values.max())
    span = max(high - low, 1e-3)
    low, high = low - pad * span, high + pad * span
    if bounds:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    (ax.set_ylim if axis == "y" else ax.set_xlim)(low, high)


def mean_ci(values_by_group):
    """Mean, Student-t 95% CI half-width and n per group of a grouped series whose rows are independent
    units (seeds): a frame with columns mean, half, n (half NaN where n < 2)."""
    import numpy as np

    from .analysis.stats import ci95_halfwidth

    stats = values_by_group.agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    stats["half"] = ci95_halfwidth(stats["std"] / np.sqrt(stats["n"]), stats["n"])
    return stats[["mean", "half", "n"]]
