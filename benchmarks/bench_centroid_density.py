"""Benchmark: bulk density of U_gep with extensive centroids (solvers/_centroid_spectrum.py).

Case A of centroid-spectrum.md §5 (tanh, t = 0.01, psi_p = 4, psi_n = 2, rho = (0.5, 0.5),
sigma^2 = (0.5, 0.25), orthogonal centroids with ||mu_c||^2 = d), or ``--model FILE``:

* ``solve_centroid_resolvent`` on ``--points`` log-spaced lambda over the support, with the
  "auto" quadrature (two Gauss-Hermite orders, the cell model where they disagree) and with
  Gauss-Hermite alone; median of ``--repeats`` calls after a warm-up (the first call compiles
  the Numba kernels, about a minute on a cold cache);
* ``centroid_spectrum`` with its defaults (400-point scan, edges by bisection, 400 points per
  support component), one call.

Reference: the note's own implementation took 55-145 s per parameter set on one core for an
800-point CDF (centroid-spectrum.md §3).  No pass/fail target: the numbers are printed.

    python benchmarks/bench_centroid_density.py [--model FILE] [--points 400] [--repeats 3]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main(argv=None) -> int:
    from diffmix.solvers._centroid_spectrum import (CentroidSpectralParams, centroid_spectrum,
                                                    solve_centroid_resolvent)
    from diffmix.theory import Model, load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model file with centroids (default: case A)")
    parser.add_argument("--points", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    model = (load_model(args.model) if args.model else
             Model("tanh", 0.01, 4.0, 2.0, [0.5, 0.5], [0.5, 0.25], [1.0, 1.0]))
    t0 = time.perf_counter()
    params = CentroidSpectralParams.from_model(model)
    print(f"coefficient tables: {time.perf_counter() - t0:.2f} s (rank {params.rank}, "
          f"{params.n_unknowns} unknowns)")
    lo, hi = params.s2_range()[0] * 0.5, params.upper_bound()
    lam = np.geomspace(lo, hi, args.points)
    for quadrature in ("auto", "gauss-hermite"):
        solve_centroid_resolvent(params, lam[:20], quadrature=quadrature)       # warm-up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            res = solve_centroid_resolvent(params, lam, quadrature=quadrature)
            times.append(time.perf_counter() - t0)
        used = {k: int((res.method == k).sum()) for k in sorted(set(res.method))}
        print(f"{quadrature:>13}: {statistics.median(times):.2f} s for {lam.size} points "
              f"({1e3 * statistics.median(times) / lam.size:.1f} ms/point), quadratures {used}, "
              f"{int(res.converged.sum())} converged")
    t0 = time.perf_counter()
    spec = centroid_spectrum(params)
    print(f"centroid_spectrum: {time.perf_counter() - t0:.2f} s, components "
          f"{[tuple(round(v, 6) for v in c) for c in spec.components]}, mass "
          f"{spec.total_mass:.6f}, {spec.message}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
