"""EVPPI of a belief that touches no option: the binned estimator against the regression.

    uv run python benchmarks/evppi_bias.py                       # synthetic cases only
    uv run python benchmarks/evppi_bias.py reports/x/posterior.nc  # and a run's draws

Synthetic: two options whose values are independent N(0, 1) and N(gap, 1) draws (a tie,
or nearly), and a Beta(2, 5) belief independent of both, so the true EVPPI is 0 while
the EVPI is about 0.55. Each row is the mean over independent replicates.

A run's draws: every belief of the run, and a control made by shuffling one belief's
draws across draws (the same marginal, independent of every option by construction);
then the same with the options' means tied by shifting each by a constant.
"""

from __future__ import annotations

import argparse

import numpy as np

from forecast.decision import evpi, evppi_binned, evppi_estimate

REPLICATES = 40
DRAWS = 4000


def synthetic() -> None:
    print(f"synthetic, {DRAWS} draws, mean (max) over {REPLICATES} replicates; true EVPPI 0")
    print(f"{'gap':>5} {'EVPI':>7} {'binned':>15} {'regression':>15} {'its SE':>7} {'z max':>6}")
    for gap in (0.0, 0.05, 0.1):
        rows = []
        for rep in range(REPLICATES):
            rng = np.random.default_rng(rep)
            values = np.column_stack([rng.normal(0, 1, DRAWS), rng.normal(gap, 1, DRAWS)])
            belief = rng.beta(2, 5, DRAWS)
            est = evppi_estimate(values, belief, rng=rng)
            rows.append((evpi(values), evppi_binned(values, belief), est.value, est.se))
        a = np.array(rows)
        z = a[:, 2] / np.maximum(a[:, 3], 1e-12)
        print(
            f"{gap:5.2f} {a[:, 0].mean():7.3f} {a[:, 1].mean():7.4f} ({a[:, 1].max():.4f})"
            f" {a[:, 2].mean():7.4f} ({a[:, 2].max():.4f}) {a[:, 3].mean():7.4f} {z.max():6.2f}"
        )


def from_run(path: str) -> None:
    import xarray as xr

    post = xr.open_datatree(path, engine="h5netcdf")["posterior"].to_dataset()
    shape = (post.sizes["chain"], post.sizes["draw"])
    da = post["option_value"].transpose("chain", "draw", "option")
    values = da.values.reshape(-1, da.sizes["option"])
    # the beliefs are the scalar variables named by their path in the scenario
    scalar = [v for v in post.data_vars if set(post[v].dims) == {"chain", "draw"}]
    names = ["p_success", *[v for v in scalar if "." in v]]
    rng = np.random.default_rng(0)
    control = rng.permutation(post[names[0]].values.ravel())
    beliefs = {n: post[n].transpose("chain", "draw").values.ravel() for n in names} | {
        "(shuffled p_success)": control
    }
    # as run, and with every option shifted by a constant to the best mean: the same
    # dependence on every belief, at the knife-edge where binning's bias is largest
    tied = values - values.mean(axis=0) + values.mean(axis=0).max()
    for label, v in (("as run", values), ("means tied", tied)):
        print(f"{path} ({label}): {v.shape[0]} draws, EVPI {evpi(v):.4f}")
        print(f"  {'belief':74} {'binned':>8} {'regression':>10} {'SE':>8}")
        for name, theta in beliefs.items():
            est = evppi_estimate(v, theta, shape=shape, rng=rng)
            print(f"  {name:74} {evppi_binned(v, theta):8.4f} {est.value:10.4f} {est.se:8.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("posterior", nargs="*", help="posterior.nc files of runs")
    args = parser.parse_args()
    synthetic()
    for path in args.posterior:
        from_run(path)


if __name__ == "__main__":
    main()
