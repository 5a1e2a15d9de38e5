"""Where many what-if jobs run: a local process pool or a Dask distributed cluster.

One small interface (STYLE.md, "an executor seam"): :meth:`Executor.results` takes a
job function, the state every job shares (shipped to each worker once) and small
per-job arguments, and yields ``(key, result)`` as the jobs finish, in any order.

- :class:`LocalPool`: a :class:`concurrent.futures.ProcessPoolExecutor` of spawned
  processes (spawned, not forked: the parent may already hold JAX's threads). Its
  initializer sets PyTensor up (no C compilation) and unpickles the shared state once
  per process, into a module global.
- :class:`DaskCluster`: a ``distributed.Client``; the shared state is scattered to
  every worker once (``broadcast=True``), each job is submitted with ``retries`` and
  gathered as it completes. A worker that dies has the jobs it held rescheduled by the
  scheduler; :attr:`Executor.retried` names them, read from the scheduler's own
  transition log (a job that entered ``processing`` more than once ran again).

A job function is top-level (picklable by reference) and is called as
``fn(state, args)`` where ``state`` is the unpickled shared state.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from forecast.errors import UsageError

#: Times Dask reruns a job that raised (a worker that dies is handled by the scheduler:
#: its jobs are rescheduled, up to ``distributed.scheduler.allowed-failures`` times).
DASK_RETRIES = 2
#: Seconds to wait for a scheduler before saying it cannot be reached.
CONNECT_TIMEOUT = 10

Job = tuple[Hashable, Any]  # (key, the job's own small arguments)

# the shared state of this worker process: (token, state), set once per process
_STATE: tuple[str, Any] | None = None


def no_c_compilation() -> None:
    """Tell PyTensor not to compile C (unless the user's PYTENSOR_FLAGS say otherwise).

    forecast samples through JAX and evaluates everything else vectorised over draws,
    where NumPy does the work; compiling C thunks for those few calls cost a cold run
    ~10 s of gcc (42.7 s → 33.3 s without) and a warm run nothing. Must run before
    PyTensor is imported: by the console script (``forecast.cli.main``) and by every
    worker process before it unpickles a job's state.
    """
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "cxx" not in flags and "pytensor" not in sys.modules:
        os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, "cxx=") if f)


def _token(payload: bytes) -> str:
    import hashlib

    return hashlib.sha256(payload).hexdigest()[:16]


def _state(token: str, payload: bytes) -> Any:
    """The shared state, unpickled on this worker's first job and kept for the others."""
    global _STATE
    if _STATE is None or _STATE[0] != token:
        no_c_compilation()  # before unpickling imports anything of PyTensor's
        _STATE = (token, pickle.loads(payload))
    return _STATE[1]


def _init_local(token: str, payload: bytes) -> None:
    _state(token, payload)


def _run_local(fn: Callable[[Any, Any], Any], args: Any) -> Any:
    assert _STATE is not None, "the pool's initializer sets the state up"
    return fn(_STATE[1], args)


def _run_dask(fn: Callable[[Any, Any], Any], token: str, payload: bytes, args: Any) -> Any:
    return fn(_state(token, payload), args)


class Executor:
    """Runs jobs that share one state; see the module docstring."""

    kind = "?"
    retried: list[Hashable]

    def __init__(self) -> None:
        self.retried = []

    @property
    def workers(self) -> int:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "workers": self.workers}

    def results(
        self, fn: Callable[[Any, Any], Any], shared: Any, jobs: Iterable[Job]
    ) -> Iterator[tuple[Hashable, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalPool(Executor):
    """A process pool on this machine; ``workers`` defaults to the core count."""

    kind = "local"

    def __init__(self, workers: int | None = None) -> None:
        super().__init__()
        self._workers = workers or os.cpu_count() or 1

    @property
    def workers(self) -> int:
        return self._workers

    def results(self, fn, shared, jobs):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        payload = pickle.dumps(shared)
        pool = ProcessPoolExecutor(
            self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_local,
            initargs=(_token(payload), payload),
        )
        try:
            futures = {pool.submit(_run_local, fn, args): key for key, args in jobs}
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            # every result is in (or the sweep was interrupted: no queued job is left
            # behind); the processes' own exit (seconds, JAX's) need not hold the sweep up
            pool.shutdown(wait=False, cancel_futures=True)


class DaskCluster(Executor):
    """Jobs on a Dask distributed cluster at ``address`` (``tcp://HOST:PORT``)."""

    kind = "dask"

    def __init__(self, address: str, timeout: float | None = None) -> None:
        super().__init__()
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - the dask extra is not installed
            raise UsageError.one(
                "--scheduler needs Dask distributed: uv sync --extra dask", field="--scheduler"
            ) from None
        self.address = _checked_address(address)
        try:
            self.client = Client(address, timeout=timeout or CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as e:
            raise UsageError.one(
                f"cannot reach the Dask scheduler at {address} ({type(e).__name__}: {e})",
                field="--scheduler",
            ) from None

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "scheduler": self.address}

    def results(self, fn, shared, jobs):
        import uuid

        from distributed import as_completed

        payload = pickle.dumps(shared)
        token = _token(payload)
        # keys of this run alone: the scheduler's transition log remembers earlier runs'
        run = uuid.uuid4().hex[:12]
        # the state travels to each worker once; a worker that joins later (a restarted
        # one) gets it from a worker that holds it, when its first job needs it
        scattered = self.client.scatter(payload, broadcast=True, hash=False)
        futures, names = {}, {}
        for key, args in jobs:
            name = f"forecast-job-{run}-{key}"
            futures[name] = self.client.submit(
                _run_dask,
                fn,
                token,
                scattered,
                args,
                key=name,
                retries=DASK_RETRIES,
                pure=False,
            )
            names[name] = key
        try:
            for future in as_completed(list(futures.values()), loop=self.client.loop):
                result = future.result()
                # fetched: released, so a worker that dies later holds nothing to redo
                futures.pop(future.key).release()
                yield names[future.key], result
            # the transition log keeps the story of released keys too
            again = set(self.client.run_on_scheduler(_entered_processing_again, list(names)))
            self.retried = sorted((names[k] for k in names if k in again), key=str)
        finally:
            self.client.cancel(list(futures.values()))
            self.client.cancel([scattered])

    def close(self) -> None:
        self.client.close()


def _checked_address(address: str) -> str:
    """``tcp://HOST:PORT`` (or another Dask transport), else a usage error.

    Checked before a ``Client`` is made: one made for an address it cannot parse hangs
    for its whole timeout when it is thrown away.
    """
    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, location = parse_address(address, strict=True)
        parse_host_port(location)
        if scheme not in backends:
            raise ValueError(f"unknown transport {scheme!r}")
        if not location.rsplit(":", 1)[-1].isdigit():
            raise ValueError("no port")
    except (ValueError, TypeError) as e:
        raise UsageError.one(
            f"{address!r} is not a scheduler address such as tcp://127.0.0.1:8786 ({e})",
            field="--scheduler",
        ) from None
    return address


def _entered_processing_again(keys: list[str], dask_scheduler=None) -> list[str]:
    """On the scheduler: the keys that entered ``processing`` more than once."""
    counts: dict[str, int] = {}
    for transition in dask_scheduler.story(*keys):
        key, finish = transition[0], transition[2]
        if finish == "processing":
            counts[key] = counts.get(key, 0) + 1
    return [k for k, n in counts.items() if n > 1]


def open_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """A Dask cluster client when ``scheduler`` is given (checked now), else a local pool.

    Raises
    ------
    UsageError
        If the scheduler cannot be reached, or ``workers`` is below 1.
    """
    if workers is not None and workers < 1:
        raise UsageError.one("--workers must be at least 1", field="--workers")
    if scheduler is not None:
        if workers is not None:
            raise UsageError.one(
                "--workers is for the local pool; a cluster has the workers it has",
                field="--workers",
            )
        return DaskCluster(scheduler)
    return LocalPool(workers)


# ----------------------------------------------------------------------------- what-ifs


def _variant_job(state: Any, raw: dict[str, Any]) -> Any:
    """One what-if of a scenario: the job behind compare's swaps, sensitivity's ends and
    the cumulative path. ``state`` is (the Prepared scenario, its BaseFit or None,
    allow_outside)."""
    from forecast.engine import try_variant

    like, base, allow_outside = state
    return try_variant(raw, like, like.settings.seed, allow_outside, base)


def run_jobs(
    fn: Callable[[Any, Any], Any],
    shared: Any,
    jobs: list[Job],
    scheduler: str | None = None,
    say: Callable[[str], None] | None = None,
) -> dict[Hashable, Any]:
    """Every job's result by its key: in this process (the default: what-ifs of one
    scenario share its compiled program, so this is fastest on one machine), or on the
    Dask cluster at ``scheduler`` (the shared state shipped to each worker once)."""
    if scheduler is None or not jobs:
        return {key: fn(shared, args) for key, args in jobs}
    with DaskCluster(scheduler) as cluster:
        if say:
            say(f"{len(jobs)} jobs on the Dask cluster at {scheduler} ({cluster.workers} workers)")
        out = dict(cluster.results(fn, shared, jobs))
        if cluster.retried and say:
            say(f"rerun after a worker was lost: {', '.join(map(str, cluster.retried))}")
    return out


def check_scheduler(scheduler: str | None) -> None:
    """Exit 2 now, before any fitting, when ``scheduler`` cannot be reached."""
    if scheduler is not None:
        DaskCluster(scheduler).close()


def variants(
    raws: list[dict[str, Any]],
    like: Any,
    base: Any,
    allow_outside: bool,
    scheduler: str | None = None,
    say: Callable[[str], None] | None = None,
) -> list[Any]:
    """:func:`~forecast.engine.try_variant` of each changed raw scenario, in order."""
    results = run_jobs(
        _variant_job, (like, base, allow_outside), list(enumerate(raws)), scheduler, say
    )
    return [results[i] for i in range(len(raws))]
