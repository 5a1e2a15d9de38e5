"""Beliefs: words and ranges turned into distributions.

A *belief* is how a scenario writes an uncertain number (a word of a verbal scale,
``{between: [lo, hi]}``, an explicit distribution or a bare number). A
:class:`Prior` is what it becomes. The verbal scales ship pre-fitted in
``scales.json``; other ``between`` ranges on probabilities are fitted with PreliZ
``maxent`` once and cached per ``(lo, hi, mass)`` so a run need not import PreliZ.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal

Role = Literal["probability", "ratio", "value"]
#: Which verbal scale each role reads its words from (values have none).
SCALE_OF_ROLE: dict[str, str] = {"probability": "probability", "ratio": "odds_ratio"}
DEFAULT_MASS = 0.9
FORMS = ("between", "beta", "lognormal", "normal", "word")
#: Forms that take a ``mass`` beside them: a range, or a word widened ({word: W, mass: M}).
WITH_MASS = ("between", "word")


@dataclass(frozen=True)
class Belief:
    """A belief as written in a scenario, checked for its role but not yet fitted."""

    role: Role
    kind: Literal["word", "constant", "between", "beta", "lognormal", "normal"]
    word: str | None = None
    value: float | None = None
    params: tuple[float, ...] = ()
    mass: float = DEFAULT_MASS

    def written(self) -> Any:
        """The belief in scenario syntax (a word, a number or a one-key mapping)."""
        if self.kind == "word":
            return (
                self.word if self.mass == DEFAULT_MASS else {"word": self.word, "mass": self.mass}
            )
        if self.kind == "constant":
            return self.value
        if self.kind == "between":
            out: dict[str, Any] = {"between": list(self.params)}
            if self.mass != DEFAULT_MASS:
                out["mass"] = self.mass
            return out
        return {self.kind: list(self.params)}

    def __str__(self) -> str:
        w = self.written()
        if isinstance(w, dict):
            inner = ", ".join(f"{k}: {_fmt_yaml(v)}" for k, v in w.items())
            return "{" + inner + "}"
        return str(w)


def _fmt_yaml(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(f"{x:g}" for x in v) + "]"
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class Prior:
    """A fitted belief: ``family`` is beta, lognormal, normal or constant."""

    family: Literal["beta", "lognormal", "normal", "constant"]
    params: tuple[float, ...]

    @property
    def is_constant(self) -> bool:
        return self.family == "constant"

    @property
    def strength(self) -> float | None:
        """A Beta(a, b) belief weighs as much as a + b reference rounds (PRODUCT §1)."""
        return self.params[0] + self.params[1] if self.family == "beta" else None

    def as_yaml(self) -> Any:
        """The prior in scenario syntax, as written to ``scenario.resolved.yaml``."""
        if self.is_constant:
            return self.params[0]
        return {self.family: [round(p, 6) for p in self.params]}

    def __str__(self) -> str:
        if self.is_constant:
            return f"{self.params[0]:g}"
        name = {"beta": "Beta", "lognormal": "LogNormal", "normal": "Normal"}[self.family]
        return f"{name}(" + ", ".join(f"{p:.3g}" for p in self.params) + ")"

    def dist(self):
        """The belief as a frozen ``scipy.stats`` distribution (see :data:`FAMILIES`)."""
        return FAMILIES[self.family].scipy(*self.params)

    def ppf(self, q: float) -> float:
        """Quantile ``q`` of the prior (the value itself for a constant)."""
        return self.params[0] if self.is_constant else float(self.dist().ppf(q))

    def centred_at(self, value: float) -> Prior:
        """The same belief moved so that it centres on ``value``, its spread kept.

        LogNormal and Normal keep sigma and put their median at ``value``; a Beta keeps
        its concentration a + b and puts its mean at ``value``.
        """
        if self.is_constant:
            return Prior("constant", (value,))
        if self.family == "lognormal":
            return Prior("lognormal", (math.log(value), self.params[1]))
        if self.family == "normal":
            return Prior("normal", (value, self.params[1]))
        kappa = self.params[0] + self.params[1]
        return Prior("beta", (value * kappa, (1 - value) * kappa))

    def mean(self) -> float:
        return self.params[0] if self.is_constant else float(self.dist().mean())


@dataclass(frozen=True)
class Family:
    """One distribution family, named once for every library that needs it.

    ``scipy`` gives quantiles, means and exact intervals (sensitivity ends, summaries);
    ``pymc`` and ``pymc_params`` build the model's variable. The log prior that importance
    reweighting uses is the model's own (:func:`forecast.engine.log_prior`), so it cannot
    drift from what was fitted; tests/test_model.py checks both against PyMC.
    """

    pymc: str
    pymc_params: tuple[str, str]
    scipy: Any  # (p1, p2) -> a frozen scipy.stats distribution


def _scipy(name: str):
    def frozen(a: float, b: float):
        from scipy import stats  # only when a quantile or an exact interval is asked for

        if name == "beta":
            return stats.beta(a, b)
        if name == "lognormal":
            return stats.lognorm(s=b, scale=math.exp(a))
        return stats.norm(a, b)

    return frozen


FAMILIES: dict[str, Family] = {
    "beta": Family("Beta", ("alpha", "beta"), _scipy("beta")),
    "lognormal": Family("LogNormal", ("mu", "sigma"), _scipy("lognormal")),
    "normal": Family("Normal", ("mu", "sigma"), _scipy("normal")),
}


# ----------------------------------------------------------------------------- parsing


def _number(x: Any, what: str) -> float:
    # bool is an int in Python; YAML `true` must not become 1.
    if isinstance(x, bool) or not isinstance(x, int | float):
        raise ValueError(f"{what} must be a number, got {x!r}")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{what} must be a finite number, got {x!r}")
    return x


def _pair(x: Any, what: str) -> tuple[float, float]:
    if not isinstance(x, list | tuple) or len(x) != 2:
        raise ValueError(f"{what} must be a list of two numbers, e.g. [0.2, 0.4]; got {x!r}")
    return _number(x[0], what), _number(x[1], what)


def parse_belief(raw: Any, role: Role) -> Belief:
    """Check a belief as written and return it, or raise ``ValueError`` saying why.

    Words are checked against the scales later (a scenario may add its own words).
    """
    if isinstance(raw, str):
        percent = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", raw)
        if percent:
            value = float(percent.group(1)) / 100
            raise ValueError(f"write {value:g}, not {raw.strip()}: probabilities are 0 to 1")
        if role == "value":
            raise ValueError(
                f"'{raw}' is not a number: a value takes a number or {{between: [lo, hi]}}"
            )
        return Belief(role, "word", word=raw.strip())
    if isinstance(raw, bool) or raw is None:
        raise ValueError(
            f"expected a belief (a word, a number or {{between: [lo, hi]}}), got {raw!r}"
        )
    if isinstance(raw, int | float):
        v = _number(raw, "the value")
        if role == "probability" and not 0 <= v <= 1:
            hint = f" (did you mean {v / 100:g}?)" if 1 < v <= 100 else ""
            raise ValueError(f"a probability must lie in [0, 1], got {v:g}{hint}")
        if role == "ratio" and v <= 0:
            raise ValueError(f"a ratio must be positive, got {v:g}")
        return Belief(role, "constant", value=v)
    if not isinstance(raw, dict):
        raise ValueError(
            f"expected a belief (a word, a number or {{between: [lo, hi]}}), got {raw!r}"
        )
    keys = set(raw)
    forms = keys & set(FORMS)
    if len(forms) != 1:
        from forecast.errors import did_you_mean

        extra = sorted(keys - {"mass"})
        hint = did_you_mean(extra[0], FORMS) if extra else ""
        raise ValueError(
            f"a belief mapping needs exactly one of {', '.join(FORMS)}; got {sorted(keys)}{hint}"
        )
    (form,) = forms
    if keys - {form, "mass"} or ("mass" in keys and form not in WITH_MASS):
        bad = sorted(keys - {form})
        raise ValueError(f"unexpected key(s) {bad} beside '{form}'")
    return _parse_form(form, raw, role)


def _mass(raw: dict[str, Any]) -> float:
    mass = _number(raw.get("mass", DEFAULT_MASS), "mass")
    if not 0 < mass < 1:
        raise ValueError(f"mass must lie strictly between 0 and 1, got {mass:g}")
    return mass


def _parse_form(form: str, raw: dict[str, Any], role: Role) -> Belief:
    if form == "word":  # {word: unlikely, mass: 0.5}: the word's range holding that mass
        if role == "value":
            raise ValueError("a value takes a number or {between: [lo, hi]}, not a word")
        if not isinstance(raw["word"], str) or not raw["word"].strip():
            raise ValueError(f"word: expected a word of the scale, got {raw['word']!r}")
        return Belief(role, "word", word=raw["word"].strip(), mass=_mass(raw))
    a, b = _pair(raw[form], form)
    if form == "between":
        mass = _mass(raw)
        if not a < b:
            raise ValueError(f"a range [lo, hi] needs lo < hi, got [{a:g}, {b:g}]")
        if role == "probability" and not (a >= 0 and b <= 1):
            raise ValueError(f"a probability range must lie in [0, 1], got [{a:g}, {b:g}]")
        if role == "ratio" and a <= 0:
            raise ValueError(f"a ratio range must be positive, got [{a:g}, {b:g}]")
        return Belief(role, "between", params=(a, b), mass=mass)
    if form == "beta":
        if a <= 0 or b <= 0:
            raise ValueError(f"beta: both parameters must be positive, got [{a:g}, {b:g}]")
        if role == "ratio":
            raise ValueError("a ratio takes lognormal, not beta")
    else:
        if b <= 0:
            raise ValueError(f"{form}: sigma must be positive, got {b:g}")
        if role == "probability":
            raise ValueError(f"a probability takes beta, not {form} (it must lie inside (0, 1))")
        if role == "ratio" and form == "normal":
            raise ValueError("a ratio takes lognormal, not normal (it must be positive)")
    return Belief(role, form, params=(a, b))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- scales


@cache
def shipped_scales() -> dict[str, dict[str, dict[str, Any]]]:
    """The verbal scales as shipped: ``{scale: {word: {"range", "beta" | "lognormal"}}}``."""
    text = resources.files("forecast").joinpath("scales.json").read_text(encoding="utf-8")
    return json.loads(text)["scales"]


def scale_ranges(overrides: dict[str, dict[str, tuple[float, float]]] | None = None):
    """Word → range per scale, with a scenario's ``words:`` merged over the shipped ones."""
    out = {
        s: {w: tuple(v["range"]) for w, v in words.items()} for s, words in shipped_scales().items()
    }
    for scale, words in (overrides or {}).items():
        out[scale].update({w: tuple(r) for w, r in words.items()})
    return out


# ----------------------------------------------------------------------------- fitting


def equal_tail_normal(lo: float, hi: float, mass: float) -> tuple[float, float]:
    """Normal with ``mass`` in [lo, hi] and equal tails: (mu, sigma)."""
    z = NormalDist().inv_cdf((1 + mass) / 2)
    return (lo + hi) / 2, (hi - lo) / (2 * z)


def equal_tail_lognormal(lo: float, hi: float, mass: float) -> tuple[float, float]:
    """LogNormal with ``mass`` in [lo, hi] and equal tails: (mu, sigma) of the log."""
    return equal_tail_normal(math.log(lo), math.log(hi), mass)


def maxent_beta(lo: float, hi: float, mass: float) -> tuple[float, float]:
    """Maximum-entropy Beta with ``mass`` in [lo, hi] (PreliZ ``maxent``)."""
    import preliz as pz  # slow import: only on a cache miss

    dist = pz.Beta()
    pz.maxent(dist, lo, hi, mass=mass, plot=False)
    return float(dist.alpha), float(dist.beta)


def cache_dir() -> Path:
    """Per-user cache folder (``FORECAST_CACHE_DIR`` or ``~/.cache/forecast``)."""
    env = os.environ.get("FORECAST_CACHE_DIR")
    base = (
        Path(env)
        if env
        else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "forecast"
    )
    return base


class BetaFits:
    """``maxent`` Beta fits cached on disk per (lo, hi, mass); the shipped scales seed it."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "beta_fits.json"
        self._fits: dict[str, list[float]] = {}
        for spec in shipped_scales()["probability"].values():
            self._fits[self.key(*spec["range"], DEFAULT_MASS)] = spec["beta"]
        with contextlib.suppress(OSError, ValueError):  # no cache yet, or a damaged one
            self._fits.update(json.loads(self.path.read_text()))

    @staticmethod
    def key(lo: float, hi: float, mass: float) -> str:
        return f"{lo!r}:{hi!r}:{mass!r}"

    def get(self, lo: float, hi: float, mass: float) -> tuple[float, float]:
        k = self.key(lo, hi, mass)
        if k not in self._fits:
            self._fits[k] = list(maxent_beta(lo, hi, mass))
            self._save()
        a, b = self._fits[k]
        return float(a), float(b)

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._fits, indent=0))
            tmp.replace(self.path)
        except OSError:
            pass  # a read-only cache only costs a refit next time


def fit(belief: Belief, ranges: dict[str, dict[str, tuple[float, float]]], fits: BetaFits) -> Prior:
    """Turn a checked belief into the distribution the table of PRODUCT §1 says."""
    if belief.kind == "constant":
        return Prior("constant", (belief.value,))  # type: ignore[arg-type]
    if belief.kind in ("beta", "lognormal", "normal"):
        return Prior(belief.kind, belief.params)  # type: ignore[arg-type]
    if belief.kind == "word":
        lo, hi = ranges[SCALE_OF_ROLE[belief.role]][belief.word]  # type: ignore[index]
        mass = belief.mass
    else:
        (lo, hi), mass = belief.params, belief.mass
    if belief.role == "probability":
        return Prior("beta", fits.get(lo, hi, mass))
    if belief.role == "ratio":
        return Prior("lognormal", equal_tail_lognormal(lo, hi, mass))
    return Prior("normal", equal_tail_normal(lo, hi, mass))
