"""One explore session: a scenario's fit held in memory, and the what-ifs asked of it.

:class:`Session` answers ``answer(["PATH=VALUE", ...])`` in the JSON shape of PRODUCT §9
through the what-if engine (:func:`forecast.engine.try_variant`): each ``PATH=VALUE`` is
applied as ``--set`` applies it, so a bad path or value raises the same
:class:`~forecast.errors.ScenarioError`. Answers are cached by their changes. A what-if
that the fit cannot be reweighted to is refitted by the engine with NUTS; that takes far
longer than a reweighting, so each what-if runs in a background thread and an answer not
ready within ``wait`` seconds is reported as pending, with the time it has taken so far.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecast.beliefs import maxent_beta
from forecast.engine import BaseFit, Variant, try_variant
from forecast.errors import ScenarioError
from forecast.prepared import Prepared

#: Seconds a request waits for a what-if before it answers "pending": a reweighting of a
#: bundled scenario takes about a second, a NUTS refit tens of seconds.
WAIT = 1.0
#: The engine's method names as PRODUCT §9 spells them ("forward" sampling is exact).
METHODS = {"forward": "exact", "reweighted": "reweighted", "refit": "refit"}
#: What-ifs computed at once (each a thread); a later one waits for a free worker, and
#: of those waiting only the latest is kept. A running refit cannot be stopped (the
#: engine refits inside ``try_variant``), so at most this many refit at once.
WORKERS = 2

# ----------------------------------------------------------------------------- opening


def open_source(
    arg: str | Path,
    *,
    out: Path,
    draws: int | None = None,
    chains: int | None = None,
    seed: int | None = None,
    allow_outside: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[Prepared, dict[str, Any], Path]:
    """A scenario file (its report fitted first if missing or stale) or a report folder.

    Returns the prepared scenario, its ``summary.json`` and its report folder.
    """
    from forecast.api import _ensure_report, prepare
    from forecast.running import run
    from forecast.views import load_source

    arg = Path(arg)
    if arg.is_dir():  # a report folder: read, never refitted (compare does the same)
        side = load_source(
            arg,
            [],
            draws=None,
            chains=None,
            seed=None,
            out=out,
            allow_outside=allow_outside,
            progress=progress,
        )
        return side.prep, side.summary, side.folder  # type: ignore[return-value]
    prep = prepare(arg, draws=draws, chains=chains, seed=seed, allow_outside=allow_outside)
    folder = _ensure_report(prep, out, progress)
    summary = json.loads((folder / "summary.json").read_text())
    if summary["provenance"].get("scenario_sha256") != prep.loaded.sha256:
        if progress:
            progress("the scenario changed since its report was written: fitting again")
        result = run(prep, out, progress)
        summary, folder = result.summary, result.folder
    return prep, summary, folder


# ----------------------------------------------------------------------------- what-ifs


@dataclass
class _Job:
    future: Future
    started: float = field(default_factory=time.monotonic)
    thread: int | None = None  # the thread computing it, once one has started

    refitting: bool = False  # set by the engine's on_refit hook, before NUTS starts
    why: str = ""  # why the reweighting was not trusted (Pareto k, ESS)


class Session:
    """A fitted scenario held in memory, answering what-ifs about it (PRODUCT §9)."""

    def __init__(
        self,
        prep: Prepared,
        summary: dict[str, Any],
        folder: Path,
        *,
        allow_outside: bool = False,
        wait: float = WAIT,
    ) -> None:
        self.prep, self.summary, self.folder = prep, summary, Path(folder)
        self.allow_outside, self.wait = allow_outside, wait
        self.base = BaseFit.from_report(prep, self.folder)
        self._cache: dict[tuple[str, ...], dict[str, Any]] = {}
        self._jobs: dict[tuple[str, ...], _Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="forecast-what-if")
        self.last_refit_seconds: float | None = None
        # a new range on a probability is fitted with PreliZ, whose first import and
        # numba compilation take seconds: done now, in the background, on a range no one
        # asks for, not on the user's first range
        self._pool.submit(maxent_beta, 0.2113, 0.4987, 0.9)

    def close(self) -> bool:
        """Stop taking what-ifs and drop the queued ones; whether one is still running
        (a thread cannot be stopped: the caller may exit without waiting for it)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            return any(job.thread is not None for job in self._jobs.values())

    # -- changes

    def changed(self, sets: Sequence[str]) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The changes in canonical order, and the raw scenario with them applied.

        Raises
        ------
        ScenarioError
            For a bad path or value, with the message ``--set`` gives.
        """
        from forecast.loading import from_raw, load
        from forecast.overrides import apply_override

        loaded = self.prep.loaded
        raw, lines = copy.deepcopy(loaded.raw), dict(loaded.lines)
        latest: dict[str, str] = {}
        for item in sets:
            if not item.strip():
                continue
            done = apply_override(raw, lines, item, loaded.path)
            key = item.split("=", 1)[0].strip()
            latest.pop(key, None)
            if done is not None:  # a value equal to the file's is no change
                latest[key] = f"{key}={done[1]}"
        try:
            from_raw(raw, loaded.path, lines)
        except ScenarioError:
            # the message exactly as `--set` gives it (line, "value given with --set"):
            # the loader's own, from the file with the same changes
            load(loaded.path, [s for s in sets if s.strip()])
            raise
        return tuple(sorted(latest.values())), raw

    # -- answers

    def answer(self, sets: Sequence[str] = (), wait: float | None = None) -> dict[str, Any]:
        """P(success) of the scenario with ``sets`` applied, in the shape of PRODUCT §9.

        Waits up to ``wait`` seconds (default the session's); an answer not ready by then
        is ``{"status": "pending", ...}`` and the what-if carries on in the background.
        """
        key, raw = self.changed(sets)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            job = self._jobs.get(key)
            if job is None:
                # latest wins: what-ifs still waiting for a worker are no longer wanted
                for old, queued in list(self._jobs.items()):
                    if queued.thread is None and queued.future.cancel():
                        del self._jobs[old]
                job = self._jobs[key] = _Job(self._pool.submit(self._compute, key, raw))
        try:
            return job.future.result(timeout=self.wait if wait is None else wait)
        except FutureTimeout:
            return self._pending(key, job)
        except CancelledError:  # a later what-if replaced it before it started
            return {"status": "superseded", "set": list(key), "set_line": set_line(key)}

    def _compute(self, key: tuple[str, ...], raw: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        with self._lock:
            if key in self._jobs:
                self._jobs[key].thread = threading.get_ident()
        try:
            job = self._jobs.get(key)

            def on_refit(why: str) -> None:
                if job is not None:
                    job.why, job.refitting = why, True

            variant = try_variant(
                raw, self.prep, self.prep.settings.seed, self.allow_outside, self.base, on_refit
            )
            out = self._as_answer(key, variant, time.monotonic() - started)
        except Exception as e:  # kept on the job, so every request for it sees the error
            out = {"status": "error", "error": f"{type(e).__name__}: {e}", "set": list(key)}
        with self._lock:
            if out.get("method") == "refit":
                self.last_refit_seconds = time.monotonic() - started
            self._cache[key] = out
            self._jobs.pop(key, None)
        return out

    def _pending(self, key: tuple[str, ...], job: _Job) -> dict[str, Any]:
        elapsed = time.monotonic() - job.started
        refit = job.refitting
        if refit:
            message = (
                f"refitting with NUTS in the background: {elapsed:.0f} s so far (the fit "
                f"cannot be reweighted to this change: {job.why}; PRODUCT §2)"
            )
            if self.last_refit_seconds is not None:
                message += f"; the last refit took {self.last_refit_seconds:.0f} s"
        elif job.thread is None:
            message = f"waiting for a free worker: {elapsed:.0f} s so far"
        else:
            message = f"reweighting the fit's draws: {elapsed:.0f} s so far"
        return {
            "status": "pending",
            "method": "refit" if refit else None,
            "p_success": None,
            "pareto_k": None,
            "decision": None,
            "progress": {"elapsed_s": round(elapsed, 1), "message": message},
            "set": list(key),
            "set_line": set_line(key),
        }

    def _as_answer(self, key: tuple[str, ...], v: Variant, seconds: float) -> dict[str, Any]:
        from forecast.mcse import round_to, sig

        if v.method == "invalid":
            return {"status": "invalid", "error": v.note, "set": list(key)}
        interval, kind = hdi_90(v)
        return {
            "status": "done",
            "p_success": {
                "mean": round_to(v.p_success, v.mcse),
                "hdi_90": None if interval is None else [round_to(x, v.mcse) for x in interval],
                "mcse": sig(v.mcse),
            },
            "interval": kind,
            "method": METHODS[v.method],
            # a Pareto k that could not be estimated is infinite (never trusted): null
            "pareto_k": _finite(v.pareto_k, 3),
            "ess": _finite(v.ess, 0),
            "proposal": v.proposal if v.method == "reweighted" else None,
            "note": v.note,
            "decision": self._decision(v, key),
            "seconds": round(seconds, 2),
            "set": list(key),
            "set_line": set_line(key),
        }

    def _decision(self, v: Variant, key: tuple[str, ...]) -> dict[str, Any] | None:
        """The options with their mean values under the what-if, and the recommended one."""
        from forecast.mcse import round_to, sig

        spec = self.prep.loaded.spec
        if spec.decision is None:
            return None
        options = []
        means, errors = v.option_means or [], v.option_mcse or []
        for i, (name, opt) in enumerate(spec.decision.options.items()):
            row: dict[str, Any] = {"name": name, "label": opt.label or name}
            if i < len(means):
                err = errors[i] if i < len(errors) else None
                row["mean"], row["mcse"] = round_to(means[i], err), sig(err)
            options.append(row)
        return {
            "question": spec.decision.question,
            "recommended": v.recommended,
            "options": options,
        }

    # -- saving

    def save(self, name: str, sets: Sequence[str]) -> dict[str, Any]:
        """Write the changed scenario as a new file beside the original (never over one).

        The name becomes a safe slug (the new scenario's id); ``-2``, ``-3``, ... are
        added until the name is free. The file keeps the original's comments and is
        checked as ``forecast check`` checks it; one that fails is removed again.
        """
        from forecast.prepared import check

        key, _ = self.changed(sets)
        original = self.prep.loaded.path
        folder = original.parent.resolve()
        stem = slug(name) or f"{self.prep.id}-variant"
        text = changed_text(original, key, stem, self.prep.loaded.spec.question.id or self.prep.id)
        n, target = 1, folder / f"{stem}.yaml"
        while True:
            try:
                with open(target, "x", encoding="utf-8") as fh:  # "x": never overwrite
                    fh.write(text)
                break
            except FileExistsError:
                n += 1
                target = folder / f"{stem}-{n}.yaml"
        try:
            check(target, allow_outside=self.allow_outside)
        except ScenarioError:
            target.unlink(missing_ok=True)
            raise
        return {"path": str(target), "id": target.stem, "set": list(key), "set_line": set_line(key)}


def assumption_rows(prep: Prepared, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Every assumption as the page shows it: quote or note, belief, prior strength,
    the words of its scale, and the path a change is ``--set`` at."""
    from forecast.beliefs import SCALE_OF_ROLE, scale_ranges
    from forecast.scenario import assumptions

    spec = prep.loaded.spec
    ranges = scale_ranges(spec.words.model_dump() if spec.words else None)
    written = {a["path"]: a for a in summary.get("assumptions", [])}
    rows = []
    for a in assumptions(spec):
        s = written.get(a.path, {})
        scale = SCALE_OF_ROLE.get(a.belief.role)
        rows.append(
            {
                "path": a.path,
                "set_path": _set_path(prep.loaded.raw, a.path),
                "label": a.label or a.path,
                "why": a.why,
                "note": a.note,
                "basis": a.basis,
                "role": a.belief.role,
                "belief": a.belief.written(),
                "belief_text": str(a.belief),
                "kind": a.belief.kind,
                "distribution": str(prep.priors[a.path]),
                "strength": s.get("strength"),
                "posterior": s.get("posterior"),
                "words": {w: list(r) for w, r in ranges[scale].items()} if scale else None,
            }
        )
    return rows


def _set_path(raw: dict[str, Any], path: str) -> str:
    """Where ``--set`` changes the belief: a claim written ``{belief: ..., why: ...}``
    is changed at its ``belief`` (its quote and note stay)."""
    node: Any = raw
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return f"{path}.belief" if isinstance(node, dict) and "belief" in node else path


# ----------------------------------------------------------------------------- helpers


def hdi_90(v: Variant) -> tuple[list[float] | None, str | None]:
    """The 90% interval of a what-if's P(success) draws, and which interval it is.

    Equal weights (exact forward draws, or a reweighting where nothing the data bear on
    changed): ArviZ's HDI. Unequal importance weights: ArviZ's HDI takes no weights, so
    the weighted equal-tailed interval (arviz_stats quantiles with the weights). A refit
    has its own NUTS draws, equally weighted: their HDI.
    """
    import numpy as np
    from arviz_stats.base import array_stats

    if v.draws is None:
        return None, None
    draws = np.asarray(v.draws, dtype=float).ravel()
    weights = None if v.weights is None else np.asarray(v.weights, dtype=float).ravel()
    if weights is None or np.ptp(weights) <= 1e-12 * weights.max():
        lo, hi = array_stats.hdi(draws, 0.9)
        return [float(lo), float(hi)], "hdi"
    lo, hi = array_stats.eti(draws, 0.9, method="inverted_cdf", weights=weights / weights.sum())
    return [float(lo), float(hi)], "weighted equal-tailed (importance weights)"


def _finite(x: float | None, digits: int) -> float | None:
    """``x`` rounded, or None where it is missing or not finite (JSON has no inf)."""
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), digits) if digits else round(float(x))


def set_line(key: Sequence[str]) -> str:
    """The command-line equivalent of the changes: ``--set 'PATH=VALUE' ...``."""
    return " ".join(f"--set {shlex.quote(item)}" for item in key)


def slug(name: str) -> str:
    """A safe file name and scenario id from what the user typed (may be empty)."""
    s = re.sub(r"[^a-z0-9_-]+", "-", name.strip().lower())
    s = re.sub(r"-{2,}", "-", s).strip("-_")
    return s[:60].strip("-_")


def changed_text(original: Path, key: Sequence[str], new_id: str, question_id: str) -> str:
    """The original file's text (comments kept) with the changes, a new id, and the
    question's id made explicit (it defaults to the scenario id, which changes)."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 100
    doc = yaml.load(original.read_text(encoding="utf-8"))
    for item in key:
        path, value_text = item.split("=", 1)
        node = doc
        *parents, last = path.split(".")
        for part in parents:
            node = node[part]
        node[last] = YAML(typ="safe").load(value_text)
    doc["id"] = new_id
    if "id" not in doc["question"]:
        doc["question"].insert(0, "id", question_id)
    header = (
        f"Saved by forecast explore from {original.name}"
        + (f" with {set_line(key)}" if key else " (no changes)")
        + "."
    )
    buf = io.StringIO()
    yaml.dump(doc, buf)
    return f"# {header}\n{buf.getvalue()}"
