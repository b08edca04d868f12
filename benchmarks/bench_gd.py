"""Benchmark: explicit GD steps per second at the paper's size (d = 100, p = 6000, n = 3000).

One GD step of ``diffmix.gpu.GDStepper`` (dynamics.md §2: fresh noise for every training sample,
features recomputed, full-batch gradient) is timed on the CPU and, when available, on CUDA, in
float64 and with float32 features (A in float64), for 1 run and for R runs batched. The baseline,
measured in the same process, is a plain NumPy float64 loop of one run that recomputes the features
at every step:

    xi ~ N(0, I); Phi = tanh((e^{-t} X0 + sqrt(Delta_t) xi) W^T / sqrt(d));
    Res = sqrt(Delta_t / p) Phi A^T + xi;  A -= 2 eta_e / (n sqrt(p Delta_t)) Res^T Phi.

Printed per variant: seconds per step, steps per second, run-steps per second (R x steps/s), the
extrapolated wall time of 2e6 steps (the paper's N_epoch; all R runs together) and the speed-up in
run-steps per second over the baseline. Only a few steps are timed (after one warm-up step), so the
defaults finish in well under 2 minutes; --d scales the size down (p = 60 d, n = 30 d).

    python benchmarks/bench_gd.py [--d 100] [--cpu-steps 3] [--gpu-steps 30] [--runs 5]
"""
from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch

PAPER_STEPS = 2e6
ETA_E = 5e-5


def model():
    from diffmix.theory import Model
    return Model("tanh", 0.01, 60.0, 30.0, [0.5, 0.5], [0.5, 0.25], [1.0, 1.0])


def baseline_numpy(W: np.ndarray, X0: np.ndarray, t: float, steps: int) -> float:
    """Seconds per step of the plain NumPy float64 loop (one run)."""
    p, d = W.shape
    n = X0.shape[0]
    delta = -math.expm1(-2.0 * t)
    rng = np.random.default_rng(0)
    A = np.zeros((d, p))
    scale = 2.0 * ETA_E / (n * math.sqrt(p * delta))

    def step(A):
        xi = rng.standard_normal((n, d))
        phi = np.tanh((math.exp(-t) * X0 + math.sqrt(delta) * xi) @ W.T / math.sqrt(d))
        residual = math.sqrt(delta / p) * phi @ A.T + xi
        A -= scale * residual.T @ phi
        return A

    A = step(A)
    start = time.perf_counter()
    for _ in range(steps):
        A = step(A)
    return (time.perf_counter() - start) / steps


def time_stepper(W, X0, runs: int, steps: int, feature_dtype, allow_tf32: bool = False) -> float:
    """Seconds per step of GDStepper (all runs together) on W's device."""
    from diffmix.gpu import GDStepper
    stepper = GDStepper(model(), W, X0, runs=runs, eta_e=ETA_E, noise_seed=0, feature_dtype=feature_dtype,
                        allow_tf32=allow_tf32)
    cuda = W.device.type == "cuda"
    stepper.step()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        stepper.step()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def report(name: str, runs: int, seconds: float, baseline: float) -> None:
    total = PAPER_STEPS * seconds
    print(f"  {name:<34} R = {runs}  {seconds * 1e3:10.2f} ms/step  {1.0 / seconds:9.2f} steps/s  "
          f"{runs / seconds:9.2f} run-steps/s  2e6 steps: {total / 3600.0:8.2f} h  "
          f"x{runs * baseline / seconds:7.2f} vs baseline")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=100, help="data dimension (p = 60 d, n = 30 d; default 100)")
    parser.add_argument("--cpu-steps", type=int, default=3, help="timed steps per CPU variant (default 3)")
    parser.add_argument("--gpu-steps", type=int, default=30, help="timed steps per CUDA variant (default 30)")
    parser.add_argument("--runs", type=int, default=5, help="batched runs of the R > 1 variants (default 5)")
    args = parser.parse_args(argv)
    from diffmix.gpu import FiniteSize, sample_mixture, sample_weights

    m = model()
    size = FiniteSize.from_model(m, args.d)
    W = sample_weights(size.p, size.d, generator=torch.Generator().manual_seed(0))
    X0, _ = sample_mixture(m, size.d, size.n, seed=1)
    print(f"GD step, d = {size.d}, p = {size.p}, n = {size.n}, tanh, t = {m.t}; "
          f"{torch.get_num_threads()} torch threads, {len(os.sched_getaffinity(0))} CPU cores, "
          f"load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}")
    flops = 6.0 * size.n * size.p * size.d
    print(f"  ~{flops / 1e9:.2f} GFLOP per step and run (three n x p x d matrix products)")

    baseline = baseline_numpy(W.numpy(), X0.numpy(), m.t, args.cpu_steps)
    report("baseline: NumPy float64 loop", 1, baseline, baseline)
    report("GDStepper cpu float64", 1, time_stepper(W, X0, 1, args.cpu_steps, None), baseline)
    report("GDStepper cpu float32 features", 1, time_stepper(W, X0, 1, args.cpu_steps, torch.float32), baseline)
    if torch.cuda.is_available():
        print(f"CUDA: {torch.cuda.get_device_name(0)}")
        Wc, Xc = W.to("cuda"), X0.to("cuda")
        for runs in sorted({1, args.runs}):
            for label, feature_dtype, tf32 in (("float64", None, False), ("float32 features", torch.float32, False),
                                               ("float32 features + TF32", torch.float32, True)):
                seconds = time_stepper(Wc, Xc, runs, args.gpu_steps, feature_dtype, tf32)
                report(f"GDStepper cuda {label}", runs, seconds, baseline)
    else:
        print("CUDA: not available (CPU variants only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
