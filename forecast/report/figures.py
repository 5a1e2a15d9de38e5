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


def _finish(
    pc,
    xlabel: str,
    title: str | None = None,
    titles: dict[str, str] | None = None,
    percent: bool = False,
) -> str:
    """Label every panel's x axis, title the panels in words (``titles``: the variable's
    own title -> the label the user wrote), put probability axes in percent, add a
    figure title, and return the PNG."""
    from matplotlib.ticker import PercentFormatter

    fig = pc.viz["figure"].item()
    for ax in fig.axes:
        if ax.get_legend() is not None and not ax.lines and not ax.collections:
            # arviz_plots' legend panel: under the panel titles, not over them
            ax.get_legend().set_loc("upper right")
            ax.get_legend().set_bbox_to_anchor((1.0, 0.85), transform=fig.transFigure)
            continue
        ax.set_xlabel(xlabel)
        if titles is not None and ax.get_title() in titles:
            ax.set_title(wrap(titles[ax.get_title()]), fontsize=9)
        if percent:
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            _percent_texts(ax)
    if title:
        fig.suptitle(title, y=1.02)
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
    return _finish(pc, xlabel, title, titles, percent)


def distributions(
    tree,
    var_names: list[str],
    group: str,
    xlabel: str,
    title: str | None = None,
    titles: dict[str, str] | None = None,
    percent: bool = False,
) -> str:
    """Densities with 90% HDIs of one group's variables (stage summaries, prior-only beliefs)."""
    azp = _setup()
    ds = tree[group].to_dataset()[var_names]
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
    return _finish(pc, xlabel, title, titles, percent)


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
) -> str:
    """Several distributions on one axis (arviz_plots, colour by ``dim``)."""
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
    return _finish(pc, xlabel, titles={"p_success": title})


def tornado(
    rows: list[dict], low_key: str, high_key: str, base: float, xlabel: str, labels: list[str]
) -> str:
    """Horizontal bars from ``base`` to each row's low and high value, largest first.

    ArviZ has no tornado plot, so this one is matplotlib.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows)
    fig, ax = plt.subplots(figsize=(8, 0.45 * n + 1.2))
    for i, row in enumerate(rows):
        y = n - 1 - i
        for key, color in ((low_key, "#3465a4"), (high_key, "#cc6600")):
            value = row.get(key)
            if value is None:
                continue
            ax.barh(y, value - base, left=base, color=color, alpha=0.8, height=0.6)
    ax.axvline(base, color="black", lw=1)
    ax.set_yticks(range(n), labels[::-1], fontsize=8)
    ax.set_xlabel(xlabel)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _png(fig)


def ppc_rates(arrays: dict[str, tuple[Any, Any]], chains: int) -> str:
    """Posterior predictive check: replicated pass rate per stage and group vs observed."""
    import numpy as np
    import xarray as xr

    azp = _setup()
    pp, ob = {}, {}
    for i, (name, (rep, obs)) in enumerate(arrays.items()):
        dim = f"obs{i}"
        pp[name] = (("chain", "draw", dim), rep.reshape(chains, -1, rep.shape[1]))
        ob[name] = ((dim,), np.asarray(obs))
    tree = xr.DataTree.from_dict(
        {"posterior_predictive": xr.Dataset(pp), "observed_data": xr.Dataset(ob)}
    )
    n = len(arrays)
    pc = azp.plot_ppc_tstat(
        tree,
        t_stat="mean",
        backend="matplotlib",
        col_wrap=min(n, 4),
        figure_kwargs={"figsize": (3.2 * min(n, 4), 2.4 * ((n + 3) // 4))},
    )
    return _finish(pc, "pass rate (curve: replicated; dot: observed)")
