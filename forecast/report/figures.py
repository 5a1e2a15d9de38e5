"""Figures of a report, drawn with arviz_plots (matplotlib backend) and embedded as PNG.

Each function takes the fitted DataTree and returns a ``data:`` URI, so the HTML page
needs no network and no side files.
"""

from __future__ import annotations

import base64
import io
import sys
from typing import Any

from forecast.summaries import HDI_PROB


def _setup():
    import warnings

    import matplotlib

    # arviz_plots passes on xarray's FutureWarnings; they are not the user's concern
    warnings.filterwarnings("ignore", category=FutureWarning)
    # a constant (a belief written as a bare number) has a degenerate density; that is fine
    warnings.filterwarnings("ignore", message="Your data appears to have a single value")
    warnings.filterwarnings("ignore", message=".*look binary.*")

    matplotlib.use("Agg")
    _no_lazy_jax_import()
    import arviz_plots as azp

    return azp


def _no_lazy_jax_import() -> None:
    """Keep matplotlib from importing all of JAX to learn a NumPy array is not a JAX array.

    arviz_base registers ``jax`` as a lazy module; matplotlib's ``_is_jax_array`` asks it
    for ``jax.Array`` on every plotted array, which loads JAX (1.3 s of a prior-only
    run, which otherwise never needs it). While the lazy module is unloaded no JAX
    array can exist, so the answer is "no" without asking.
    """
    import importlib.util

    from matplotlib import cbook

    real = getattr(cbook, "_is_jax_array", None)
    if real is None or getattr(real, "lazy_aware", False):
        return

    def is_jax_array(x) -> bool:
        if isinstance(sys.modules.get("jax"), importlib.util._LazyModule):
            return False
        return real(x)

    is_jax_array.lazy_aware = True
    cbook._is_jax_array = is_jax_array


def _subset(tree, var_names: list[str], groups=("prior", "posterior")):
    """Only the plotted variables, so that unrelated dims (like ``group``) stay out."""
    import xarray as xr

    return xr.DataTree.from_dict(
        {g: tree[g].to_dataset()[var_names] for g in groups if g in tree.children}
    )


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def wrap(text: str, width: int = 42, lines: int = 3) -> str:
    """A label the user wrote, broken into a few short lines for a panel title."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width, max_lines=lines, placeholder=" …"))


def _percent_texts(ax) -> None:
    """The point estimate arviz_plots writes (``0.037 mean``) in percent, as the axis is."""
    for t in ax.texts:
        value, *rest = t.get_text().split(" ", 1)
        try:
            x = float(value)
        except ValueError:
            continue
        digits = max(len(value.split(".")[-1]) - 2, 0) if "." in value else 0
        t.set_text(" ".join([f"{100 * x:.{digits}f}%", *rest]))


def point_masses(ds) -> dict[str, float]:
    """Each panel of ``ds`` whose draws all have one value -> that value.

    Keys are the panels' own titles as arviz_plots writes them: the variable's name,
    then the coordinate on a second line (``p_stage\nagreement``).
    """
    import numpy as np

    out = {}
    for name, da in ds.data_vars.items():
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        if not extra:
            if np.ptp(da.values) == 0:
                out[name] = float(da.values.flat[0])
            continue
        stacked = da.stack(_panel=extra)
        for i, coord in enumerate(stacked["_panel"].values):
            values = stacked.isel(_panel=i).values
            if np.ptp(values) == 0:
                parts = coord if isinstance(coord, tuple) else (coord,)
                label = ", ".join(map(str, parts))
                out[f"{name}\n{label}"] = float(values.flat[0])
    return out


def _draw_point(ax, value: float, percent: bool) -> None:
    """A point mass as what it is: one value, a marker on a line, never a density."""
    title = ax.get_title()
    ax.cla()
    ax.axvline(value, color="#3465a4", lw=2)
    ax.plot([value], [0.5], "o", color="#3465a4", ms=8)
    shown = f"{100 * value:.3g}%" if percent else f"{value:.3g}"
    ax.text(value, 0.75, f" always {shown}\n (a single value)", fontsize=8, va="center")
    span = max(abs(value) * 0.5, 0.05 if percent else 0.5)
    ax.set_xlim(value - span, value + span)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_title(title)


def _finish(
    pc,
    xlabel: str,
    title: str | None = None,
    titles: dict[str, str] | None = None,
    percent: bool = False,
    points: dict[str, float] | None = None,
) -> str:
    """Label every panel's x axis, title the panels in words (``titles``: the variable's
    own title -> the label the user wrote), draw each point mass (``points``: a panel's
    own title -> its single value) as a point, put probability axes in percent, add a
    figure title, and return the PNG."""
    from matplotlib.ticker import PercentFormatter

    fig = pc.viz["figure"].item()
    for ax in fig.axes:
        if ax.get_legend() is not None and not ax.lines and not ax.collections:
            # arviz_plots' legend panel: under the panel titles, not over them
            ax.get_legend().set_loc("upper right")
            ax.get_legend().set_bbox_to_anchor((1.0, 0.85), transform=fig.transFigure)
            continue
        own = ax.get_title()
        if points and own in points:
            _draw_point(ax, points[own], percent)
        ax.set_xlabel(xlabel)
        if titles is not None and own in titles:
            ax.set_title(wrap(titles[own]), fontsize=9)
        if percent:
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            _percent_texts(ax)
    if title:
        fig.suptitle(title)
    # room for the wrapped panel titles and the axis labels: nothing overlaps
    fig.set_layout_engine("constrained")
    return _png(fig)


def p_success_density(tree, group: str) -> str:
    """P(success): density with its 90% HDI and mean."""
    azp = _setup()
    pc = azp.plot_dist(
        tree,
        var_names=["p_success"],
        group=group,
        ci_kind="hdi",
        ci_prob=HDI_PROB,
        point_estimate="mean",
        backend="matplotlib",
        figure_kwargs={"figsize": (7, 3)},
    )
    return _finish(
        pc,
        "probability that the talks succeed (thick bar: 90% HDI)",
        titles={"p_success": "Probability that the talks succeed"},
        percent=True,
        points=point_masses(tree[group].to_dataset()[["p_success"]]),
    )


def prior_vs_posterior(
    tree,
    var_names: list[str],
    xlabel: str,
    title: str | None = None,
    titles: dict[str, str] | None = None,
    percent: bool = False,
) -> str:
    """Prior and posterior densities, one panel per variable, titled ``titles``."""
    azp = _setup()
    n = len(var_names)
    size = (6, 3) if n == 1 else (3.6 * min(n, 3), 2.6 * ((n + 2) // 3) + 0.3)
    pc = azp.plot_prior_posterior(
        _subset(tree, var_names),
        var_names=var_names,
        backend="matplotlib",
        col_wrap=min(n, 3),
        figure_kwargs={"figsize": size},
    )
    # a point mass before and after the data (a constant) is one point, not two densities
    before = point_masses(tree["prior"].to_dataset()[var_names])
    after = point_masses(tree["posterior"].to_dataset()[var_names])
    points = {k: v for k, v in after.items() if before.get(k) == v}
    return _finish(pc, xlabel, title, titles, percent, points)


def distributions(
    tree,
    var_names: list[str],
    group: str,
    xlabel: str,
    title: str | None = None,
    titles: dict[str, str] | None = None,
    percent: bool = False,
    constants: dict[str, float] | None = None,
) -> str:
    """Densities with 90% HDIs of one group's variables (stage summaries, prior-only
    beliefs); ``constants`` (a name -> its value) are added as panels of their own, and
    every point mass is drawn as a point."""
    import numpy as np
    import xarray as xr

    azp = _setup()
    full = tree[group].to_dataset()
    ds = full[var_names]
    if constants:
        shape = (full.sizes["chain"], full.sizes["draw"])
        ds = ds.assign(
            {k: (("chain", "draw"), np.full(shape, float(v))) for k, v in constants.items()}
        )
        var_names = [*var_names, *constants]
        tree = xr.DataTree.from_dict({group: ds})
    n = sum(int(ds[v].size // (ds.sizes["chain"] * ds.sizes["draw"])) for v in var_names)
    pc = azp.plot_dist(
        _subset(tree, var_names, (group,)),
        var_names=var_names,
        group=group,
        ci_kind="hdi",
        ci_prob=HDI_PROB,
        point_estimate="mean",
        backend="matplotlib",
        col_wrap=min(n, 3),
        figure_kwargs={"figsize": (3.6 * min(n, 3), 2.6 * ((n + 2) // 3) + 0.3)},
    )
    return _finish(pc, xlabel, title, titles, percent, point_masses(ds))


def rank_plot(
    tree, var_names: list[str], title: str | None = None, titles: dict[str, str] | None = None
) -> str:
    """Rank ECDFs per chain: chains that mix well stay inside the envelope."""
    azp = _setup()
    n = len(var_names)
    pc = azp.plot_rank(
        _subset(tree, var_names, ("posterior",)),
        var_names=var_names,
        backend="matplotlib",
        col_wrap=min(n, 3),
        figure_kwargs={"figsize": (3.6 * min(n, 3), 2.4 * ((n + 2) // 3))},
    )
    return _finish(pc, "fractional rank of the draw (one line per chain)", title, titles)


def overlaid_p_success(
    draws: dict[str, Any],
    dim: str = "scenario",
    xlabel: str = "probability that the talks succeed (dot: mean)",
    title: str = "Probability that the talks succeed",
    percent: bool = True,
) -> str:
    """Several distributions on one axis (arviz_plots, colour by ``dim``); a probability's
    axis in percent (``percent``), a value's as it is."""
    import numpy as np
    import xarray as xr

    azp = _setup()
    n = min(len(d) for d in draws.values())
    stacked = np.stack([np.asarray(d)[:n] for d in draws.values()], axis=-1)[None]
    ds = xr.Dataset(
        {"p_success": (("chain", "draw", dim), stacked)},
        coords={dim: list(draws)},
    )
    pc = azp.plot_dist(
        xr.DataTree.from_dict({"posterior": ds}),
        var_names=["p_success"],
        cols=[],
        aes={"color": [dim]},
        backend="matplotlib",
        visuals={"point_estimate_text": False, "credible_interval": False},
        figure_kwargs={"figsize": (7, 3)},
    )
    pc.add_legend(dim)
    # a value scale is a sentence or two: on a few lines, or it shrinks the figure
    return _finish(pc, wrap(xlabel, 90, 4), titles={"p_success": title}, percent=percent)


def tornado(
    rows: list[dict],
    low_key: str,
    high_key: str,
    base: float,
    xlabel: str,
    labels: list[str],
    hidden: str = "",
    percent: bool = False,
) -> str:
    """Horizontal bars from ``base`` to each row's low and high value, largest first;
    ``hidden`` says which rows were left out (``3 beliefs with no effect hidden``);
    ``percent`` puts a probability's axis in percent.

    ArviZ has no tornado plot, so this one is matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows)
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(n, 1) + 1.2))
    for i, row in enumerate(rows):
        y = n - 1 - i
        for key, color in ((low_key, "#3465a4"), (high_key, "#cc6600")):
            value = row.get(key)
            if value is None:
                continue
            ax.barh(y, value - base, left=base, color=color, alpha=0.8, height=0.6)
    ax.axvline(base, color="black", lw=1)
    ax.set_yticks(range(n), labels[::-1], fontsize=8)
    ax.set_xlabel(xlabel + (f"\n({hidden})" if hidden else ""))
    if percent:  # a probability's axis, as every other figure of P(success)
        from matplotlib.ticker import PercentFormatter

        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _png(fig)


def ppc_rates(rows: list[dict], stage_labels: dict[str, str] | None = None) -> str:
    """Posterior predictive check as rates: per stage, each group's observed pass rate
    (a black dot) against the rate replicated from the fitted model (its mean and 90%
    interval: a blue point with error bars), one row per group.

    The outcomes are 0/1 and the groups have a few rounds each, so a density of the
    replicated rate would smooth a handful of possible values; points and intervals
    show the same numbers as the table beside the figure. Matplotlib: arviz_plots'
    predictive checks draw densities or ECDFs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    labels = stage_labels or {}
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    groups = max(sum(r["stage"] == s for r in rows) for s in stages)
    fig, axes = plt.subplots(
        1, len(stages), figsize=(3.6 * len(stages) + 1.2, 0.42 * groups + 1.6), squeeze=False
    )
    for ax, stage in zip(axes[0], stages, strict=True):
        mine = [r for r in rows if r["stage"] == stage]
        y = list(range(len(mine)))[::-1]
        mean = [r["replicated_mean"] for r in mine]
        lo = [r["replicated_mean"] - r["replicated_90"][0] for r in mine]
        hi = [r["replicated_90"][1] - r["replicated_mean"] for r in mine]
        ax.errorbar(
            mean, y, xerr=[lo, hi], fmt="o", color="#3465a4", capsize=3, label="replicated (90%)"
        )
        ax.plot([r["observed_rate"] for r in mine], y, "o", color="black", ms=5, label="observed")
        ax.set_yticks(y, [f"{r['group']} ({r['rounds']})" for r in mine], fontsize=8)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.7, len(mine) - 0.3)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_title(wrap(f"Stage: {labels.get(stage) or stage}", 36, 2), fontsize=9)
        ax.set_xlabel("pass rate in the reference rounds")
        ax.spines[["top", "right"]].set_visible(False)
    handles, names = axes[0][0].get_legend_handles_labels()
    # below the panels, never over them
    fig.legend(handles, names, loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("Observed pass rates against the model's replicated rates (group, rounds)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _png(fig)
