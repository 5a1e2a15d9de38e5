"""The Python API the CLI wraps: ``check``, ``run`` and friends.

Each function takes file paths and plain options and returns plain results; the
CLI only parses arguments, prints and exits. Heavy libraries (PyMC, ArviZ,
matplotlib) are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecast.beliefs import BetaFits, Prior, fit, scale_ranges
from forecast.errors import Problem
from forecast.scenario import Loaded, assumptions, load

DEFAULT_OUT = Path("reports")


@dataclass
class Settings:
    """Sampling settings after the command line has had its say."""

    draws: int
    chains: int
    seed: int
    changed: dict[str, int] = field(default_factory=dict)


@dataclass
class Prepared:
    """A scenario ready to fit: validated, its data read and its beliefs fitted."""

    loaded: Loaded
    data: Any  # ReferenceData | None
    priors: dict[str, Prior]
    settings: Settings
    quotes: dict[str, Any] = field(default_factory=dict)  # section → quotes.Found

    @property
    def id(self) -> str:
        return self.loaded.spec.id

    @property
    def folder_name(self) -> str:
        """``<id>``, or ``<id>+<hash>`` when an option changed the numbers."""
        changes = list(self.loaded.overrides) + [
            f"--{k}={v}" for k, v in sorted(self.settings.changed.items())
        ]
        if not changes:
            return self.id
        digest = hashlib.sha256("\n".join(changes).encode()).hexdigest()[:8]
        return f"{self.id}+{digest}"

    @property
    def warnings(self) -> list[Problem]:
        return self.loaded.warnings


def settings_for(
    loaded: Loaded, draws: int | None, chains: int | None, seed: int | None
) -> Settings:
    file = loaded.spec.sampling
    s = Settings(file.draws, file.chains, file.seed)
    for name, value in (("draws", draws), ("chains", chains), ("seed", seed)):
        if value is not None and value != getattr(file, name):
            setattr(s, name, value)
            s.changed[name] = value
    return s


def check(path: str | Path, overrides: Sequence[str] = (), allow_outside: bool = False) -> Loaded:
    """Validate a scenario and its reference data; nothing is fitted or written.

    Raises
    ------
    ScenarioError
        If anything is wrong, with file, line and field.
    """
    from forecast.quotes import check_quotes

    loaded = load(path, overrides)
    check_quotes(loaded, allow_outside)
    data = None
    if loaded.spec.reference is not None:
        from forecast.data import load_reference

        data = load_reference(loaded, allow_outside)
    loaded.warnings += strength_warnings(loaded, data, fitted_priors(loaded))
    return loaded


def fitted_priors(loaded: Loaded) -> dict[str, Prior]:
    """Every assumption's belief as the distribution it becomes (PRODUCT §1)."""
    spec = loaded.spec
    ranges = scale_ranges(spec.words.model_dump() if spec.words else None)
    fits = BetaFits()
    return {a.path: fit(a.belief, ranges, fits) for a in assumptions(spec)}


def strength_warnings(loaded: Loaded, data, priors: dict[str, Prior]) -> list[Problem]:
    """A stage whose base rate outweighs the rounds observed for it: the prior decides."""
    if data is None:
        return []
    from forecast.data import UNKNOWN

    out = []
    for s, (name, st) in enumerate(loaded.spec.stages.items()):
        path = f"stages.{name}.base_rate.belief"
        weight = priors[path].strength
        if st.column is None or weight is None:
            continue
        seen = int((data.y[:, s] != UNKNOWN).sum())
        if weight > seen:
            out.append(
                Problem(
                    f"the base rate {priors[path]} weighs as much as {weight:.0f} reference rounds, "
                    f"more than the {seen} observed for this stage: the prior, not the history, "
                    "sets it (widen it, e.g. {word: W, mass: 0.5}, if the author is less sure)",
                    loaded.path,
                    loaded.line_of(("stages", name, "base_rate")),
                    path,
                )
            )
    return out


def prepare(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    allow_outside: bool = False,
) -> Prepared:
    """Validate a scenario, read its data and fit its beliefs to distributions."""
    from forecast.quotes import check_quotes

    loaded = load(path, overrides)
    quotes = check_quotes(loaded, allow_outside)
    data = None
    if loaded.spec.reference is not None:
        from forecast.data import load_reference

        data = load_reference(loaded, allow_outside)
        if data.n_rounds == 0:
            loaded.warnings.append(
                Problem(
                    f"no reference round has an outcome known before {loaded.spec.before}: "
                    "the forecast is the prior",
                    loaded.path,
                    loaded.line_of(("reference",)),
                    "reference",
                )
            )
            data = None
    priors = fitted_priors(loaded)
    loaded.warnings += strength_warnings(loaded, data, priors)
    settings = settings_for(loaded, draws, chains, seed)
    from forecast.errors import UsageError

    if settings.draws < 100 or settings.chains < 1:
        raise UsageError.one(
            "--draws must be at least 100 and --chains at least 1", field="--draws"
        )
    return Prepared(loaded, data, priors, settings, quotes)


@dataclass
class RunResult:
    """What ``run`` produced for one scenario."""

    summary: dict[str, Any]
    folder: Path
    fit: Any  # forecast.fit.Fit

    @property
    def exit_code(self) -> int:
        return 0 if self.fit.passed else 1


def fit_prepared(prep: Prepared, progress: Callable[[str], None] | None = None):
    """Build the PyMC model of a prepared scenario and fit it."""
    from forecast.fit import run_fit
    from forecast.model import build_model

    if progress:
        progress("building the model")
    model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
    result = run_fit(
        model,
        has_data=prep.data is not None,
        draws=prep.settings.draws,
        chains=prep.settings.chains,
        seed=prep.settings.seed,
        progress=progress,
    )
    return model, result


def run(
    prep: Prepared,
    out: str | Path = DEFAULT_OUT,
    progress: Callable[[str], None] | None = None,
    folder_name: str | None = None,
) -> RunResult:
    """Fit a prepared scenario and write its report folder atomically.

    The folder is ``out / prep.folder_name`` unless ``folder_name`` says otherwise.

    Returns
    -------
    RunResult
        The summary (as in ``summary.json``), the folder written and the fit.
    """
    from forecast.report import write_report

    model, result = fit_prepared(prep, progress)
    if result.method == "nuts":
        if progress:
            progress("model checks (posterior predictive, LOO)")
        result.checks = model_checks(prep, model, result)
    if progress:
        progress("writing the report")
    folder = Path(out) / (folder_name or prep.folder_name)
    summary = write_report(prep, result, folder)
    return RunResult(summary, folder, result)


def model_checks(prep: Prepared, model, result) -> dict[str, Any]:
    """Posterior predictive rates per stage and group, LOO, and the plain-language notes."""
    from forecast.checks import loo_summary, ppc_rates
    from forecast.fit import data_dependent

    p_pass = result.p_pass  # computed by the fit with the log-likelihood, in one pass
    stages = list(prep.loaded.spec.stages)
    rows, arrays = ppc_rates(p_pass, prep.data, stages, prep.settings.seed)
    return {
        "ppc": rows,
        "ppc_arrays": arrays,
        "loo": loo_summary(result.tree),
        "learned": data_dependent(model),
    }


def summary_json(summaries: list[dict[str, Any]]) -> str:
    return json.dumps(summaries, indent=2, allow_nan=False)


# ----------------------------------------------------------------------------- what-ifs

#: Prior draws per what-if: with an effective sample size of a few thousand the Monte
#: Carlo error of a mean P(success) is well under 0.002.
VARIANT_DRAWS = 20_000


@dataclass
class Variant:
    """P(success) of a scenario changed in one place, how it was computed, and its error.

    ``draws`` and ``weights`` (per-draw P(success) and its normalised weights, or None
    for a refit) let a difference with another variant from the same proposal draws be
    given a paired Monte Carlo error; ``proposal`` names those draws.
    """

    p_success: float | None
    method: str  # "forward" (exact), "reweighted" (PSIS), "refit" (NUTS) or "invalid"
    pareto_k: float | None = None
    note: str | None = None
    recommended: str | None = None  # the option with the highest mean value, if a decision
    mcse: float | None = None
    ess: float | None = None
    proposal: str | None = None  # "prior" | "posterior" | None (refit: independent draws)
    draws: Any = field(default=None, repr=False)
    weights: Any = field(default=None, repr=False)
    r_eff: float = 1.0  # relative efficiency of the proposal draws (MCMC: below 1)

    def as_json(self) -> dict[str, Any]:
        from forecast.mcse import round_to, sig

        return {
            "p_success": round_to(self.p_success, self.mcse),
            "p_success_mcse": sig(self.mcse),
            "method": self.method,
            "pareto_k": None if self.pareto_k is None else round(self.pareto_k, 3),
            "ess": None if self.ess is None else round(self.ess),
            "recommended": self.recommended,
            "note": self.note,
        }


def difference(a: Variant, b: Variant) -> tuple[float | None, float | None]:
    """b − a in P(success) and its Monte Carlo error: paired where both were reweighted
    from the same proposal draws (the shared draws cancel most of the noise), otherwise
    the two errors combined as independent."""
    from forecast.mcse import combined, paired_mcse

    if a.p_success is None or b.p_success is None:
        return None, None
    delta = b.p_success - a.p_success
    same_draws = (
        a.proposal is not None
        and a.proposal == b.proposal
        and a.draws is not None
        and b.draws is not None
        and len(a.draws) == len(b.draws)
    )
    if same_draws:
        r_eff = min(a.r_eff, b.r_eff)
        return delta, paired_mcse(b.draws, a.draws, b.weights, a.weights) / math.sqrt(r_eff)
    return delta, combined(a.mcse, b.mcse)


def prepare_raw(raw: dict[str, Any], like: Prepared, allow_outside: bool = False) -> Prepared:
    """A changed copy of a prepared scenario (its paths stay relative to the same file)."""
    from forecast.scenario import from_raw

    loaded = from_raw(raw, like.loaded.path)
    data = None
    if loaded.spec.reference is not None:
        from forecast.data import load_reference

        data = load_reference(loaded, allow_outside)
        data = data if data.n_rounds else None
    return Prepared(loaded, data, fitted_priors(loaded), like.settings, like.quotes)


@dataclass
class BaseFit:
    """A fitted scenario whose posterior draws can serve as a proposal for its variants."""

    prep: Prepared
    posterior: Any  # xarray.Dataset
    learned: list[str]
    log_q: Any  # numpy (draw,): log prior + log likelihood of the learned draws
    r_eff: float = 1.0  # relative efficiency of the posterior's P(success) draws

    @classmethod
    def from_report(cls, prep: Prepared, folder: Path) -> BaseFit | None:
        """The report's posterior, or None for a prior-only report."""
        import xarray as xr

        path = folder / "posterior.nc"
        if prep.data is None or not path.is_file():
            return None
        tree = xr.open_datatree(path, engine="h5netcdf")
        if "posterior" not in tree.children:
            return None
        from forecast.fit import _vectorised_draws, data_dependent, flat_draws
        from forecast.mcse import relative_efficiency
        from forecast.model import build_model

        posterior = tree["posterior"].to_dataset()
        model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
        learned = data_dependent(model)
        draws = flat_draws(posterior, learned)
        n = posterior.sizes["chain"] * posterior.sizes["draw"]
        # the whole data likelihood at the posterior draws (outcomes and recorded factor
        # values), from the model itself: one definition for the fit and the weights
        (loglik,) = _vectorised_draws(model, [], n, prep.settings.seed, True, given=draws)
        r_eff = relative_efficiency(posterior["p_success"].transpose("chain", "draw").values)
        return cls(prep, posterior, learned, loglik + log_prior(prep, draws), r_eff)

    def draws(self) -> dict[str, Any]:
        from forecast.fit import flat_draws

        return flat_draws(self.posterior, self.learned)


def log_prior(prep: Prepared, draws: dict[str, Any]):
    """Joint log prior density of the given draws under ``prep``'s beliefs (per draw)."""
    import numpy as np
    from scipy import stats

    total = 0.0
    for name, x in draws.items():
        if name in prep.priors:
            lp = prep.priors[name].logpdf(x)
        elif name == "group_scale":
            lp = stats.halfnorm.logpdf(x, scale=prep.loaded.spec.reference.pooling_scale)
        else:  # group_offset: Normal(0, 1) whatever the scenario says
            lp = stats.norm.logpdf(x)
        total = total + np.asarray(lp).reshape(len(x), -1).sum(axis=1)
    return total


def evaluate(prep: Prepared, seed: int | None = None, base: BaseFit | None = None) -> Variant:
    """P(success) (and the recommended option) of a prepared scenario, as cheaply as is reliable.

    Without data, exact forward sampling. With data, importance sampling (PSIS) from the
    base scenario's posterior when the variant shares every variable the data bear on,
    or from the variant's prior, whichever gives the smaller Pareto k; where the weights
    fail the trust rule of PRODUCT §2 (k ≥ min(1 − 1/log10 S, 0.7) or ESS < 400) the
    scenario is refitted with NUTS.
    """
    import numpy as np

    from forecast.fit import importance, run_fit
    from forecast.mcse import mcse_mean
    from forecast.model import build_model

    seed = prep.settings.seed if seed is None else seed
    spec = prep.loaded.spec
    options = list(spec.decision.options) if spec.decision is not None else None

    def best(values) -> str | None:
        return None if options is None or values is None else options[int(np.argmax(values))]

    def variant(r, method: str, proposal: str) -> Variant:
        return Variant(
            r.p_success,
            method,
            None if method == "forward" else r.pareto_k,
            recommended=best(r.means.get("option_value")),
            mcse=r.p_success_mcse,
            ess=r.ess,
            proposal=proposal,
            draws=r.draws["p_success"],
            weights=r.weights,
            r_eff=r.r_eff,
        )

    model = build_model(spec, prep.priors, prep.data, prep.settings.seed)
    if prep.data is None:
        return variant(importance(model, VARIANT_DRAWS, seed), "forward", "prior")
    candidates = []
    if base is not None and _shares_learned(model, base):
        draws = base.draws()
        r = importance(
            model,
            len(base.log_q),
            seed,
            log_q=base.log_q,
            given=draws,
            log_prior_target=log_prior(prep, draws),
            r_eff=base.r_eff,
        )
        candidates.append(("posterior", r))
    if not candidates or not candidates[0][1].reliable:
        candidates.append(("prior", importance(model, VARIANT_DRAWS, seed)))
    proposal, r = min(candidates, key=lambda c: (not c[1].reliable, c[1].pareto_k))
    if r.reliable:
        return variant(r, "reweighted", proposal)
    fitted = run_fit(
        model, has_data=True, draws=prep.settings.draws, chains=prep.settings.chains, seed=seed
    )
    post = fitted.tree["posterior"]
    values = post["option_value"].mean(("chain", "draw")).values if options else None
    return Variant(
        float(post["p_success"].mean()),
        "refit",
        r.pareto_k,
        recommended=best(values),
        mcse=mcse_mean(post["p_success"]),
        note=f"best reweighting: k = {r.pareto_k:.2f}, ESS {r.ess:.0f}",
    )


def _shares_learned(model, base: BaseFit) -> bool:
    """Whether every variable the data bear on in the base is a same-shaped free variable here."""
    free = {rv.name: rv for rv in model.free_RVs}
    for name in base.learned:
        if name not in free:
            return False
        shape = tuple(base.posterior[name].shape[2:])
        if tuple(free[name].type.shape) != shape and any(
            d is not None for d in free[name].type.shape
        ):
            return False
    return True


def _try_variant(
    raw: dict[str, Any], like: Prepared, seed: int, allow_outside: bool, base: BaseFit | None = None
) -> Variant:
    from forecast.errors import ScenarioError

    try:
        prep = prepare_raw(raw, like, allow_outside)
    except ScenarioError as e:
        return Variant(None, "invalid", note="; ".join(p.message for p in e.problems))
    return evaluate(prep, seed, base)


@dataclass
class Side:
    """One side of a comparison: a fresh run or an existing report folder."""

    prep: Prepared
    summary: dict[str, Any]
    p_success: Any  # numpy array of draws
    label: str = ""
    folder: Path | None = None


def load_source(
    arg: str | Path,
    overrides: Sequence[str],
    *,
    draws: int | None,
    chains: int | None,
    seed: int | None,
    out: Path,
    allow_outside: bool,
    progress: Callable[[str], None] | None = None,
    taken: set[str] | None = None,
) -> Side:
    """A scenario file (fitted now, its report written) or a report folder (read, not refit).

    ``taken`` holds the report folders already written by this command: a second scenario
    file with the same id goes to ``<id>_2`` rather than over the first one's report.
    """
    import numpy as np

    from forecast.errors import ScenarioError

    arg = Path(arg)
    if arg.is_dir():
        summary_path = arg / "summary.json"
        if not summary_path.is_file():
            raise ScenarioError.one(
                "not a report folder (no summary.json) and not a scenario file", arg
            )
        summary = json.loads(summary_path.read_text())
        prov = summary["provenance"]
        scenario = Path(prov["scenario"])
        if not scenario.is_file():
            raise ScenarioError.one(
                f"the report's scenario {scenario} is gone; rerun it to compare", arg
            )
        set_items = [o for o in prov["overrides"] if not o.startswith("--")]
        prep = prepare(
            scenario,
            set_items,
            draws=prov["draws"],
            chains=prov["chains"],
            seed=prov["seed"],
            allow_outside=allow_outside,
        )
        if prep.loaded.sha256 != prov["scenario_sha256"]:
            raise ScenarioError.one(
                f"{scenario} changed since this report was written; rerun it to compare", arg
            )
        import xarray as xr

        tree = xr.open_datatree(arg / "posterior.nc", engine="h5netcdf")
        group = "posterior" if "posterior" in tree.children else "prior"
        draws_ = np.asarray(tree[group]["p_success"]).ravel()
        return Side(prep, summary, draws_, folder=arg)
    prep = prepare(
        arg, overrides, draws=draws, chains=chains, seed=seed, allow_outside=allow_outside
    )
    name, n = prep.folder_name, 1
    while taken is not None and name in taken:
        n += 1
        name = f"{prep.folder_name}_{n}"
    if taken is not None:
        taken.add(name)
    result = run(prep, out, progress, folder_name=name)
    return Side(
        prep,
        result.summary,
        np.asarray(result.fit.tree[result.fit.draws_group]["p_success"]).ravel(),
        folder=result.folder,
    )


def p_greater(a, b) -> tuple[float, float]:
    """P(A > B) over all pairs of draws, ties counted as one half, and its Monte Carlo error.

    The estimate is a two-sample U-statistic; its variance is Var(G(a))/n_a + Var(H(b))/n_b
    with G(a) = P(B < a) and H(b) = P(A > b) (draws treated as independent).
    """
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)

    def share_below(sorted_x, y):  # per y: P(X < y), ties one half
        lo = np.searchsorted(sorted_x, y, side="left")
        hi = np.searchsorted(sorted_x, y, side="right")
        return (lo + 0.5 * (hi - lo)) / len(sorted_x)

    g = share_below(np.sort(b), a)  # P(B < a_i)
    h = 1 - share_below(np.sort(a), b)  # P(A > b_j)
    error = math.sqrt(g.var(ddof=1) / len(a) + h.var(ddof=1) / len(b))
    return float(g.mean()), error


def compare(
    args: Sequence[str | Path],
    overrides: Sequence[str] = (),
    *,
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    out: str | Path = DEFAULT_OUT,
    allow_outside: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Compare scenario A (the first) with each of the others.

    Returns the ``compare.json`` dictionary and the folder it was written to.
    """
    from forecast.compare import differences, swap
    from forecast.errors import UsageError
    from forecast.mcse import round_to, sig

    if len(args) < 2:
        raise UsageError.one("compare needs at least two scenarios or report folders")
    out = Path(out)
    say = progress or (lambda _m: None)
    sources, taken = [], set()
    for arg in args:
        say(f"{arg}: fitting or reading")
        sources.append(
            load_source(
                arg,
                overrides,
                draws=draws,
                chains=chains,
                seed=seed,
                out=out,
                allow_outside=allow_outside,
                progress=progress,
                taken=taken,
            )
        )
    seen: dict[str, int] = {}
    for s in sources:
        seen[s.prep.id] = seen.get(s.prep.id, 0) + 1
        s.label = s.prep.id if seen[s.prep.id] == 1 else f"{s.prep.id}#{seen[s.prep.id]}"
    a = sources[0]
    pairs = []
    for b in sources[1:]:
        diffs = differences(a.prep.loaded, a.prep.priors, b.prep.loaded, b.prep.priors)
        say(f"{a.label} vs {b.label}: {len(diffs)} differences")
        base_fit = BaseFit.from_report(a.prep, a.folder) if diffs else None
        base = evaluate(a.prep, base=base_fit) if diffs else None
        rows = []
        for i, d in enumerate(diffs, 1):
            say(f"attribution {i}/{len(diffs)}: {d.path}")
            v = _try_variant(
                swap(a.prep.loaded, b.prep.loaded, d.path),
                a.prep,
                a.prep.settings.seed,
                allow_outside,
                base_fit,
            )
            delta, delta_mcse = difference(base, v)
            row = {
                "path": d.path,
                "p_success_a": round_to(base.p_success, base.mcse),
                "p_success_swapped": round_to(v.p_success, v.mcse),
                "delta": round_to(delta, delta_mcse),
                "delta_mcse": sig(delta_mcse),
                **{
                    k: val
                    for k, val in v.as_json().items()
                    if k not in ("p_success", "recommended")
                },
            }
            if base.recommended is not None or v.recommended is not None:
                row["recommended_swapped"] = v.recommended
                # a flip changes A's own recommendation; a decision that only B has,
                # swapped in whole, gives A a recommendation it did not have: no flip
                row["flips_recommendation"] = (
                    base.recommended is not None
                    and v.recommended is not None
                    and v.recommended != base.recommended
                )
            rows.append(row)
        rows.sort(key=lambda r: -abs(r["delta"] or 0))
        greater, greater_mcse = p_greater(a.p_success, b.p_success)
        pairs.append(
            {
                "a": a.label,
                "b": b.label,
                "p_a_greater": round_to(greater, greater_mcse),
                "p_a_greater_mcse": sig(greater_mcse),
                "differences": [d.as_json() for d in diffs],
                "attribution": rows,
                "attribution_base": None if base is None else base.as_json(),
                "recommendations": {
                    side.label: (side.summary.get("decision") or {}).get("recommended")
                    for side in (a, b)
                },
                "flips": [r["path"] for r in rows if r.get("flips_recommendation")],
            }
        )
    result = {
        "schema": 1,
        "scenarios": {
            s.label: {
                "title": s.summary["title"],
                "p_success": s.summary["p_success"],
                "report": str(s.folder),  # the folder fitted into, or the one read
            }
            for s in sources
        },
        **{
            k: pairs[0][k]
            for k in ("p_a_greater", "p_a_greater_mcse", "differences", "attribution")
        },
        "attribution_method": "each differing assumption of B swapped into A alone; P(success) by "
        "PSIS reweighting of A's posterior draws (or of prior draws weighted by the likelihood), "
        "exact forward sampling without data, NUTS refit where the weights fail the trust rule "
        "(Pareto k ≥ min(1 − 1/log10 S, 0.7) or ESS < 400); delta_mcse is the paired Monte Carlo "
        "error where both sides reweight the same draws, else the two errors combined",
        "pairs": pairs,
    }
    from forecast.report.compare import write_compare

    folder = out / ("compare-" + "-vs-".join(s.label.replace("#", "_") for s in sources))
    write_compare(result, sources, folder)
    return result, folder


def _ensure_report(prep: Prepared, out: str | Path, progress=None) -> Path:
    """The scenario's report folder, fitting and writing it first if it is not there."""
    folder = Path(out) / prep.folder_name
    if not (folder / "summary.json").is_file() or not (folder / "posterior.nc").is_file():
        if progress:
            progress("no report yet: fitting first")
        run(prep, out, progress)
    return folder


def _with_report(path, overrides, draws, chains, seed, out, allow_outside, progress):
    prep = prepare(
        path, overrides, draws=draws, chains=chains, seed=seed, allow_outside=allow_outside
    )
    return prep, _ensure_report(prep, out, progress)


def sensitivity(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    out: str | Path = DEFAULT_OUT,
    allow_outside: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Tornado of P(success) over each belief's 90% interval, plus power-scaling (psense).

    Each belief in turn is moved to centre on the 5% and then the 95% quantile of its
    prior, its spread kept (see :meth:`Prior.centred_at`), the others held as they are. The scenario's report folder gets
    ``sensitivity.json``, the figures and a section of ``report.html``; a missing
    report is fitted first.
    """
    import copy

    from forecast.mcse import round_to, sig

    say = progress or (lambda _m: None)
    prep, folder = _with_report(path, overrides, draws, chains, seed, out, allow_outside, progress)
    base_fit = BaseFit.from_report(prep, folder)
    base = evaluate(prep, base=base_fit)
    rows = []
    # a decision's beliefs (values, consequences) cannot move P(success): leave them out
    beliefs = [
        (p, pr)
        for p, pr in prep.priors.items()
        if not pr.is_constant and not p.startswith("decision.")
    ]
    for i, (belief_path, prior) in enumerate(beliefs, 1):
        say(f"tornado {i}/{len(beliefs)}: {belief_path}")
        row: dict[str, Any] = {
            "path": belief_path,
            "distribution": str(prior),
            "moved": MOVED[prior.family],
        }
        ends = {}
        for end, q in (("low", 0.05), ("high", 0.95)):
            value = prior.ppf(q)
            raw = copy.deepcopy(prep.loaded.raw)
            node = raw
            *parents, last = belief_path.split(".")
            for p in parents:
                node = node[p]
            node[last] = prior.centred_at(float(value)).as_yaml()
            v = ends[end] = _try_variant(raw, prep, prep.settings.seed, allow_outside, base_fit)
            row[end] = round(float(value), 4)
            row[f"p_success_{end}"] = round_to(v.p_success, v.mcse)
            row[f"p_success_{end}_mcse"] = sig(v.mcse)
            row[f"method_{end}"] = _method_label(v)
        swing, swing_mcse = difference(ends["low"], ends["high"])
        row["swing"] = round_to(None if swing is None else abs(swing), swing_mcse)
        row["swing_mcse"] = sig(swing_mcse)
        rows.append(row)
    rows.sort(key=lambda r: r["swing"] or 0, reverse=True)
    psense = None
    if prep.data is not None:
        say("power-scaling sensitivity (psense)")
        learned = base_fit.learned if base_fit is not None else []
        psense = power_scaling(folder / "posterior.nc", [p for p, _ in beliefs], learned)
    result = {
        "schema": 1,
        "id": prep.id,
        "p_success_base": round_to(base.p_success, base.mcse),
        "p_success_base_mcse": sig(base.mcse),
        "base_method": base.method,
        "tornado": rows,
        "psense": psense,
        "method": "each belief, one at a time, moved to centre on the 5% and the 95% quantile of its "
        "prior with its spread kept (see each row's 'moved'); decision beliefs are left out, since "
        "they cannot move P(success); P(success) by exact forward sampling without data, with data by "
        "PSIS reweighting of the fitted posterior (or of prior draws), NUTS refit where the weights "
        "fail the trust rule (Pareto k ≥ min(1 − 1/log10 S, 0.7) or ESS < 400); swing_mcse is the "
        "paired Monte Carlo error of high − low",
    }
    from forecast.report.sensitivity import write_sensitivity

    write_sensitivity(result, folder)
    return result, folder


#: What "moved to the end of its interval" means for each family (sensitivity tornado).
MOVED = {
    "beta": "a Beta keeps its concentration a + b (its weight in reference rounds) and moves its "
    "mean to the quantile",
    "lognormal": "a LogNormal keeps its sigma and moves its median to the quantile",
    "normal": "a Normal keeps its sigma and moves its mean to the quantile",
}


def _method_label(v: Variant) -> str:
    """How a what-if was computed, with the Pareto k and ESS a reweighting rests on."""
    if v.method == "reweighted":
        return f"reweighted ({v.proposal} draws; k = {v.pareto_k:.2f}, ESS {v.ess:.0f})"
    if v.method == "refit":
        return f"refit ({v.note})"
    return v.method


def power_scaling(
    posterior_nc: Path, var_names: list[str], learned: Sequence[str]
) -> list[dict[str, Any]]:
    """ArviZ power-scaling sensitivity, per belief, of the belief itself and of P(success).

    For each belief the data bear on, only that belief's prior is power-scaled
    (``prior_var_names``), so the row says how much this one prior moves its own
    posterior and P(success); the likelihood is scaled as a whole. A last row scales
    every prior at once. Beliefs the data never touch are listed as such: their
    posterior is their prior, so a prior-sensitivity figure would say nothing new.
    """
    import contextlib
    import io
    import logging
    import warnings

    import arviz_stats as azs
    import xarray as xr

    tree = xr.open_datatree(posterior_nc, engine="h5netcdf")
    log = logging.getLogger("arviz_stats")
    level = log.level
    log.setLevel(logging.ERROR)  # its "potential issues" note: our report explains the diagnosis

    def table(names: list[str], prior_vars: list[str] | None):
        return azs.psense_summary(tree, var_names=names, prior_var_names=prior_vars, round_to=6)

    rows = []
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            for name in var_names:
                if name not in learned or name not in tree["posterior"].data_vars:
                    rows.append(
                        {
                            "variable": name,
                            "prior": None,
                            "likelihood": None,
                            "p_success_prior": None,
                            "touched_by_data": False,
                            "diagnosis": "not touched by the data: its posterior is its prior",
                        }
                    )
                    continue
                t = table([name, "p_success"], [name])
                rows.append(
                    {
                        "variable": name,
                        "prior": float(t.loc[name, "prior"]),
                        "likelihood": float(t.loc[name, "likelihood"]),
                        "p_success_prior": float(t.loc["p_success", "prior"]),
                        "touched_by_data": True,
                        "diagnosis": str(t.loc[name, "diagnosis"]),
                    }
                )
            priors = [n for n in learned if n in tree["log_prior"].data_vars]
            t = table(["p_success"], priors or None)
            rows.append(
                {
                    "variable": "p_success",
                    "prior": float(t.loc["p_success", "prior"]),
                    "likelihood": float(t.loc["p_success", "likelihood"]),
                    "p_success_prior": float(t.loc["p_success", "prior"]),
                    "touched_by_data": True,
                    "diagnosis": str(t.loc["p_success", "diagnosis"])
                    + " (every prior the data bear on scaled at once)",
                }
            )
    finally:
        log.setLevel(level)
    return [
        {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()} for row in rows
    ]


def backtest(
    path: str | Path,
    overrides: Sequence[str] = (),
    *,
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    out: str | Path = DEFAULT_OUT,
    allow_outside: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Walk the reference rounds in date order, forecasting each from those known before it.

    Every stage a round reached, and its whole pathway, is forecast and scored (Brier,
    log score, each with its Monte Carlo error) beside a running base rate and the
    scenario's priors alone, with the paired differences and their standard errors over
    rounds; ``backtest.json``, figures and a section of ``report.html`` are added to the
    scenario's report folder (fitting it first if needed).
    """
    from forecast import backtest as bt
    from forecast.errors import ScenarioError
    from forecast.model import build_model

    say = progress or (lambda _m: None)
    prep = prepare(
        path, overrides, draws=draws, chains=chains, seed=seed, allow_outside=allow_outside
    )
    if prep.data is None:
        raise ScenarioError.one(
            "backtest needs reference data with outcomes: add a reference: section",
            prep.loaded.path,
            prep.loaded.line_of(("reference",)),
            "reference",
        )
    folder = _ensure_report(prep, out, progress)
    say(f"forecasting {prep.data.n_rounds} rounds from the rounds before each")
    model = build_model(prep.loaded.spec, prep.priors, prep.data, prep.settings.seed)
    import xarray as xr

    tree = xr.open_datatree(folder / "posterior.nc", engine="h5netcdf")
    posterior = tree["posterior"].to_dataset() if "posterior" in tree.children else None

    def refit(t: int, known) -> dict[str, bt.Estimate]:
        say(f"refitting for {prep.data.round_id[t]} (importance weights not trusted)")
        return bt.refit_round(prep.loaded.spec, prep.priors, prep.data, t, known, prep.settings)

    result = {
        "schema": 1,
        "id": prep.id,
        **bt.forecasts(model, prep.data, prep.loaded.spec, prep.settings.seed, posterior, refit),
    }
    from forecast.report.backtest import write_backtest

    write_backtest(result, folder)
    return result, folder
