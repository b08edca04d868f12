"""Benchmark: class-conditional learning curves at the paper's size, against gradient descent.

Ours: GEP matrices built from the Model (draw W, data, Omega; ``gep.md`` §2-4) at d = 100,
p = 6000, n = 3000 (psi_p = 60, psi_n = 30, the paper's Fig. 2-4 sizes), one Gram
eigendecomposition (:meth:`diffmix.theory.GradientFlow.from_factor`), then the train, class test
and mixture test errors at 400 log-spaced flow times: building included, no cache.

Baseline (what the paper does, App. I.1): explicit full-batch gradient descent on the DSM loss
with fresh noise each step, written here in plain PyTorch float64 (features tanh(W x_t / sqrt d)
of the n samples, readout gradient), ``--gd-steps`` steps timed after one warm-up step and
extrapolated to 2e6 steps (the paper's N_epoch); the losses along GD would still have to be
evaluated on top, which the baseline does not count.

Check: the curves must start at 1 and be finite; the train error must decrease.

Target (issue 6): ours <= 60 s on 2 cores.

    python benchmarks/bench_curves.py [--d 100] [--gd-steps 3] [--threads N]
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch


def _gd_step_seconds(model, d: int, steps: int, seed: int = 0) -> float:
    p, n = round(model.psi_p * d), round(model.psi_n * d)
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(p, d, generator=g, dtype=torch.float64)
    x0 = torch.randn(n, d, generator=g, dtype=torch.float64) * math.sqrt(model.variances[0])
    A = torch.zeros(d, p, dtype=torch.float64)
    delta = model.delta_t
    eta = 5e-5 * d / delta
    e = math.exp(-model.t)

    def step(A):
        xi = torch.randn(n, d, generator=g, dtype=torch.float64)
        phi = torch.tanh((e * x0 + math.sqrt(delta) * xi) @ W.T / math.sqrt(d))       # (n, p)
        resid = math.sqrt(delta) * phi @ A.T / math.sqrt(p) + xi                        # (n, d)
        grad = 2.0 * math.sqrt(delta) / (n * d * math.sqrt(p)) * resid.T @ phi          # (d, p)
        return A - eta * grad

    A = step(A)
    t0 = time.perf_counter()
    for _ in range(steps):
        A = step(A)
    return (time.perf_counter() - t0) / steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--gd-steps", type=int, default=3)
    parser.add_argument("--points", type=int, default=400)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffmix.theory import Model
    from diffmix.validation._curves import gep_flow

    model = Model("tanh", 0.01, 60.0, 30.0, [0.5, 0.5], [0.5, 0.25])
    gep_flow(model, 10, seed=0, cache=False)            # warm-up: imports, Numba kernels
    t0 = time.perf_counter()
    flow = gep_flow(model, args.d, seed=1, cache=False)
    t_build = time.perf_counter() - t0
    tau = np.geomspace(*flow.time_range(), args.points)
    t1 = time.perf_counter()
    curves = flow.errors(tau)
    t_curves = time.perf_counter() - t1
    ours = t_build + t_curves
    ok = (np.all(np.isfinite(curves.test_c)) and abs(flow.errors([0.0]).train[0] - 1) < 1e-15
          and np.all(np.diff(curves.train) <= 1e-12))

    per_step = _gd_step_seconds(model, args.d, args.gd_steps)
    baseline = per_step * 2e6
    print(f"size d = {args.d}, p = {flow.p}, n = {round(model.psi_n * args.d)}, {args.points} times, "
          f"{model.n_classes} classes, torch threads {torch.get_num_threads()}")
    print(f"ours: {ours:.2f} s (GEP matrices + Gram eigh {t_build:.2f} s, curves {t_curves:.3f} s); "
          f"target <= 60 s: {'met' if ours <= 60 else 'NOT met'}")
    print(f"baseline: {per_step:.3f} s per GD step (mean of {args.gd_steps}) x 2e6 steps = "
          f"{baseline:.3g} s = {baseline / 3600:.1f} h")
    print(f"ratio baseline / ours: {baseline / ours:.3g}")
    print(f"check (E(0) = 1, finite, train decreasing): {'ok' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
