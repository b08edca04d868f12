"""``diffmix spectrum`` and ``diffmix figure``: thin entry points over :mod:`diffmix.validation`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import mpmath
from matplotlib.figure import Figure

from diffmix._provenance import provenance, write_json_atomic
from diffmix.solvers import SpectralParams, Spectrum, spectrum
from diffmix.theory import ModelError, load_model

from ._figures import _model_text, draw_density, figure_fig2b, figure_fig8
from ._spectrum import (TheoryCDF, centered_formula_cdf, centroid_spectrum_record,
                        compare_centroid_with_diagonalization, compare_with_diagonalization,
                        draw_centroid_density, outlier_prediction)

_ERRORS = (ModelError, ValueError, ArithmeticError, OSError)
_DDPM = ("fig5", "fig6", "fig11")
_FIGURES = ("fig8", "fig2b", "fig2a", "fig3", "fig4", "fig10", "fig1", "fig5", "fig6", "fig11")
_LEARNING = ("fig2a", "fig3", "fig4", "fig10")


def _edge_value(lam, dps: int | None):
    """A float, or with ``dps`` a decimal string of dps digits (like ``coefficients --dps``)."""
    if lam is None:
        return None
    return float(lam) if dps is None else mpmath.nstr(lam, dps)


def _spectrum_record(spec, dps: int | None) -> dict:
    """The JSON object of ``diffmix spectrum --json`` (spectrum.md §4-5; time unit 1/lambda);
    for a model with centroids :func:`centroid_spectrum_record` (centroid-spectrum.md)."""
    if not isinstance(spec, Spectrum):
        return centroid_spectrum_record(spec)
    ts = spec.timescales
    return {"edges": [[_edge_value(b.lower.lam, dps), _edge_value(b.upper.lam, dps)] for b in spec.bulks],
            "atoms": [[float(loc), float(w)] for loc, w in spec.atoms],
            "masses": [float(b.mass) for b in spec.bulks],
            **{key: _edge_value(ts.get(key), dps)
               for key in ("tau_gen", "tau_mem", "tau_final", "W_gen", "W_mem")},
            "time_unit": ts.get("time_unit", "1/lambda"),
            "converged": bool(spec.converged), "message": spec.message}


def _print_text(record: dict, check: dict | None) -> None:
    centroids = record.get("spectrum") == "centroids"
    for k, ((lo, hi), mass) in enumerate(zip(record["edges"], record["masses"])):
        print(f"{'support component' if centroids else 'bulk'} {k}: [{lo}, {hi}]  mass {mass:.9f}")
    for loc, weight in record["atoms"]:
        print(f"atom at {loc!r}  weight {weight:.9f}")
    if centroids:
        print(f"total mass {record['total_mass']:.6f} ({record['edge_note']})")
    for key in ("tau_gen", "tau_mem", "tau_final", "W_gen", "W_mem"):
        print(f"{key:<9} = {record[key]}  [{record['time_unit']}]")
    if centroids:
        print(f"timescales: {record['timescale_note']}")
        print(f"outliers (theory): {record['outliers_theory']} ({record['outliers_note']})")
    print(f"converged: {record['converged']} ({record['message']})")
    if check is None:
        return
    if centroids:
        print(f"finite size d = {check['d']}, p = {check['p']}, n = {check['n']} (rows of W "
              f"normalised: {check['normalize_rows']}):")
        for seed in check["seeds"]:
            print(f"  seed {seed['seed']}: KS = {seed['ks']:.5f} (at lambda = "
                  f"{seed['lam_max_deviation']:.4g}), KS centered formula = "
                  f"{seed['ks_centered'] if seed['ks_centered'] is None else round(seed['ks_centered'], 5)}, "
                  f"largest bulk eigenvalue {seed['largest_bulk']:.6g}, outliers "
                  f"{[round(v, 6) for v in seed['outliers']]}")
        print(f"  KS seed vs seed (sampling noise): {[round(v, 5) for v in check['ks_seed_vs_seed']]}")
        return
    seed = check["seeds"][0]
    print(f"finite size d = {check['d']}, p = {check['p']}, n = {check['n']}, seed {seed['seed']}: "
          f"KS = {seed['ks']:.5f}, L1 = {seed['l1']:.5f}, atom {seed['atom_found']} of "
          f"{seed['atom_expected']} eigenvalues")
    for k, (ext, err) in enumerate(zip(seed["extremes"], seed["rel_error"])):
        print(f"  bulk {k}: extremes [{ext[0]:.6g}, {ext[1]:.6g}], relative to the edges "
              f"[{err[0]:+.4f}, {err[1]:+.4f}]")


def spectrum_main(argv: list[str] | None = None) -> int:
    """``diffmix spectrum MODEL``: density, atoms, edges and timescales of U_gep.

    Centered mixtures: spectrum.md (bulks, edges as folds, atom).  Extensive centroids: the bulk
    density of centroid-spectrum.md (support components, masses, timescales where the bulk
    picture identifies them); with ``--check-size`` two seeds are diagonalized and the outliers
    listed separately.  Exit status 0, 1 when the computation did not converge (results still
    written, flagged), 2 on bad input.
    """
    parser = argparse.ArgumentParser(
        prog="diffmix spectrum",
        description="Spectrum of U_gep (units of 1/lambda).  Centered mixture (spectrum.md "
                    "sections 2-5): bulks, edges, atom, timescales tau_gen, tau_mem, tau_final "
                    "and windows, optionally against the eigenvalues of one sampled U_gep.  "
                    "Extensive centroids (centroid-spectrum.md): the bulk density, its support "
                    "and masses, the timescales where the bulk picture identifies them; with "
                    "--check-size, two sampled U_gep (seeds SEED, SEED+1, rows of W normalised) "
                    "with the outliers listed separately and KS distances to the theory, to the "
                    "centered formula and between the seeds.")
    parser.add_argument("model", help="model file (.toml or .json)")
    parser.add_argument("--out", metavar="DIR",
                        help="write spectrum.json, spectrum.png, spectrum.pdf and provenance.json here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check-size", type=int, metavar="D",
                        help="also diagonalize sampled U_gep at data dimension D (p = psi_p D)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled U_gep (default 0)")
    parser.add_argument("--dps", type=int, help="centered: polish the edges to this many digits (mpmath)")
    parser.add_argument("--n-per-bulk", type=int, default=400,
                        help="centered: grid points per bulk of the density (default 400)")
    parser.add_argument("--n-grid", type=int, default=400,
                        help="centroids: points of the log-spaced scan for the support and of "
                             "the grid of each support component (default 400)")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model)
        comparison = None
        if model.is_centered:
            params = SpectralParams.from_model(model, dps=None if args.dps is None else args.dps + 10)
            spec = spectrum(params, dps=args.dps)
            record = _spectrum_record(spec, args.dps)
            if args.check_size is not None:
                comparison = compare_with_diagonalization(model, args.check_size, [args.seed],
                                                          theory=spec, n_per_bulk=args.n_per_bulk)
                record["finite_size"] = comparison.summary()
        else:
            from diffmix.solvers._centroid_spectrum import CentroidSpectralParams, centroid_spectrum
            if args.dps is not None:
                raise ValueError("--dps: edges of a model with centroids are not folds (they are "
                                 "read off the density); --dps applies to centered models only")
            spec = centroid_spectrum(CentroidSpectralParams.from_model(model), n_grid=args.n_grid,
                                     n_per_component=args.n_grid)
            record = _spectrum_record(spec, None)
            if args.check_size is not None:
                predicted, note = outlier_prediction(model, args.check_size)
                record["outliers_theory"] = None if predicted is None else predicted.tolist()
                record["outliers_note"] = note
                if spec.converged:
                    comparison = compare_centroid_with_diagonalization(
                        model, args.check_size, [args.seed, args.seed + 1], theory=spec)
                    record["finite_size"] = comparison.summary()
        if args.out is not None:
            written = _write_spectrum(Path(args.out), model, spec, record, args, comparison)
    except _ERRORS as exc:
        print(f"diffmix spectrum: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(record))
    else:
        _print_text(record, record.get("finite_size"))
        if args.out is not None:
            print("wrote " + ", ".join(str(p) for p in written))
    if not spec.converged:
        what = "the edge search" if model.is_centered else "the density"
        print(f"diffmix spectrum: warning: {what} did not converge: {spec.message}", file=sys.stderr)
        return 1
    return 0


def _write_spectrum(out: Path, model, spec, record: dict, args, comparison) -> list[Path]:
    """spectrum.json (record + the density on its grid), the plot, provenance.json."""
    fig = Figure(figsize=(8.0, 4.8), layout="constrained")
    ax = fig.add_subplot()
    if isinstance(spec, Spectrum):
        cdf = TheoryCDF.from_spectrum(spec, args.n_per_bulk)
        title = f"Spectrum of $U_{{gep}}$: {_model_text(model)}"
        if comparison is None:
            draw_density(ax, cdf)
        else:
            sample, size = comparison.per_seed[0], comparison.size
            draw_density(ax, cdf, sample, size.p)
            title += (f"\nsample d = {size.d}, p = {size.p}, n = {size.n}, seed {sample.seed}: "
                      f"KS = {sample.ks:.4f}, L1 (80 log bins) = {sample.l1:.4f}")
        density = {"lam": cdf.lam.tolist(), "rho": cdf.rho.tolist()}
    else:
        norms = "(" + ", ".join(f"{v:g}" for v in model.centroid_norm2) + ")"
        title = (f"Bulk spectrum of $U_{{gep}}$ with centroids: {_model_text(model)}, "
                 f"$||\\mu_c||^2/d$ = {norms}")
        if comparison is None:
            draw_centroid_density(ax, spec, centered_cdf=centered_formula_cdf(model, spec.scan_lam))
        else:
            draw_centroid_density(ax, spec, comparison)
            size = comparison.size
            title += (f"\nsamples d = {size.d}, p = {size.p}, n = {size.n}: KS = "
                      + ", ".join(f"{s.ks:.4f}" for s in comparison.per_seed)
                      + " (seed vs seed " + ", ".join(f"{v:.4f}" for v in comparison.ks_seed_vs_seed)
                      + "); centered formula KS = "
                      + ", ".join("n/a" if s.ks_centered is None else f"{s.ks_centered:.3f}"
                                  for s in comparison.per_seed))
        density = {"lam": spec.lam.tolist(), "rho": spec.density.tolist(),
                   "quadrature": spec.method.tolist()}
    ax.set_title(title, fontsize=8)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in ("png", "pdf"):
        path = out / f"spectrum.{kind}"
        fig.savefig(path, dpi=150 if kind == "png" else None)
        written.append(path)
    written.append(write_json_atomic(out / "spectrum.json", {**record, "density": density}))
    params = {"model_file": str(args.model), "model": model.to_dict(), "model_hash": model.content_hash(),
              "dps": args.dps, "check_size": args.check_size, "seed": args.seed,
              "n_per_bulk": args.n_per_bulk, "n_grid": args.n_grid}
    written.append(write_json_atomic(out / "provenance.json", provenance("diffmix spectrum", params)))
    return written


def _ddpm_figure(args, out: Path):
    """fig5 / fig6 / fig11 of :func:`figure_main` (validation/_ddpm.py)."""
    from diffmix.gpu import class_statistics, load_fashion_mnist

    from ._ddpm import RF_DEFAULTS, figure_fig5, figure_fig6, load_ddpm_records
    if not args.runs:
        raise ValueError(f"{args.name} needs --runs RUN_DIR ... (folders of 'diffmix ddpm track' or "
                         "'diffmix ddpm memorization' runs)")
    if args.convention is not None or args.n_ratios is not None or args.gd_runs:
        raise ValueError("--convention, --n-ratios and --gd-runs do not apply to fig5 / fig6")
    if args.name == "fig11":
        from ._ddpm import figure_fig11
        if len(args.runs) != 1:
            raise ValueError(f"fig11 draws one run: --runs got {len(args.runs)} folders")
        if args.full or args.d is not None or args.seed is not None or args.seeds is not None:
            raise ValueError("--full, --d, --seed and --seeds apply to fig6's RF model, not fig11")
        result = figure_fig11(out, args.runs[0], data=args.data, params={"runs": list(args.runs)})
        shown = result.numbers["shown"]
        return result, (f"{len(shown)} checkpoint(s), {sum(map(sum, (e['memorized'] for e in shown)))} of "
                        f"{sum(len(e['memorized']) for e in shown)} shown samples memorized")
    records = load_ddpm_records(args.runs)
    data = load_fashion_mnist(args.data)
    stats = class_statistics(data.x_train, data.y_train)
    params = {"runs": list(args.runs), "data": str(data.source)}
    if args.name == "fig5":
        if args.full or args.d is not None or args.seed is not None or args.seeds is not None:
            raise ValueError("--full, --d, --seed and --seeds apply to fig6's RF model, not fig5")
        result = figure_fig5(out, records, stats, params=params)
        done = [r for r in result.numbers["runs"] if r["gap"] is not None]
        partial = sum(not r["complete"] for r in result.numbers["runs"])
        return result, (f"{len(records)} run(s), {len(done)} with a memorization gap"
                        + (f", {partial} with an interrupted evaluation ('complete': false)" if partial else ""))
    d = args.d if args.d is not None else (RF_DEFAULTS["d_full"] if args.full else RF_DEFAULTS["d"])
    first = args.seed if args.seed is not None else RF_DEFAULTS["seeds"][0]
    count = args.seeds if args.seeds is not None else len(RF_DEFAULTS["seeds"])
    if count < 1:
        raise ValueError(f"--seeds = {count}: must be >= 1")
    result = figure_fig6(out, records, stats, d=d, seeds=tuple(range(first, first + count)),
                         threshold=args.rf_threshold, cache=not args.no_cache, params=params)
    c = result.numbers["correlation"]
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"
    return result, f"DDPM vs RF gaps over {c['n']} pair(s): Pearson {fmt(c['pearson'])}, Spearman {fmt(c['spearman'])}"


def figure_main(argv: list[str] | None = None) -> int:
    """``diffmix figure NAME``: regenerate a figure of the paper.  Exit status 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="diffmix figure",
        description="Regenerate a figure of the paper: fig8 (density of U_gep against a sampled "
                    "matrix, Fig. 2 mixture at t = 0.01), fig2b (windows W_gen, W_mem against "
                    "the variance ratio), fig2a (spectrum and learning phases), fig3 (class test "
                    "errors under three ablations), fig4 (class gaps against imbalance), fig10 "
                    "(test errors and score MSEs), fig1 (speciation: RMS overlaps against t / log d), fig5 (DDPM "
                    "per-class memorization on Fashion-MNIST pairs, from 'diffmix ddpm memorization' runs), "
                    "fig6 (DDPM vs RF memorization gaps and their correlation), fig11 (one run's samples beside "
                    "their nearest training images, and the mean distances). Writes PNG, PDF, "
                    "the numbers and provenance.json.")
    parser.add_argument("name", help=f"figure: {', '.join(_FIGURES)}")
    parser.add_argument("--out", metavar="DIR", help="output folder (default out/figures/NAME)")
    parser.add_argument("--full", action="store_true",
                        help="fig8, fig2a, fig3, fig4, fig10: the paper's size d = 100 (p = 6000)")
    parser.add_argument("--d", type=int, help="data dimension (fig8: default 60; learning figures: 20)")
    parser.add_argument("--seed", type=int, help="fig8: seed of the sample (default 1); learning "
                        "figures: first seed (defaults: fig2a 1, fig3/fig10 100, fig4 100)")
    parser.add_argument("--seeds", type=int, help="learning figures: seeds averaged (defaults: fig2a 3, "
                        "fig3/fig10 3, fig4 2)")
    parser.add_argument("--no-cache", action="store_true", help="learning figures: ignore the flow cache")
    parser.add_argument("--gd-runs", type=int, default=0,
                        help="fig2a, fig4: add gradient-descent points, this many runs per seed (default 0: none)")
    parser.add_argument("--gd-eta-e", type=float, default=1.0,
                        help="fig2a, fig4: GD step eta_e in units of d/Delta_t (default 1.0)")
    parser.add_argument("--device", default="cpu", help="fig2a, fig4: device of the GD runs (cpu or cuda)")
    parser.add_argument("--convention", help="fig2b: fixed-mean (default) or fixed-sigma1")
    parser.add_argument("--n-ratios", type=int, help="fig2b: variance ratios (default 40)")
    parser.add_argument("--runs", nargs="+", metavar="RUN_DIR",
                        help="fig5, fig6, fig11: DDPM run folders holding memorization.json (fig11: one)")
    parser.add_argument("--data", metavar="PATH", help="fig5, fig6, fig11: Fashion-MNIST files (default: "
                        "$FASHION_MNIST_DIR, then the Debian package's folder)")
    parser.add_argument("--rf-threshold", type=float, default=1.0,
                        help="fig6: RF memorization threshold on E_test^c (default 1, eq. (15))")
    args = parser.parse_args(argv)
    try:
        if args.name not in _FIGURES:
            raise ValueError(f"unknown figure {args.name!r} (figures: {', '.join(_FIGURES)})")
        out = Path(args.out) if args.out is not None else Path("out", "figures", args.name)
        if (args.runs is not None or args.data is not None) and args.name not in _DDPM:
            raise ValueError("--runs and --data apply to fig5, fig6 and fig11 only")
        if args.name in _DDPM:
            result, summary = _ddpm_figure(args, out)
        elif args.name == "fig1":
            if any(v is not None for v in (args.convention, args.n_ratios, args.d, args.seed, args.seeds)) \
                    or args.gd_runs or args.no_cache:
                raise ValueError("fig1 takes --out and --full only")
            from ._speciation import figure_fig1
            result = figure_fig1(out, full=args.full)
            summary = "RMS overlaps of the projected centroids with the top eigenvectors of U_gep"
        elif args.name in _LEARNING:
            from ._learning import LEARNING_FIGURES
            if args.convention is not None or args.n_ratios is not None:
                raise ValueError("--convention and --n-ratios apply to fig2b only")
            first = args.seed if args.seed is not None else (1 if args.name == "fig2a" else 100)
            count = args.seeds if args.seeds is not None else (2 if args.name == "fig4" else 3)
            if count < 1:
                raise ValueError(f"--seeds = {count}: must be >= 1")
            if args.gd_runs < 0:
                raise ValueError(f"--gd-runs = {args.gd_runs}: must be >= 0")
            gd = None
            if args.gd_runs:
                from ._learning import GDOptions
                gd = GDOptions(runs=args.gd_runs, eta_e=args.gd_eta_e, device=args.device)
            result = LEARNING_FIGURES[args.name](out, d=args.d, full=args.full,
                                                 seeds=tuple(range(first, first + count)),
                                                 cache=not args.no_cache, gd=gd)
            summary = f"d = {result.numbers['d']}, seeds {result.numbers['seeds']}"
        elif args.name == "fig8":
            if args.seeds is not None or args.no_cache:
                raise ValueError("--seeds and --no-cache apply to the learning figures only")
            if args.convention is not None or args.n_ratios is not None:
                raise ValueError("--convention and --n-ratios apply to fig2b only")
            result = figure_fig8(out, full=args.full, d=args.d, seed=1 if args.seed is None else args.seed)
            seed = result.numbers["sample"]["seeds"][0]
            summary = f"KS = {seed['ks']:.5f}, L1 = {seed['l1']:.5f}"
        else:
            if args.full or args.d is not None or args.seed is not None or args.seeds is not None:
                raise ValueError("--full, --d, --seed and --seeds do not apply to fig2b")
            result = figure_fig2b(out, convention=args.convention or "fixed-mean",
                                  n_ratios=40 if args.n_ratios is None else args.n_ratios)
            failed = sum(not row["converged"] for row in result.numbers["rows"])
            summary = f"{len(result.numbers['rows'])} points, {failed} without converged edges"
    except _ERRORS as exc:
        print(f"diffmix figure: error: {exc}", file=sys.stderr)
        return 2
    print(f"{result.name}: {summary}")
    for path in result.files.values():
        print(f"wrote {path}")
    return 0
