"""Benchmark: spectral edges to 30 digits, and the Fig. 2b windows over 100 variance ratios.

(a) All edges of the binary Fig. 2 model (tanh, t = 0.001, psi_p = 60, psi_n = 30,
    rho = (0.5, 0.5), sigma^2 = (0.5, 0.25)) to 30 digits: ``spectrum(params, dps=30)`` with
    ``params = SpectralParams.from_model(model, dps=40)`` (whose time is reported separately).
    Target: <= 1 s.  Checked against the 30-digit edges of spectrum.md §5.
(b) Fig. 2b: W_gen, W_mem (``find_edges(...).timescales``) for 100 variance ratios q in [0.1, 1]
    at fixed rho-weighted mean variance m = 0.375, sigma^2 = (m/(rho1 + rho2 q),
    q m/(rho1 + rho2 q)), for rho = (0.5, 0.5) and (0.7, 0.3): 200 models, each from ``Model``
    through ``SpectralParams.from_model`` and ``find_edges`` (all timed).  Target: <= 5 s total.
    Checked against the window tables of spectrum.md §5 (q = 1, 0.5, 0.25; 8 digits).

    The same sweep by continuation of the folds along q (``edge_path``, a full search only where
    the bulk structure changes) is timed too (median of ``--path-repeats`` sweeps), judged
    against the same target and cross-checked against ``find_edges``; ``--only path`` runs just
    this variant (cross-checked at a few q per rho and at the window tables' q on the grid).

When a target is missed, the five functions with the largest cumulative time under cProfile are
printed (for (b) profiled on a few models, said so), so the engineer knows what to speed up.
Timings are wall-clock on this machine; the number of cores is printed.

    python benchmarks/bench_edges.py [--n-ratios 100] [--profile-models 6] [--path-repeats 3]
                                     [--only {a,b,path}]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time

import mpmath
import numpy as np

TARGET_EDGES_S = 1.0
TARGET_WINDOWS_S = 5.0
MEAN_VARIANCE = 0.375

FIG2_EDGES = [  # spectrum.md §5, Fig. 2 table, 30 digits
    ("1.14305703218834486620790399741e-4", "1.44485663145196850667420557831e-4"),
    ("7.75408725179372748420807227576e-4", "4.46074549644135435560749796410e-2"),
    ("7.97380217079669204301519645709", "19.8556041017495756161678816957"),
]
# spectrum.md §5, windows at fixed rho-weighted mean variance 0.375 (8 digits): q -> W_gen, W_mem.
# q = 1 is one class, so rho does not matter there.
WINDOW_REFS = {
    (0.5, 0.5): {1.0: (29.376913, 8260.8615), 0.5: (22.292367, 8726.0521),
                 0.25: (17.115256, 9861.6802)},
    (0.7, 0.3): {1.0: (29.376913, 8260.8615)},
}


def model_for(rho, q, activation="tanh", t=0.001, psi_p=60.0, psi_n=30.0):
    from diffmix.theory import Model
    s1 = MEAN_VARIANCE / (rho[0] + rho[1] * q)
    return Model(activation, t, psi_p, psi_n, rho, (s1, q * s1))


def profile_top(fn, n=5) -> str:
    """The n functions with the largest cumulative time while running fn()."""
    prof = cProfile.Profile()
    prof.runcall(fn)
    stats = pstats.Stats(prof)
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][3])
    # Skip the profiled lambda itself and cProfile's own entries.
    rows = [r for r in rows if r[0][2] not in ("<lambda>", "runcall")
            and "disable' of '_lsprof" not in r[0][2]][:n]
    out = io.StringIO()
    for (file, line, name), (cc, nc, tt, ct, _) in rows:
        where = f"{os.path.relpath(file) if file.startswith('/') else file}:{line}"
        out.write(f"    {ct:8.3f} s cumulative  {tt:7.3f} s own  {nc:8d} calls  {name}  ({where})\n")
    return out.getvalue().rstrip()


def cores() -> str:
    import numba
    return (f"{numba.get_num_threads()} Numba threads, {len(os.sched_getaffinity(0))} CPU cores "
            f"available; load average {os.getloadavg()[0]:.2f}")


def part_a(profile: bool, repeats: int) -> bool:
    from diffmix.solvers import SpectralParams, spectrum
    model = model_for((0.5, 0.5), 0.5)  # = Fig. 2: sigma^2 = (0.5, 0.25)
    assert model.variances == (0.5, 0.25), model.variances
    # Warm-up (Numba cache load, quadrature nodes): one float64 spectrum, not timed.
    spectrum(SpectralParams.from_model(model))

    t_par, t_edg = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p = SpectralParams.from_model(model, dps=40)
        t_par.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        spec = spectrum(p, dps=30)
        t_edg.append(time.perf_counter() - t0)
    t_params, t_edges = statistics.median(t_par), statistics.median(t_edg)

    # Checks.  (1) Against the 30-digit table of spectrum.md §5: those are the folds of the note's
    # own float64 inputs, printed there with only 13-17 digits (v2_1 = 0.009806924611766), so
    # neither the model's 40-digit coefficients nor the printed inputs can reproduce more than
    # ~1e-13 of them (tests/test_solvers_spectrum.py says the same).  (2) All 30 digits: every
    # edge polished again at 45 digits (same inputs) must agree to 1e-29 relative.
    from diffmix.solvers import polish_edge
    worst_table = 0.0
    with mpmath.workdps(40):
        for (lo, hi), b in zip(FIG2_EDGES, spec.bulks):
            for ref, e in ((lo, b.lower.lam), (hi, b.upper.lam)):
                ref = mpmath.mpf(ref)
                worst_table = max(worst_table, float(abs(mpmath.mpf(e) - ref) / ref))
    if len(spec.bulks) != len(FIG2_EDGES) or not spec.converged:
        worst_table = float("inf")
    worst_45 = 0.0
    for b in spec.bulks:
        for e in (b.lower, b.upper):
            e45 = polish_edge(e, p, 45)
            with mpmath.workdps(60):
                worst_45 = max(worst_45, float(abs(e45.lam - e.lam) / abs(e45.lam)))
    ok = worst_table <= 1e-13 and worst_45 <= 1e-29
    met = t_edges <= TARGET_EDGES_S
    print("(a) Fig. 2 model, all edges to 30 digits")
    for b in spec.bulks:
        print(f"    [{mpmath.nstr(b.lower.lam, 30)}, {mpmath.nstr(b.upper.lam, 30)}]  "
              f"mass {b.mass:.9f}")
    print(f"    SpectralParams.from_model(model, dps=40): {t_params:.3f} s (median of {repeats}; "
          "reported separately)")
    print(f"    spectrum(params, dps=30): {t_edges:.3f} s (median of {repeats}, min "
          f"{min(t_edg):.3f} s); target <= {TARGET_EDGES_S:g} s: "
          f"{'MET' if met else 'NOT MET'}")
    print(f"    with from_model(dps=40): {t_params + t_edges:.3f} s")
    print(f"    check: vs spectrum.md §5 table (folds of the note's float64 inputs, printed to "
          f"13-17 digits): max relative difference {worst_table:.1e} (tolerance 1e-13); "
          f"30 vs 45 digits (same 40-digit inputs): {worst_45:.1e} (tolerance 1e-29) -> "
          f"{'PASSED' if ok else 'FAILED'}")
    if profile and not met:
        print("    profile of spectrum(params, dps=30), top 5 by cumulative time:")
        print(profile_top(lambda: spectrum(p, dps=30)))
    if profile and t_params > TARGET_EDGES_S:
        print("    profile of SpectralParams.from_model(model, dps=40), top 5 by cumulative time:")
        print(profile_top(lambda: SpectralParams.from_model(model, dps=40)))
    return ok


def windows(rho, qs):
    from diffmix.solvers import SpectralParams, find_edges
    out = []
    for q in qs:
        spec = find_edges(SpectralParams.from_model(model_for(rho, q)))
        ts = spec.timescales
        out.append((q, spec.converged, len(spec.bulks), ts.get("W_gen"), ts.get("W_mem"),
                    spec.message))
    return out


def path_sweep(qs, repeats: int):
    """The (b) sweep by solvers.edge_path (models built inside the timing, as in (b)): median
    wall-clock time of ``repeats`` sweeps, and {rho: EdgePath} of the last one."""
    from diffmix.solvers import edge_path
    times, paths = [], {}
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        for rho in ((0.5, 0.5), (0.7, 0.3)):
            paths[rho] = edge_path([model_for(rho, q) for q in qs], qs)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, paths


def report_path(qs, repeats: int, reference: dict) -> bool:
    """Time the edge_path sweep and compare its windows with find_edges at the q in
    ``reference`` ({rho: {q: (W_gen, W_mem)}}).  Returns (every spectrum converged and agrees
    with find_edges to 1e-9, {rho: EdgePath})."""
    t_path, times, paths = path_sweep(qs, repeats)
    n_restart = sum(int(path.restarted.sum()) for path in paths.values())
    worst, n_bad = 0.0, 0
    for rho, path in paths.items():
        wg, wm = path.timescale("W_gen"), path.timescale("W_mem")
        conv = np.array([s.converged for s in path.spectra])
        n_bad += int((~conv | ~np.isfinite(wg)).sum())
        for q, (g, m_) in reference.get(rho, {}).items():
            i = int(np.argmin(np.abs(qs - q)))
            if conv[i] and np.isfinite(wg[i]):
                worst = max(worst, abs(wg[i] - g) / g, abs(wm[i] - m_) / m_)
    spread = f", min {min(times):.2f} s, max {max(times):.2f} s" if len(times) > 1 else ""
    print(f"    continuation variant (edge_path along q, {n_restart} full searches of "
          f"{2 * len(qs)}): {t_path:.2f} s (median of {len(times)}{spread}); target <= "
          f"{TARGET_WINDOWS_S:g} s: {'MET' if t_path <= TARGET_WINDOWS_S else 'NOT MET'}; {n_bad} "
          f"without windows; max relative difference of W_gen, W_mem vs find_edges at "
          f"{sum(map(len, reference.values()))} q: {worst:.1e}")
    return n_bad == 0 and worst <= 1e-9, paths


def part_path(n_ratios: int, repeats: int) -> bool:
    """Only the edge_path variant of (b), checked against find_edges at 5 evenly strided q per
    rho and against the window tables of spectrum.md §5 where their q lies on the grid."""
    from diffmix.solvers import SpectralParams, find_edges
    qs = np.linspace(0.1, 1.0, n_ratios)
    find_edges(SpectralParams.from_model(model_for((0.5, 0.5), 0.3)))  # warm-up, not timed
    print(f"(b, continuation only) Fig. 2b windows by edge_path: {n_ratios} variance ratios q in "
          f"[0.1, 1], two rho: {2 * n_ratios} models")
    sample = qs[np.unique(np.linspace(0, len(qs) - 1, 5).round().astype(int))]
    reference = {rho: {q: windows(rho, [q])[0][3:5] for q in sample}
                 for rho in ((0.5, 0.5), (0.7, 0.3))}
    ok, paths = report_path(qs, repeats, reference)
    # The tables of spectrum.md §5 (8 digits) where their q is on the grid.
    worst, n = 0.0, 0
    for rho, refs in WINDOW_REFS.items():
        wg, wm = paths[rho].timescale("W_gen"), paths[rho].timescale("W_mem")
        for q, (rg, rm) in refs.items():
            i = int(np.argmin(np.abs(qs - q)))
            if abs(qs[i] - q) <= 1e-12:
                n += 1
                worst = max(worst, abs(wg[i] - rg) / rg, abs(wm[i] - rm) / rm)
    ok = ok and worst <= 1e-7
    print(f"    check: vs find_edges (above) and vs spectrum.md §5 window tables ({n} points on "
          f"the grid, 8 digits): max relative difference {worst:.1e} (tolerance 1e-7) -> "
          f"{'PASSED' if ok else 'FAILED'}")
    return ok


def part_b(n_ratios: int, profile: bool, profile_models: int, path_repeats: int = 1) -> bool:
    from diffmix.solvers import SpectralParams, find_edges
    qs = np.linspace(0.1, 1.0, n_ratios)
    find_edges(SpectralParams.from_model(model_for((0.5, 0.5), 0.3)))  # warm-up, not timed
    print(f"(b) Fig. 2b windows: {n_ratios} variance ratios q in [0.1, 1], rho-weighted mean "
          f"variance {MEAN_VARIANCE}, two rho: {2 * n_ratios} models (Model -> from_model -> "
          "find_edges)")
    results, total = {}, 0.0
    for rho in ((0.5, 0.5), (0.7, 0.3)):
        t0 = time.perf_counter()
        results[rho] = windows(rho, qs)
        dt = time.perf_counter() - t0
        total += dt
        rows = results[rho]
        bad = [r for r in rows if not r[1] or r[3] is None]
        nb = sorted({r[2] for r in rows})
        print(f"    rho = {rho}: {dt:.2f} s ({1e3 * dt / len(qs):.0f} ms per model); bulks per "
              f"model {nb}; {len(rows) - len(bad)}/{len(rows)} converged with both windows")
        for r in bad[:3]:
            print(f"      not converged at q = {r[0]:.6g}: {r[5]}")
        for i in (0, len(rows) // 2, len(rows) - 1):
            q, _, k, wg, wm, _ = rows[i]
            print(f"      q = {q:.4f}: {k} bulks, W_gen = {wg}, W_mem = {wm}")
    met = total <= TARGET_WINDOWS_S
    n_bad = sum(not r[1] or r[3] is None for rows in results.values() for r in rows)
    print(f"    total: {total:.2f} s; target <= {TARGET_WINDOWS_S:g} s: "
          f"{'MET' if met else 'NOT MET'}; {n_bad} of {2 * len(qs)} models without windows "
          "(converged = False)")

    # The same sweep by continuation of the folds along q (solvers.edge_path): judged against
    # the same target, cross-checked against find_edges at every q.
    path_ok, _ = report_path(qs, path_repeats, {rho: {r[0]: (r[3], r[4]) for r in rows if r[1]
                                                    and r[3] is not None}
                                              for rho, rows in results.items()})

    # Check (not timed): the reference points of spectrum.md §5.
    ok = all(r[1] and r[3] is not None for rows in results.values() for r in rows)
    worst = 0.0
    for rho, refs in WINDOW_REFS.items():
        got = windows(rho, list(refs))
        for (q, conv, _, wg, wm, msg), (rg, rm) in zip(got, refs.values()):
            if not conv or wg is None:
                ok = False
                print(f"    reference point rho = {rho}, q = {q}: not converged ({msg})")
                continue
            worst = max(worst, abs(wg - rg) / rg, abs(wm - rm) / rm)
    ok = ok and worst <= 1e-7 and path_ok
    print(f"    check: vs spectrum.md §5 window tables ({sum(map(len, WINDOW_REFS.values()))} "
          f"points, 8 digits): max relative difference {worst:.1e} (tolerance 1e-7); every "
          f"model converged: {n_bad == 0}; edge_path agrees with find_edges to 1e-9: {path_ok} "
          f"-> {'PASSED' if ok else 'FAILED'}")
    if profile and not met:
        k = max(1, min(profile_models, len(qs)))
        sub = qs[:: max(1, len(qs) // k)][:k]
        print(f"    profile of {len(sub)} of the {len(qs)} rho = (0.5, 0.5) models (evenly strided "
              "q), top 5 by cumulative time:")
        print(profile_top(lambda: windows((0.5, 0.5), sub)))
        print(f"    where find_edges spends it (same {len(sub)} models; resolvent solves by size):")
        print(resolvent_breakdown(lambda: windows((0.5, 0.5), sub)))
    return ok


def resolvent_breakdown(fn) -> str:
    """Calls and time of solve_resolvent inside find_edges while running fn(), grouped by the
    number of points per call (scan, mass quadrature, single-point bracket solves)."""
    import diffmix.solvers._spectrum as spectrum_module
    orig = spectrum_module.solve_resolvent
    calls = {}

    def timed(p, lam, **kw):
        t0 = time.perf_counter()
        out = orig(p, lam, **kw)
        c = calls.setdefault(int(np.size(lam)), [0, 0.0])
        c[0] += 1
        c[1] += time.perf_counter() - t0
        return out

    spectrum_module.solve_resolvent = timed
    try:
        t0 = time.perf_counter()
        fn()
        total = time.perf_counter() - t0
    finally:
        spectrum_module.solve_resolvent = orig
    rows = sorted(calls.items(), key=lambda kv: -kv[1][1])
    return "\n".join(f"    {t:8.3f} s ({100 * t / total:4.1f}%)  {n:6d} calls of {size} points"
                     for size, (n, t) in rows[:6])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-ratios", type=int, default=100, help="variance ratios in (b)")
    parser.add_argument("--profile-models", type=int, default=6,
                        help="models profiled in (b) when its target is missed")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats in (a) (median)")
    parser.add_argument("--no-profile", action="store_true", help="skip the profile hints")
    parser.add_argument("--path-repeats", type=int, default=3,
                        help="timed edge_path sweeps in (b) (median)")
    parser.add_argument("--only", choices=("a", "b", "path"),
                        help="run one part (path: only the edge_path variant of (b))")
    args = parser.parse_args(argv)
    print(f"cores: {cores()} (wall-clock timings; other processes inflate them)")
    ok = True
    if args.only in (None, "a"):
        ok &= part_a(not args.no_profile, max(1, args.repeats))
    if args.only in (None, "b"):
        ok &= part_b(args.n_ratios, not args.no_profile, args.profile_models, args.path_repeats)
    if args.only == "path":
        ok &= part_path(args.n_ratios, args.path_repeats)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
