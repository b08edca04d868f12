"""Benchmark: GEP coefficients of tanh at 1000 diffusion times (float64) against Monte Carlo.

Prints the time of ``centered_coefficients_array`` for 1000 t (variance 0.5, t log-spaced in
[1e-4, 3]), the Monte Carlo sample count that reaches 1e-4 relative standard error on every
coefficient at a representative t (the estimator of the tests: u ~ N(0, sigma^2) with 4 noise
draws each; s_t^2 is the hardest), the Monte Carlo time for 1000 t at that count (measured on a
batch and scaled), and the ratio.  Both are timed in this run, on this machine.

    python benchmarks/bench_coefficients.py [--quick]
"""
import argparse
import math
import time

import numpy as np

from diffmix.derivations import centered_coefficients, centered_coefficients_array


def mc_standard_errors(t, var, n, rng, k=4):
    """Relative standard errors of (mu1, v2, s2) with n data samples and k noise draws each."""
    c = centered_coefficients("tanh", t, var)
    e, D = math.exp(-t), -math.expm1(-2 * t)
    u = math.sqrt(var) * rng.standard_normal(n)
    zeta = rng.standard_normal((n, k))
    h = e * u[:, None] + math.sqrt(D) * zeta
    f = np.tanh(h)
    G2 = e * e * var + D
    r = f - c.a_t * u[:, None]
    per_u = {
        "mu1": ((h * f).mean(axis=1) / G2, c.mu1),
        "v2": ((r.sum(axis=1) ** 2 - (r * r).sum(axis=1)) / (k * (k - 1)), c.v_t2),
        "s2": ((f - c.b_t * zeta).var(axis=1, ddof=1), c.s_t2),
    }
    return {name: x.std(ddof=1) / math.sqrt(n) / abs(ref) for name, (x, ref) in per_u.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller Monte Carlo pilot")
    args = parser.parse_args(argv)
    t = np.geomspace(1e-4, 3.0, 1000)
    centered_coefficients_array("tanh", t[:2], 0.5)  # compile / load the Numba cache
    t0 = time.perf_counter()
    arr = centered_coefficients_array("tanh", t, 0.5)
    t_ours = time.perf_counter() - t0
    assert arr.converged.all()

    rng = np.random.default_rng(2026)
    pilot = 20_000 if args.quick else 200_000
    t_rep = 0.01
    rel = mc_standard_errors(t_rep, 0.5, pilot, rng)
    # standard error ~ 1/sqrt(n): samples for 1e-4 on the worst coefficient
    n_needed = int(pilot * (max(rel.values()) / 1e-4) ** 2)
    t0 = time.perf_counter()
    mc_standard_errors(t_rep, 0.5, pilot, rng)
    per_sample = (time.perf_counter() - t0) / pilot
    t_mc = per_sample * n_needed * len(t)
    print(f"diffmix, 1000 diffusion times (tanh, float64, checked quadrature): {t_ours:.3f} s")
    print(f"Monte Carlo pilot at t = {t_rep}: relative standard errors per sample count {pilot}: "
          + ", ".join(f"{k} {v:.2e}" for k, v in rel.items()))
    print(f"Monte Carlo samples for 1e-4 relative accuracy on every coefficient: {n_needed:.3e}"
          f" per t; time for 1000 t: {t_mc:.1f} s (measured {per_sample * 1e6:.2f} us/sample)")
    print(f"ratio Monte Carlo / diffmix: {t_mc / t_ours:.3g}")


if __name__ == "__main__":
    main()
