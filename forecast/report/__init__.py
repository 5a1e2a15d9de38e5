"""Reports: a fitted DataTree in, a folder of files out. The report never refits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forecast.report.atomic import atomic_folder
from forecast.report.tables import build_summary, finite_or_none, markdown

__all__ = ["atomic_folder", "build_summary", "write_report"]


#: Panels per figure (each costs ~0.25 s to draw); past this a figure shows the first
#: ones, the beliefs the data bear on first, and says so (the tables list every belief).
MAX_PANELS = 12


NO_DATA = "no reference data"


def _panels(names: list[str]) -> tuple[list[str], str | None]:
    if len(names) <= MAX_PANELS:
        return names, None
    return names[:MAX_PANELS], f"first {MAX_PANELS} of {len(names)}; the table lists all"


def panel_titles(summary: dict[str, Any]) -> dict[str, str]:
    """Each figure panel's own title (a variable's name) -> the words the user wrote:
    a stage's label (or its name), an assumption's label (or its path)."""
    titles = {"p_success": "Probability that the talks succeed"}
    for name, st in summary.get("stages", {}).items():
        titles[f"p_stage\n{name}"] = f"Stage: {st.get('label') or name}"
    for a in summary.get("assumptions", []):
        titles[a["path"]] = a.get("label") or a["path"]
    return titles


def make_figures(prep, fit, summary: dict[str, Any]) -> dict[str, str]:
    """All figures of the run report, as data URIs (the summary's numbers, not recomputed)."""
    from forecast.report import figures

    tree, group = fit.tree, fit.draws_group
    labels = panel_titles(summary)
    out = {"p_success": figures.p_success_density(tree, group)}
    out["stages"] = figures.distributions(
        tree,
        ["p_stage"],
        group,
        "P(pass | the talks reached the stage)",
        titles=labels,
        percent=True,
    )
    out |= belief_figures(prep, fit, summary, labels)
    checks = summary.get("checks") or {}
    if checks.get("ppc"):
        stage_labels = {n: st.get("label") for n, st in summary["stages"].items()}
        out["ppc"] = figures.ppc_rates(checks["ppc"], stage_labels)
    if prep.loaded.spec.decision is not None:
        out |= decision_figures(prep, fit, summary, labels)
    return out


def belief_figures(prep, fit, summary, labels: dict[str, str]) -> dict[str, str]:
    """Prior against posterior of the beliefs the data inform (and their rank plots);
    the others, which keep their prior exactly, once: their prior, a constant as a point."""
    from forecast.report import figures

    tree, out = fit.tree, {}
    informed = [a["path"] for a in summary["assumptions"] if a.get("informed_by_data")]
    free = [a for a, p in prep.priors.items() if not p.is_constant and a not in informed]
    constants = {a: p.params[0] for a, p in prep.priors.items() if p.is_constant}
    if fit.method == "nuts":
        out["prior_posterior"] = figures.prior_vs_posterior(
            tree,
            ["p_success"],
            "probability that the talks succeed",
            titles=labels,
            percent=True,
        )
    if informed:
        shown, title = _panels(informed)
        out["assumptions"] = figures.prior_vs_posterior(
            tree, shown, "value of the belief", title, titles=labels
        )
        # the others are exact prior draws, not MCMC: nothing to diagnose
        out["rank"] = figures.rank_plot(tree, shown, title, titles=labels)
    if free or constants:
        shown, title = _panels(free + list(constants))
        kept = {c: constants[c] for c in shown if c in constants}
        out["untouched"] = figures.distributions(
            tree,
            [a for a in shown if a not in kept],
            "prior",
            "value of the belief",
            title
            or f"Its prior: {NO_DATA if fit.method != 'nuts' else 'the data do not inform it'}",
            titles=labels,
            constants=kept,
        )
    return out


def decision_figures(prep, fit, summary, labels: dict[str, str]) -> dict[str, str]:
    """Each option's value, and which beliefs are worth knowing better (EVPPI)."""
    from forecast.report import figures

    spec = prep.loaded.spec
    values = fit.tree[fit.draws_group]["option_value"]
    out = {
        "decision": figures.overlaid_p_success(
            {o: values.sel(option=o).values.ravel() for o in spec.decision.options},
            dim="option",
            xlabel=f"value of the option ({spec.decision.value_scale})",
            title="Value of each option",
            percent=False,
        )
    }
    decision = summary["decision"]
    rows = [{"path": p, "evppi": v} for p, v in decision["evppi"].items() if v > 0][:12]
    if rows:
        out["evppi"] = figures.tornado(
            rows,
            "evppi",
            "evppi",
            0.0,
            "expected value of knowing this belief exactly (EVPPI, value-scale points)",
            [figures.wrap(labels.get(r["path"], r["path"]), 60, 2) for r in rows],
        )
    return out


def resolved_yaml(prep) -> str:
    """The scenario with every word and range replaced by the distribution it became."""
    import io

    from ruamel.yaml import YAML

    raw: dict[str, Any] = json.loads(json.dumps(prep.loaded.raw, default=str))
    for path, prior in prep.priors.items():
        node = raw
        *parents, last = path.split(".")
        for p in parents:
            node = node[p]
        node[last] = prior.as_yaml()
    raw.pop("words", None)
    raw["sampling"] = {
        "draws": prep.settings.draws,
        "chains": prep.settings.chains,
        "seed": prep.settings.seed,
    }
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = None
    y.sort_base_mapping_type_on_output = False
    buf = io.StringIO()
    buf.write(f"# {prep.loaded.path} with every belief replaced by its distribution\n")
    y.dump(raw, buf)
    return buf.getvalue()


def write_report(prep, fit, folder: Path) -> dict[str, Any]:
    """Write the five files of PRODUCT §4 into ``folder``, all or nothing.

    The figures, drawn from the fit, are kept as ``figures/*.png`` (with the fit's run
    time in ``figures/index.json``), so report.html can be rendered again from the
    folder alone when ``sensitivity`` or ``backtest`` add their sections.
    """
    from forecast.report.html import write_figures, write_page

    summary = finite_or_none(build_summary(prep, fit))
    figs = make_figures(prep, fit, summary)
    tree = fit.tree
    tree.attrs.update(
        {
            "forecast_schema": 1,
            "scenario_id": summary["id"],
            "provenance": json.dumps(summary["provenance"]),
        }
    )
    with atomic_folder(folder) as tmp:
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
        (tmp / "summary.md").write_text(markdown(summary))
        write_figures(tmp, figs, fit.seconds)
        write_page(tmp)
        (tmp / "scenario.resolved.yaml").write_text(resolved_yaml(prep))
        tree.to_netcdf(tmp / "posterior.nc", engine="h5netcdf")
    return summary
