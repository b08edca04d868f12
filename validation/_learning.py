"""Learning curves, class times and the learning-dynamics figures of the paper (Figs. 2a, 3, 4, 10).

Everything here is built on :class:`diffmix.theory.GradientFlow` (exact gradient flow from one
eigendecomposition, ``dynamics.md`` §3, §11) fed with the matrices of a finite draw
(:mod:`diffmix.validation._curves`): GEP matrices for centered mixtures with an odd activation
(fast, any size), the exact-in-noise matrices of the random-features model otherwise (centroids,
cosines; ``dynamics.md`` §6). Seeds are averaged on the curves and the class times are taken on
the averaged curve (``dynamics.md`` §5, as in the paper's App. I.1).

Time is the flow time tau = k eta_e (:data:`diffmix.theory.TIME_UNIT`); the paper's figures plot
tau / eta_e = k, so multiply by 1 / eta_e (2e4 at the paper's eta_e = 5e-5) to compare axes; the
paper's own unit is an open question (``dynamics.md`` §2, UNRESOLVED).

``--method analytic`` (``curves``, ``hierarchy``) and the analytic lines of the figures use the exact
asymptotic curves of :mod:`diffmix.solvers._test_error` (``test-error.md``) instead: no sampling, any
size, time in tau/p (flow time divided by p; an eigenvalue lambda relaxes at tau/p = 1/(2 lambda)).
They apply to centered mixtures with odd activations only; the finite-size curves drawn around them
are converted to tau/p (tau / p of their own p).

Figure parameters (paper captions; values the captions lost are chosen as in ``dynamics.md`` §8):

* Fig. 2a: tanh, t = 0.001, psi_p = 60, psi_n = 30, rho = (0.5, 0.5), sigma^2 = (0.5, 0.25),
  centered; the paper's finite size d = 100 (``--full``), reduced d = 20 by default.
* Fig. 3 / Fig. 10: baseline sigma^2 = (0.5, 0.5), ||mu_c|| = sqrt(d), rho = (0.5, 0.5),
  orthogonal centroids; ablations sigma_2^2 = 0.25, ||mu_2|| = 1.5 sqrt(d), rho = (0.7, 0.3)
  (the caption's value was lost; the choice of ``dynamics.md`` §8); t = 0.01 (Fig. 4's caption),
  psi_p = 60, psi_n = 30; exact matrices (the extensive-centroid GEP is later work); d = 20, seeds
  100-102 by default.
* Fig. 4: sigma^2 = (0.5, 0.25), ||mu_c|| = sqrt(d) orthogonal, t = 0.01, psi_p = 60, psi_n = 30,
  rho_1 swept over 0.1 ... 0.9; gaps = class 2 minus class 1.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

from diffmix._provenance import provenance, write_json_atomic
from diffmix.derivations._codegen import write_atomic
from diffmix.theory import (TIME_UNIT, FlowAverage, Model, ModelError, class_coefficients, class_times,
                            class_times_on_grid, load_model, time_gaps)

from ._curves import exact_flow, gep_flow

__all__ = ["default_matrices", "model_flows", "hierarchy", "analytic_hierarchy", "analytic_learning_flow",
           "finite_band", "curves_main", "hierarchy_main",
           "figure_fig2a", "figure_fig3", "GDOptions", "gd_curves", "figure_fig4", "figure_fig10", "fig3_models", "fig4_model",
           "LEARNING_FIGURES"]

_MU0_TOL = 1e-12


def default_matrices(model: Model) -> str:
    """``"gep"`` for a centered mixture with an odd activation (mu0 = 0), else ``"exact"``.

    (``"gep"`` may still be asked for explicitly with centroids: the extensive-centroid GEP.)"""
    if model.is_centered and all(abs(float(c.mu0)) <= _MU0_TOL for c in class_coefficients(model)):
        return "gep"
    return "exact"


def model_flows(model: Model, d: int, seeds: Sequence[int], matrices: str = "auto", *,
                cache: bool = True, progress: bool = False) -> tuple[FlowAverage, str]:
    """One gradient flow per seed (cached on disk) and their average; returns (average, kind)."""
    if not isinstance(d, int) or d < model.n_classes:
        raise ValueError(f"d = {d!r}: must be an integer >= the number of classes ({model.n_classes})")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: at least one seed is needed")
    kind = default_matrices(model) if matrices == "auto" else matrices
    if kind == "gep":
        # centered + odd: the Gram route; otherwise the extensive-centroid GEP (speciation.md §1.2,
        # gep.md §4) with a dense eigendecomposition
        build = lambda s: gep_flow(model, d, seed=s, cache=cache)
    elif kind == "exact":
        build = lambda s: exact_flow(model, d, seed=s, cache=cache)
    else:
        raise ValueError(f"matrices = {matrices!r}: must be 'auto', 'gep' or 'exact'")
    it = seeds
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(seeds, desc=f"{kind} matrices d={d}", unit="seed", file=sys.stderr)
    return FlowAverage([build(s) for s in it]), kind


def hierarchy(model: Model, d: int, seeds: Sequence[int], matrices: str = "auto", *,
              threshold: float = 1.0, flat_tol: float = 1e-3, cache: bool = True,
              progress: bool = False) -> dict:
    """Class times, minima, flat intervals and gaps of every class (a JSON-ready record)."""
    flow, kind = model_flows(model, d, seeds, matrices, cache=cache, progress=progress)
    times = class_times(flow, threshold=threshold, flat_tol=flat_tol)
    return {"classes": [t.as_dict() for t in times], "gaps": time_gaps(times),
            "time_unit": TIME_UNIT, "matrices": kind, "d": d, "p": flow.p,
            "n": int(round(model.psi_n * d)), "seeds": list(seeds)}


def analytic_learning_flow(model: Model, *, nodes: int = 600, max_nodes: int = 5400, taus=None):
    """The analytic curves of a centered odd-activation Model (:func:`diffmix.solvers._test_error.analytic_flow`),
    with the contour nodes tripled (up to ``max_nodes``) until the curves converge at ``taus`` (tau/p;
    default: 400 log-spaced times over the flow's range and tau = inf). Raises ``ArithmeticError`` if they
    still do not, ``ValueError`` for a model outside the formula (centroids, non-odd activation)."""
    from diffmix.solvers._test_error import analytic_flow, check_analytic_model
    check_analytic_model(model)
    n = int(nodes)
    while True:
        flow = analytic_flow(model, nodes=n)
        grid = (np.concatenate([np.geomspace(*flow.time_range(), 400), [np.inf]]) if taus is None
                else np.asarray(taus, dtype=float))
        check = flow.errors(grid)
        if check.converged.all():
            return flow
        if 3 * n > max_nodes:
            flow.errors(grid, strict=True)      # raises with the details
        n *= 3


def analytic_hierarchy(model: Model, *, threshold: float = 1.0, flat_tol: float = 1e-3, nodes: int = 600,
                       max_nodes: int = 5400) -> dict:
    """Class times, minima, flat intervals and gaps of the analytic curves (a JSON-ready record), in tau/p.

    Same keys as :func:`hierarchy` for the classes (tau_gen, min_error, flat_interval, tau_mem (None when
    not reached), E_inf, threshold, flat_tol), "time_unit": "tau/p", "method": "analytic"; raises
    ``ArithmeticError`` when the contour check fails even at ``max_nodes``."""
    from diffmix.solvers._test_error import ANALYTIC_TIME_UNIT, analytic_class_times
    n = int(nodes)
    while True:
        flow = analytic_learning_flow(model, nodes=n, max_nodes=max_nodes)
        times = analytic_class_times(flow, threshold=threshold, flat_tol=flat_tol)
        if times.converged or 3 * flow.nodes > max_nodes:
            break
        n = 3 * flow.nodes
    if not times.converged:
        raise ArithmeticError(f"analytic class times: {times.message} with {flow.nodes} contour nodes")
    gaps = time_gaps(times.classes)
    gaps["time_unit"] = ANALYTIC_TIME_UNIT
    return {"classes": [t.as_dict() for t in times.classes], "gaps": gaps, "time_unit": ANALYTIC_TIME_UNIT,
            "method": "analytic", "nodes": flow.nodes, "converged": times.converged,
            "error_estimate": times.error_estimate, "model": model.to_dict()}


def finite_band(model: Model, d: int, seeds: Sequence[int], tau_over_p, *, cache: bool = True,
                progress: bool = False) -> dict:
    """Seed mean and single-seed standard deviation (ddof = 1; 0 for one seed) of the finite-size
    gradient-flow curves (GEP matrices, :func:`model_flows`) at times tau/p (flow time tau = (tau/p) p)."""
    flow, kind = model_flows(model, d, seeds, "auto", cache=cache, progress=progress)
    tau = np.asarray(tau_over_p, dtype=float) * flow.p
    mean = flow.errors(tau)
    sd = flow.spread(tau)
    return {"d": d, "p": flow.p, "n": int(round(model.psi_n * d)), "seeds": [int(x) for x in seeds],
            "matrices": kind, "train_mean": mean.train, "train_sd": sd["train"], "test_c_mean": mean.test_c,
            "test_c_sd": sd["test_c"], "time_unit": "tau/p"}


# ---------------------------------------------------------------------- CLI


def _common_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("model", help="model file (.toml or .json)")
    parser.add_argument("--method", default="finite", choices=("finite", "analytic"),
                        help="finite: exact gradient flow of a finite draw at dimension --d (default); analytic: "
                             "the exact asymptotic curves of test-error.md (centered mixtures, odd activations; "
                             "time in tau/p)")
    parser.add_argument("--d", type=int, default=None,
                        help="data dimension (p, n follow from the psi's; default 20)")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default 1)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds averaged (default 1)")
    parser.add_argument("--matrices", default=None, choices=("auto", "gep", "exact"),
                        help="auto: GEP for centered odd-activation models, else exact (default); finite method only")
    parser.add_argument("--nodes", type=int, default=600,
                        help="analytic method: contour nodes (multiple of 6; tripled automatically until the "
                             "curves converge; default 600)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the on-disk cache")
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


_FINITE_DEFAULTS = {"d": 20, "seed": 1, "seeds": 1, "matrices": "auto"}


def _check_counts(args, *, finite_options_allowed: bool = True) -> None:
    """Validate the counts and fill the finite-size defaults. With the analytic method the finite-size
    options are refused unless ``finite_options_allowed`` (curves: they define the finite-size band)."""
    given = [f"--{k}" for k in _FINITE_DEFAULTS if getattr(args, k) is not None]
    if args.method == "analytic":
        if "--matrices" in given:
            raise ValueError("--matrices: applies to --method finite only (the analytic curves are those of "
                             "the GEP model, test-error.md)")
        if given and not finite_options_allowed:
            raise ValueError(f"{', '.join(given)}: not used by --method analytic (the asymptotic curves do "
                             "not depend on d or on draws; use --method finite for a finite size)")
    elif args.nodes != 600:
        raise ValueError("--nodes: applies to --method analytic only")
    band = bool(given)
    for k, v in _FINITE_DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.band = band
    if args.seeds < 1:
        raise ValueError(f"--seeds = {args.seeds}: must be >= 1")
    if args.d < 1:
        raise ValueError(f"--d = {args.d}: must be >= 1")
    if args.nodes < 12 or args.nodes % 6:
        raise ValueError(f"--nodes = {args.nodes}: must be a multiple of 6, >= 12")


_ERRORS = (ValueError, ModelError, ArithmeticError, OSError)


def _jsonable(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def hierarchy_main(argv: list[str] | None = None) -> int:
    """``diffmix hierarchy model.toml``: tau_gen, tau_mem (null when not reached) per class."""
    parser = _common_parser("diffmix hierarchy",
                            "Class-specific generalization and memorization times (paper eq. (15)) "
                            "from exact gradient-flow curves of a finite draw.")
    parser.add_argument("--threshold", type=float, default=1.0, help="tau_mem threshold (default 1)")
    parser.add_argument("--flat-tol", type=float, default=1e-3,
                        help="the flat interval is where E <= min + flat_tol (default 1e-3)")
    args = parser.parse_args(argv)
    try:
        _check_counts(args, finite_options_allowed=False)
        model = load_model(args.model)
        if args.method == "analytic":
            record = analytic_hierarchy(model, threshold=args.threshold, flat_tol=args.flat_tol, nodes=args.nodes)
        else:
            record = hierarchy(model, args.d, range(args.seed, args.seed + args.seeds), args.matrices,
                               threshold=args.threshold, flat_tol=args.flat_tol, cache=not args.no_cache,
                               progress=not args.json)
    except _ERRORS as exc:
        print(f"diffmix hierarchy: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(record, default=_jsonable, allow_nan=False))
        return 0
    if args.method == "analytic":
        from diffmix.solvers._test_error import ANALYTIC_TIME_UNIT_TEXT
        print(f"{args.model}: analytic asymptotic curves (test-error.md), {record['nodes']} contour nodes; "
              f"time: {ANALYTIC_TIME_UNIT_TEXT}")
        _print_class_times(record["classes"], "/p")
        return 0
    print(f"{args.model}: {record['matrices']} matrices, d = {record['d']}, p = {record['p']}, "
          f"n = {record['n']}, seeds {record['seeds'][0]}..{record['seeds'][-1]}; time: {TIME_UNIT}")
    _print_class_times(record["classes"], "")
    return 0


def _print_class_times(classes: list[dict], unit: str) -> None:
    """One line per class: tau_gen (with E_min and the flat interval) and tau_mem; ``unit`` "/p" or ""."""
    for c, t in enumerate(classes):
        mem = "not reached" if t["tau_mem"] is None else f"{t['tau_mem']:.6g}"
        print(f"  class {c + 1}: tau_gen{unit} = {t['tau_gen']:.6g} (E_min = {t['min_error']:.6f}, flat "
              f"[{t['flat_interval'][0]:.4g}, {t['flat_interval'][1]:.4g}]), tau_mem{unit} = {mem}")


def _curves_csv(curves, time_header: str = "tau", converged=None) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    C = curves.test_c.shape[0]
    header = [time_header, "train", "test"] + [f"test_{c}" for c in range(C)]
    if curves.mse_c is not None:
        header += [f"mse_{c}" for c in range(C)]
    if converged is not None:
        header += ["converged"]
    w.writerow(header)
    for i, tau in enumerate(curves.tau):
        row = [tau, curves.train[i], curves.test[i]] + list(curves.test_c[:, i])
        if curves.mse_c is not None:
            row += list(curves.mse_c[:, i])
        cells = [f"{x:.17g}" for x in row]
        if converged is not None:
            cells.append(str(int(bool(converged[i]))))
        w.writerow(cells)
    return buf.getvalue()


def _draw_class_curves(ax, tau, curves, times=None, *, styles=("-", "--"), label_prefix=""):
    for c in range(curves.test_c.shape[0]):
        line, = ax.plot(tau, curves.test_c[c], styles[0], label=f"{label_prefix}test, class {c + 1}")
        if times is not None:
            t = times[c]
            ax.plot([t.tau_gen], [t.min_error], "o", color=line.get_color(), ms=4)
            if t.tau_mem is not None:
                ax.axvline(t.tau_mem, color=line.get_color(), lw=0.7, ls=":")
    ax.plot(tau, curves.train, "k" + styles[1], lw=1, label=f"{label_prefix}train")
    ax.axhline(1.0, color="0.6", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel(r"flow time $\tau = k\,\eta_e$")


def curves_main(argv: list[str] | None = None) -> int:
    """``diffmix curves model.toml``: train / class test / score-MSE curves as CSV, JSON and a plot."""
    parser = _common_parser("diffmix curves",
                            "Exact gradient-flow learning curves per class (train, class test, mixture "
                            "test, score MSE) of a finite draw, from one eigendecomposition; or, with "
                            "--method analytic, the exact asymptotic curves (time tau/p; with --d/--seeds "
                            "also the finite-size band of sampled GEP matrices around them).")
    parser.add_argument("--points", type=int, default=400, help="log-spaced times (default 400)")
    parser.add_argument("--tau-min", type=float,
                        help="first time (flow time; tau/p with --method analytic; default from the spectrum)")
    parser.add_argument("--tau-max", type=float,
                        help="last time (flow time; tau/p with --method analytic; default from the spectrum)")
    parser.add_argument("--out", metavar="DIR", help="write curves.csv, curves.json, curves.png/.pdf, provenance.json")
    args = parser.parse_args(argv)
    try:
        _check_counts(args)
        if args.points < 2:
            raise ValueError(f"--points = {args.points}: must be >= 2")
        model = load_model(args.model)
        if args.method == "analytic":
            return _analytic_curves_main(args, model)
        seeds = list(range(args.seed, args.seed + args.seeds))
        flow, kind = model_flows(model, args.d, seeds, args.matrices, cache=not args.no_cache,
                                 progress=not args.json)
        lo, hi = flow.time_range()
        lo = args.tau_min if args.tau_min is not None else lo
        hi = args.tau_max if args.tau_max is not None else hi
        if not (0 < lo < hi):
            raise ValueError(f"--tau-min/--tau-max: need 0 < min < max, got {lo}, {hi}")
        tau = np.geomspace(lo, hi, args.points)
        curves = flow.errors(tau)
        times = class_times(flow)
    except _ERRORS as exc:
        print(f"diffmix curves: error: {exc}", file=sys.stderr)
        return 2
    record = {"time_unit": TIME_UNIT, "matrices": kind, "d": args.d, "p": flow.p, "seeds": seeds,
              "tau": tau.tolist(), "train": curves.train.tolist(), "test": curves.test.tolist(),
              "test_c": curves.test_c.tolist(),
              "mse_c": None if curves.mse_c is None else curves.mse_c.tolist(),
              "classes": [t.as_dict() for t in times]}
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "curves.csv", _curves_csv(curves))
        write_json_atomic(out / "curves.json", record)
        fig = Figure(figsize=(7.5, 4.8), layout="constrained")
        ax = fig.add_subplot()
        _draw_class_curves(ax, tau, curves, times)
        ax.plot(tau, curves.test, color="0.3", lw=1, label="test, mixture")
        ax.set_ylabel("error (1 at initialization)")
        ax.set_title(f"Gradient-flow learning curves: {_model_title(model)}\n{kind} matrices, d = {args.d}, "
                     f"p = {flow.p}, seeds {seeds[0]}-{seeds[-1]}; dots: $\\tau_{{gen}}$, dotted: $\\tau_{{mem}}$",
                     fontsize=8)
        ax.legend(fontsize=7)
        for ext in ("png", "pdf"):
            fig.savefig(out / f"curves.{ext}", dpi=150 if ext == "png" else None)
        params = {"model_file": str(args.model), "model": model.to_dict(), "model_hash": model.content_hash(),
                  "d": args.d, "seeds": seeds, "matrices": kind, "points": args.points,
                  "tau_range": [lo, hi], "time_unit": TIME_UNIT}
        write_json_atomic(out / "provenance.json", provenance("diffmix curves", params))
    if args.json:
        print(json.dumps(record, default=_jsonable))
    else:
        for c, t in enumerate(times):
            mem = "not reached" if t.tau_mem is None else f"{t.tau_mem:.6g}"
            print(f"class {c + 1}: tau_gen = {t.tau_gen:.6g}, E_min = {t.min_error:.6f}, tau_mem = {mem}")
        if args.out is not None:
            print(f"wrote {args.out}/curves.csv, curves.json, curves.png, curves.pdf, provenance.json")
    return 0


def _analytic_curves_main(args, model: Model) -> int:
    """``diffmix curves --method analytic``: the asymptotic curves in tau/p (and, with --d/--seed/--seeds,
    the finite-size band around them). Errors are raised to :func:`curves_main`'s handler."""
    from diffmix.solvers._test_error import ANALYTIC_TIME_UNIT, ANALYTIC_TIME_UNIT_TEXT, analytic_class_times
    probe = analytic_learning_flow(model, nodes=args.nodes)
    lo, hi = probe.time_range()
    lo = args.tau_min if args.tau_min is not None else lo
    hi = args.tau_max if args.tau_max is not None else hi
    if not (0 < lo < hi):
        raise ValueError(f"--tau-min/--tau-max: need 0 < min < max, got {lo}, {hi}")
    s = np.geomspace(lo, hi, args.points)
    grid = np.concatenate([s, [np.inf]])
    flow = (probe if probe.errors(grid).converged.all()
            else analytic_learning_flow(model, nodes=probe.nodes, taus=grid))
    curves = flow.errors(s, strict=True)
    times = analytic_class_times(flow)
    if not times.converged:
        raise ArithmeticError(f"analytic class times: {times.message}")
    band = None
    if args.band:
        seeds = list(range(args.seed, args.seed + args.seeds))
        band = finite_band(model, args.d, seeds, s, cache=not args.no_cache, progress=not args.json)
    record = {"time_unit": ANALYTIC_TIME_UNIT, "method": "analytic", "nodes": flow.nodes,
              "tau_over_p": s.tolist(), "train": curves.train.tolist(), "test": curves.test.tolist(),
              "test_c": curves.test_c.tolist(), "mse_c": curves.mse_c.tolist(),
              "converged": curves.converged.tolist(), "error_estimate": float(curves.error_estimate.max()),
              "classes": [t.as_dict() for t in times.classes],
              "band": None if band is None else {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                                 for k, v in band.items()}}
    if band is not None:
        dev = np.abs(band["test_c_mean"] - curves.test_c)
        record["band"]["max_abs_mean_minus_analytic"] = dev.max(axis=1).tolist()
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "curves.csv", _curves_csv(curves, "tau_over_p", curves.converged))
        write_json_atomic(out / "curves.json", record)
        fig = Figure(figsize=(7.5, 4.8), layout="constrained")
        ax = fig.add_subplot()
        _draw_analytic(ax, s, curves, times.classes, band)
        ax.plot(s, curves.test, color="0.3", lw=1, label="test, mixture (analytic)")
        ax.set_ylabel("error (1 at initialization)")
        what = "" if band is None else (f"; bands: GEP d = {band['d']}, p = {band['p']}, seed mean $\\pm$ 1 s.d. "
                                        f"over seeds {band['seeds'][0]}-{band['seeds'][-1]}")
        ax.set_title(f"Analytic asymptotic learning curves (test-error.md)\n{_model_title(model)}\n"
                     f"{flow.nodes} contour nodes{what}; dots: $\\tau_{{gen}}/p$, dotted: $\\tau_{{mem}}/p$",
                     fontsize=8)
        ax.legend(fontsize=7)
        for ext in ("png", "pdf"):
            fig.savefig(out / f"curves.{ext}", dpi=150 if ext == "png" else None)
        params = {"model_file": str(args.model), "model": model.to_dict(), "model_hash": model.content_hash(),
                  "method": "analytic", "nodes": flow.nodes, "points": args.points, "tau_over_p_range": [lo, hi],
                  "time_unit": ANALYTIC_TIME_UNIT,
                  "band": None if band is None else {"d": band["d"], "seeds": band["seeds"]}}
        write_json_atomic(out / "provenance.json", provenance("diffmix curves", params))
    if args.json:
        print(json.dumps(record, default=_jsonable))
    else:
        print(f"time: {ANALYTIC_TIME_UNIT_TEXT}")
        for c, t in enumerate(times.classes):
            mem = "not reached" if t.tau_mem is None else f"{t.tau_mem:.6g}"
            print(f"class {c + 1}: tau_gen/p = {t.tau_gen:.6g}, E_min = {t.min_error:.6f}, tau_mem/p = {mem}")
        if band is not None:
            print("finite size d = {}: max |seed mean - analytic| per class: {}".format(
                band["d"], ", ".join(f"{x:.3g}" for x in record["band"]["max_abs_mean_minus_analytic"])))
        if args.out is not None:
            print(f"wrote {args.out}/curves.csv, curves.json, curves.png, curves.pdf, provenance.json")
    return 0


def _draw_analytic(ax, s, curves, times=None, band=None, *, train_analytic=None, label_suffix=""):
    """Analytic class test and train lines (x = tau/p) with, if given, the finite-size band (seed mean
    +- 1 single-seed s.d., dashed mean) of :func:`finite_band` on the same tau/p grid."""
    train = curves.train if train_analytic is None else train_analytic
    for c in range(curves.test_c.shape[0]):
        line, = ax.plot(s, curves.test_c[c], f"C{c}-", lw=1.4, label=f"test, class {c + 1}, analytic{label_suffix}")
        if band is not None:
            m, sd = np.asarray(band["test_c_mean"][c]), np.asarray(band["test_c_sd"][c])
            ax.fill_between(s, m - sd, m + sd, color=line.get_color(), alpha=0.25, lw=0)
            ax.plot(s, m, "--", color=line.get_color(), lw=0.8,
                    label=f"class {c + 1}, GEP d = {band['d']}: seed mean $\\pm$ s.d.")
        if times is not None:
            t = times[c]
            ax.plot([t.tau_gen], [t.min_error], "o", color=line.get_color(), ms=4)
            if t.tau_mem is not None:
                ax.axvline(t.tau_mem, color=line.get_color(), lw=0.7, ls=":")
    ax.plot(s, train, "k-", lw=1.2, label=f"train, analytic{label_suffix}")
    if band is not None:
        m, sd = np.asarray(band["train_mean"]), np.asarray(band["train_sd"])
        ax.fill_between(s, m - sd, m + sd, color="k", alpha=0.15, lw=0)
        ax.plot(s, m, "k--", lw=0.8, label=f"train, GEP d = {band['d']}: seed mean $\\pm$ s.d.")
    ax.axhline(1.0, color="0.6", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel(r"$\tau/p$ (flow time / p; an eigenvalue $\lambda$ relaxes at $1/(2\lambda)$)")


# ---------------------------------------------------------------------- gradient descent


@dataclass(frozen=True)
class GDOptions:
    """Gradient-descent points on a figure: ``runs`` noise streams per seed at step ``eta_e``
    (units d / Delta_t; the paper's 5e-5 is far too small to reach tau_mem at reduced size, so the
    figures use 1.0 by default, whose fresh-noise bias is ~1e-3 in E, ``dynamics.md`` §7),
    ``points`` log-spaced logged steps, on ``device``."""

    runs: int = 4
    eta_e: float = 1.0
    points: int = 40
    device: str = "cpu"

    def as_dict(self) -> dict:
        return {"runs": self.runs, "eta_e": self.eta_e, "points": self.points, "device": self.device}


def gd_curves(model: Model, d: int, seeds: Sequence[int], tau_max: float, gd: GDOptions) -> dict:
    """Mean gradient-descent curves over ``seeds`` x ``gd.runs`` (exact-matrix evaluation) up to tau_max.

    The random-features model is trained on its real features (:func:`diffmix.gpu.simulate_gd`);
    its losses are evaluated exactly by the quadratic form with the exact-in-noise matrices of the
    same draw, so the points are comparable with :func:`exact_flow` of the same seeds.
    """
    from diffmix.gpu import build_system, simulate_gd
    steps = max(10, int(math.ceil(tau_max / gd.eta_e)))
    results = []
    for s in seeds:
        system = build_system(model, d, seed=s, matrices="exact", device=gd.device)
        results.append(simulate_gd(system, steps=steps, runs=gd.runs, eta_e=gd.eta_e, noise_seed=1000 + s,
                                   log_points=gd.points, progress=True))
    tau = results[0].tau
    keep = tau > 0
    test_c = np.mean([np.asarray(r.test_c_mean) for r in results], axis=0)[:, keep]
    train = np.mean([np.asarray(r.train_mean) for r in results], axis=0)[keep]
    return {"tau": tau[keep].tolist(), "train": train.tolist(), "test_c": test_c.tolist(),
            "times": class_times_on_grid(tau[keep], test_c), "steps": steps, **gd.as_dict()}


# ---------------------------------------------------------------------- figures


def _model_title(model: Model) -> str:
    f = lambda v: "(" + ", ".join(f"{x:g}" for x in v) + ")"
    norms = "centered" if model.is_centered else f"$\\|\\mu\\|^2/d$ = {f(model.centroid_norm2)}"
    return (f"{model.activation}, t = {model.t:g}, $\\psi_p$ = {model.psi_p:g}, $\\psi_n$ = {model.psi_n:g}, "
            f"$\\rho$ = {f(model.weights)}, $\\sigma^2$ = {f(model.variances)}, {norms}")


@dataclass(frozen=True)
class LearningFigure:
    """What a learning-dynamics figure function wrote (kind -> path) and the numbers shown."""

    name: str
    files: dict
    numbers: dict


def _save(fig: Figure, out: Path, name: str, numbers: dict, params: dict) -> LearningFigure:
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for ext in ("png", "pdf"):
        files[ext] = out / f"{name}.{ext}"
        fig.savefig(files[ext], dpi=150 if ext == "png" else None)
    files["json"] = write_json_atomic(out / f"{name}.json", numbers)
    files["provenance"] = write_json_atomic(out / "provenance.json",
                                            provenance(f"diffmix figure {name}", params))
    return LearningFigure(name, files, numbers)


FIG2_MODEL = Model("tanh", 0.001, 60.0, 30.0, [0.5, 0.5], [0.5, 0.25])


def _analytic_status(model: Model) -> str | None:
    """None when the analytic curves apply to ``model``, else the reason (recorded in the figures)."""
    from diffmix.solvers._test_error import check_analytic_model
    try:
        check_analytic_model(model)
    except ValueError as exc:
        return f"no analytic line: {exc}"
    return None


def figure_fig2a(out_dir, *, d: int | None = None, full: bool = False, seeds: Sequence[int] = (1, 2, 3),
                 cache: bool = True, gd: GDOptions | None = None) -> LearningFigure:
    """Paper Fig. 2a: the spectrum of U_gep with its three edges, and the train / class test curves
    with the timescales tau_gen, tau_mem, tau_final they predict. Theory: density and edges from the
    spectral equations; the analytic asymptotic train error (paper eq. (134)) and class test errors
    (``test-error.md``); finite size: the band (seed mean +- 1 single-seed s.d.) of the gradient flow on
    sampled GEP matrices over ``seeds`` (d = 20 by default, 100 with ``full``) around them; with ``gd``,
    gradient descent of the random-features model on the same seeds up to 3 tau_mem (:func:`gd_curves`).
    The curve panels are in tau/p (flow time / p, the analytic unit: an edge lambda is marked at
    1/(2 lambda)); the finite-size and GD times are divided by their p. The JSON keeps the flow-time
    numbers (``tau``, ``timescales_flow_time``) too."""
    from diffmix.solvers import SpectralParams, find_edges
    from diffmix.solvers._test_error import ANALYTIC_TIME_UNIT, analytic_class_times
    from diffmix.solvers._train_error import train_error_analytic
    from ._figures import draw_density
    from ._spectrum import TheoryCDF

    d = (100 if full else 20) if d is None else d
    model = FIG2_MODEL
    spec = find_edges(SpectralParams.from_model(model))
    if not spec.converged:
        raise ArithmeticError(f"fig2a: the spectrum did not converge: {spec.message}")
    flow, kind = model_flows(model, d, seeds, "gep", cache=cache, progress=True)
    p = flow.p
    tau = np.geomspace(*flow.time_range(), 300)
    s = tau / p
    curves = flow.errors(tau)
    spread = flow.spread(tau)
    analytic = train_error_analytic(model, s)
    theory = analytic_learning_flow(model, taus=np.concatenate([s, [np.inf]]))
    ac = theory.errors(s, strict=True)
    atimes = analytic_class_times(theory)
    ts = spec.timescales
    marks = {k: p / 2.0 * float(ts[k]) for k in ("tau_gen", "tau_mem", "tau_final") if ts.get(k) is not None}
    band = {"d": d, "p": p, "seeds": list(seeds), "train_mean": curves.train, "train_sd": spread["train"],
            "test_c_mean": curves.test_c, "test_c_sd": spread["test_c"]}

    fig = Figure(figsize=(15.0, 4.6), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    draw_density(ax1, TheoryCDF.from_spectrum(spec, 400))
    ax1.set_title("spectrum of $U_{gep}$ (theory); edges marked", fontsize=8)
    gd_numbers = None
    if gd is not None:
        gd_numbers = gd_curves(model, d, seeds, 3.0 * marks.get("tau_mem", tau[-1] / 100), gd)
    zoom_hi = 3.0 * marks.get("tau_mem", tau[-1] / 100) / p
    for ax, zoom in ((ax2, False), (ax3, True)):
        sel = s <= zoom_hi if zoom else slice(None)
        sub_band = {k: (v[..., sel] if isinstance(v, np.ndarray) else v) for k, v in band.items()}
        _draw_analytic(ax, s[sel], _Sliced(ac, sel), None, sub_band, train_analytic=analytic.train[sel])
        ax.plot(s[sel], ac.test[sel], "C3-", lw=1.0, label="test (mixture), analytic")
        if gd_numbers is not None:
            gt = np.asarray(gd_numbers["tau"]) / p
            ax.plot(gt, gd_numbers["train"], "kx", ms=4,
                    label=f"train, GD ({gd.runs} runs x {len(list(seeds))} seeds, $\\eta_e$ = {gd.eta_e:g})")
            for c, e in enumerate(gd_numbers["test_c"]):
                ax.plot(gt, e, f"C{c}x", ms=4, label=f"test class {c + 1}, GD")
        for (name, val), ls in zip(marks.items(), ("-", "--", ":")):
            if not zoom or val / p <= zoom_hi:
                ax.axvline(val / p, color="0.4", lw=0.8, ls=ls,
                           label=f"{name} = 1/(2$\\lambda$) = {val / p:.3g} (flow time {val:.3g})")
        ax.set_xlabel(r"$\tau/p$ (flow time / p; paper's axis $\tau/\eta_e$ = steps = $(\tau/p)\,p/\eta_e$)")
        ax.set_ylabel("error (1 at initialization)")
    ax2.set_yscale("log")
    ax2.set_title("whole training (log scale); lines: analytic asymptotic curves, bands: finite size", fontsize=8)
    ax3.set_title(r"zoom: up to 3 $\tau_{mem}$ (linear scale)", fontsize=8)
    ax3.legend(fontsize=5.5)
    fig.suptitle(f"Fig. 2a: spectral edges set the learning phases. {_model_title(model)}; analytic curves "
                 f"(test-error.md, {theory.nodes} contour nodes) with the GEP finite-size band (d = {d}, p = {p}, "
                 f"{len(list(seeds))} seeds, mean $\\pm$ 1 s.d.)", fontsize=8)
    numbers = {"time_unit": TIME_UNIT, "edges": spec.edges, "timescales_1_over_lambda":
               {k: (None if v is None else (float(v) if not isinstance(v, str) else v)) for k, v in ts.items()},
               "timescales_flow_time": marks, "tau": tau.tolist(), "train_analytic": analytic.train.tolist(),
               "train_gep": curves.train.tolist(), "test_gep": curves.test.tolist(),
               "test_c_gep": curves.test_c.tolist(), "d": d, "p": p, "seeds": list(seeds), "gd": gd_numbers,
               "analytic": {"time_unit": ANALYTIC_TIME_UNIT, "tau_over_p": s.tolist(), "nodes": theory.nodes,
                            "test_c": ac.test_c.tolist(), "test": ac.test.tolist(), "train": ac.train.tolist(),
                            "converged": bool(ac.converged.all()),
                            "classes": [t.as_dict() for t in atimes.classes],
                            "timescales_tau_over_p": {k: v / p for k, v in marks.items()}},
               "band": {"time_unit": ANALYTIC_TIME_UNIT, "train_sd": spread["train"].tolist(),
                        "test_c_sd": spread["test_c"].tolist(),
                        "max_abs_mean_minus_analytic": np.abs(curves.test_c - ac.test_c).max(axis=1).tolist()}}
    params = {"model": model.to_dict(), "d": d, "seeds": list(seeds), "matrices": kind, "full": full,
              "gd": None if gd is None else gd.as_dict(), "analytic_nodes": theory.nodes}
    return _save(fig, Path(out_dir), "fig2a", numbers, params)


class _Sliced:
    """The columns ``sel`` of a curves object (train, test_c), for drawing a zoom."""

    def __init__(self, curves, sel):
        self.train = curves.train[sel]
        self.test_c = curves.test_c[:, sel]


def fig3_models(t: float = 0.01) -> dict:
    """The baseline and the three ablations of paper Fig. 3 (see the module docstring)."""
    base = Model("tanh", t, 60.0, 30.0, [0.5, 0.5], [0.5, 0.5], [1.0, 1.0])
    return {"baseline": base,
            "variance": base.replace(variances=(0.5, 0.25)),
            "centroid norm": base.replace(centroid_norm2=(1.0, 2.25)),
            "weights": base.replace(weights=(0.7, 0.3))}


def _ablation_flows(d, seeds, cache, matrices: str = "gep"):
    flows = {}
    for name, model in fig3_models().items():
        flows[name] = model_flows(model, d, seeds, matrices, cache=cache, progress=True)[0]
    return flows


#: Fig. 3 / 10 also compute the exact-matrix curves as a check up to this d (above it the exact
#: Mehler-series matrices cost minutes per seed; ``check_exact=True`` forces them).
_EXACT_CHECK_MAX_D = 40


def _exact_check(gep_flow: FlowAverage, exact_flow: FlowAverage, tau: np.ndarray) -> dict:
    """GEP (theory) against exact-matrix (empirical) curves and times of the same draws."""
    g, e = gep_flow.errors(tau), exact_flow.errors(tau)
    tg, te = class_times(gep_flow), class_times(exact_flow)
    ratio = lambda a, b: None if a is None or b is None else a / b
    early = tau <= max(t.tau_gen for t in te)
    return {"max_abs_test_c": np.max(np.abs(g.test_c - e.test_c), axis=1).tolist(),
            "max_abs_test_c_to_tau_gen": np.max(np.abs(g.test_c - e.test_c)[:, early], axis=1).tolist(),
            "exact_classes": [t.as_dict() for t in te],
            "tau_gen_ratio": [ratio(a.tau_gen, b.tau_gen) for a, b in zip(tg, te)],
            "tau_mem_ratio": [ratio(a.tau_mem, b.tau_mem) for a, b in zip(tg, te)]}


def _fig3_like(out_dir, name, d, seeds, cache, *, mse: bool, check_exact: bool | None = None) -> LearningFigure:
    """Figs. 3 / 10 from the extensive-centroid GEP matrices (the theory: speciation.md §1.2, gep.md
    §4; issue 7 item 4), with the exact-matrix curves of the same draws drawn thin as the empirical
    check when ``check_exact`` (default: d <= 40)."""
    models = fig3_models()
    flows = _ablation_flows(d, seeds, cache, "gep")
    check_exact = d <= _EXACT_CHECK_MAX_D if check_exact is None else bool(check_exact)
    exact = _ablation_flows(d, seeds, cache, "exact") if check_exact else None
    lo = min(f.time_range()[0] for f in flows.values())
    hi = max(f.time_range()[1] for f in flows.values())
    tau = np.geomspace(max(lo, 1e-1), hi, 300)
    base = flows["baseline"].errors(tau)
    rows = 2 if mse else 1
    fig = Figure(figsize=(12.0, 3.9 * rows), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, 3))
    numbers = {"time_unit": TIME_UNIT, "d": d, "p": flows["baseline"].p, "seeds": list(seeds), "panels": {}}
    for j, panel in enumerate(("variance", "centroid norm", "weights")):
        curves = flows[panel].errors(tau)
        times = class_times(flows[panel])
        ax = axes[0, j]
        ex = exact[panel].errors(tau) if exact is not None else None
        for c in range(2):
            line, = ax.plot(tau, curves.test_c[c], f"C{c}-", label=f"class {c + 1}")
            ax.plot(tau, base.test_c[c], f"C{c}:", lw=0.9, label=f"class {c + 1}, baseline")
            if ex is not None:
                ax.plot(tau, ex.test_c[c], "-", color=line.get_color(), lw=3, alpha=0.25,
                        label=f"class {c + 1}, exact RF matrices")
            ax.plot([times[c].tau_gen], [times[c].min_error], "o", color=line.get_color(), ms=4)
            if times[c].tau_mem is not None:
                ax.axvline(times[c].tau_mem, color=line.get_color(), lw=0.7, ls="--")
        ax.axhline(1.0, color="0.6", lw=0.6)
        ax.set_xscale("log")
        ax.set_ylim(top=min(1.6, ax.get_ylim()[1]))
        ax.set_ylabel(r"class test error $E^c_{test}$")
        ax.set_title(f"{panel}: {_model_title(models[panel])}", fontsize=6.5)
        ax.legend(fontsize=6.5)
        if mse:
            axm = axes[1, j]
            for c in range(2):
                axm.plot(tau, curves.mse_c[c], f"C{c}-", label=f"class {c + 1}")
                axm.axvline(times[c].tau_gen, color=f"C{c}", lw=0.7, ls=":")
            axm.set_xscale("log")
            axm.set_yscale("log")
            axm.set_ylabel(r"score MSE$_c$ = $(E^c_{test} - e^{-2t}\sigma_c^2/\Gamma_c^2)/\Delta_t$")
            axm.set_xlabel(r"flow time $\tau = k\,\eta_e$")
            axm.legend(fontsize=6.5)
        else:
            ax.set_xlabel(r"flow time $\tau = k\,\eta_e$")
        numbers["panels"][panel] = {"model": models[panel].to_dict(),
                                    "classes": [t.as_dict() for t in times],
                                    "test_c": curves.test_c.tolist(),
                                    **({"mse_c": curves.mse_c.tolist()} if mse else {})}
        if exact is not None:
            numbers["panels"][panel]["exact_check"] = _exact_check(flows[panel], exact[panel], tau)
    numbers["tau"] = tau.tolist()
    numbers["baseline"] = {"classes": [t.as_dict() for t in class_times(flows["baseline"])],
                           "test_c": base.test_c.tolist()}
    # Every model of paper Fig. 3 has extensive centroids (||mu_c||^2 / d = 1), outside the analytic
    # curves of test-error.md: no analytic line; the reason is recorded per panel.
    numbers["analytic"] = {name: _analytic_status(m) for name, m in models.items()}
    what = ("Fig. 10: class test errors (top) and score MSEs (bottom); same minima and crossings"
            if mse else "Fig. 3: class-specific timescales under three ablations (dotted: baseline)")
    check = "; thick pale: exact RF matrices of the same draws" if exact is not None else ""
    fig.suptitle(f"{what}. Extensive-centroid GEP matrices, d = {d}, p = {flows['baseline'].p}, "
                 f"seeds {list(seeds)}; dots: $\\tau_{{gen}}$, dashed: $\\tau_{{mem}}${check}. No analytic line: "
                 f"extensive centroids (the analytic curves cover centered mixtures only)", fontsize=8)
    numbers["matrices"] = "gep"
    params = {"models": {k: m.to_dict() for k, m in models.items()}, "d": d, "seeds": list(seeds),
              "matrices": "gep", "exact_check": exact is not None}
    return _save(fig, Path(out_dir), name, numbers, params)


def figure_fig3(out_dir, *, d: int | None = None, full: bool = False, seeds: Sequence[int] = (100, 101, 102),
                cache: bool = True, gd: GDOptions | None = None) -> LearningFigure:
    """Paper Fig. 3: class test errors under the variance, centroid-norm and weight ablations
    (theory only, as in the paper)."""
    if gd is not None:
        raise ValueError("gd: Fig. 3 has no gradient-descent points (fig2a and fig4 do)")
    d = (100 if full else 20) if d is None else d
    return _fig3_like(out_dir, "fig3", d, seeds, cache, mse=False)


def figure_fig10(out_dir, *, d: int | None = None, full: bool = False, seeds: Sequence[int] = (100, 101, 102),
                 cache: bool = True, gd: GDOptions | None = None) -> LearningFigure:
    """Paper Fig. 10: the test errors of Fig. 3 next to the class score MSEs (App. H)."""
    if gd is not None:
        raise ValueError("gd: Fig. 10 has no gradient-descent points (fig2a and fig4 do)")
    d = (100 if full else 20) if d is None else d
    return _fig3_like(out_dir, "fig10", d, seeds, cache, mse=True)


def fig4_model(rho_1: float, t: float = 0.01) -> Model:
    """Paper Fig. 4's mixture at weight rho_1 of the high-variance class (module docstring)."""
    return Model("tanh", t, 60.0, 30.0, [rho_1, 1.0 - rho_1], [0.5, 0.25], [1.0, 1.0])


def figure_fig4(out_dir, *, d: int | None = None, full: bool = False, seeds: Sequence[int] = (100, 101),
                rhos: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
                cache: bool = True, gd: GDOptions | None = None) -> LearningFigure:
    """Paper Fig. 4: generalization and memorization gaps (class 2 minus class 1) against rho_1;
    with ``gd``, the gaps of gradient-descent curves of the same seeds (crosses, as in the paper),
    times read off the logged curves (:func:`diffmix.theory.class_times_on_grid`)."""
    d = (100 if full else 20) if d is None else d
    rows = []
    for r in rhos:
        flow = model_flows(fig4_model(r), d, seeds, "exact", cache=cache, progress=True)[0]
        times = class_times(flow)
        gaps = time_gaps(times)
        row = {"rho_1": r, "classes": [t.as_dict() for t in times],
               "gen_gap": gaps["gen"][0][1], "mem_gap": gaps["mem"][0][1]}
        if gd is not None:
            t_end = max(t.tau_mem or t.tau_gen for t in times) * 1.5
            g = gd_curves(fig4_model(r), d, seeds, t_end, gd)
            gt = g["times"]
            row["gd"] = {"times": gt, "gen_gap": gt[1]["tau_gen"] - gt[0]["tau_gen"],
                         "mem_gap": None if None in (gt[0]["tau_mem"], gt[1]["tau_mem"])
                         else gt[1]["tau_mem"] - gt[0]["tau_mem"], "steps": g["steps"]}
        rows.append(row)
    fig = Figure(figsize=(10.0, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    x = [r["rho_1"] for r in rows]
    for ax, key, label in ((ax1, "gen_gap", r"$\tau^2_{gen} - \tau^1_{gen}$"),
                           (ax2, "mem_gap", r"$\tau^2_{mem} - \tau^1_{mem}$")):
        y = [np.nan if r[key] is None else r[key] for r in rows]
        ax.plot(x, y, "C0-o", ms=4, label="theory (exact gradient flow)")
        if gd is not None:
            yg = [np.nan if r["gd"][key] is None else r["gd"][key] for r in rows]
            ax.plot(x, yg, "C3x", ms=7, mew=1.5,
                    label=f"gradient descent ({gd.runs} runs x {len(list(seeds))} seeds, $\\eta_e$ = {gd.eta_e:g})")
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_xlabel(r"$\rho_1$ (weight of the high-variance class, $\sigma_1^2 = 0.5$)")
        ax.set_ylabel(f"{label} (flow time)")
        ax.legend(fontsize=7)
    ax1.set_title("generalization gap", fontsize=9)
    ax2.set_title("memorization gap", fontsize=9)
    fig.suptitle(f"Fig. 4: imbalance modulates the class gaps. {_model_title(fig4_model(0.5)).replace('(0.5, 0.5)', 'swept')}"
                 f"; exact RF matrices, d = {d}, seeds {list(seeds)}. No analytic line: extensive centroids",
                 fontsize=8)
    numbers = {"time_unit": TIME_UNIT, "d": d, "seeds": list(seeds), "rows": rows,
               "analytic": _analytic_status(fig4_model(0.5))}
    params = {"model": fig4_model(0.5).to_dict(), "rhos": list(rhos), "d": d, "seeds": list(seeds),
              "matrices": "exact", "gd": None if gd is None else gd.as_dict()}
    return _save(fig, Path(out_dir), "fig4", numbers, params)


#: name -> figure function (all take out_dir, d=, full=, seeds=, cache=).
LEARNING_FIGURES = {"fig2a": figure_fig2a, "fig3": figure_fig3, "fig4": figure_fig4, "fig10": figure_fig10}
