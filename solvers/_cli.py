"""``diffmix edges``: every spectral edge, the atoms and the timescales of a centered mixture."""
from __future__ import annotations

import argparse
import json
import sys

import mpmath

from diffmix.theory import ModelError, load_model

from ._resolvent import SpectralParams
from ._spectrum import spectrum


def _fmt(x, dps):
    if x is None:
        return None
    return float(x) if dps is None else mpmath.nstr(x, dps, min_fixed=-1, max_fixed=-1)


def edges_main(argv: list[str] | None = None) -> int:
    """Print edges, atoms and tau_gen, tau_mem, tau_final (units 1/lambda; spectrum.md §5)."""
    parser = argparse.ArgumentParser(
        prog="diffmix edges",
        description="Edges of every bulk of the spectrum of U_gep (folds of the spectral "
                    "equations, spectrum.md section 5), atoms, and the timescales tau_gen, "
                    "tau_mem, tau_final in units of 1/lambda (flow time: multiply by p/2).")
    parser.add_argument("model", help="model file (.toml or .json), centered classes, odd activation")
    parser.add_argument("--dps", type=int, help="polish every edge to this many digits (mpmath, "
                                                 "verified at two precisions)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        if args.dps is not None and not 15 <= args.dps <= 1000:
            raise ValueError(f"--dps = {args.dps}: must be an integer in [15, 1000]")
        model = load_model(args.model)
        params = SpectralParams.from_model(model, dps=None if args.dps is None else args.dps + 10)
        spec = spectrum(params, dps=args.dps)
    except (ModelError, ValueError, ArithmeticError) as exc:
        print(f"diffmix edges: error: {exc}", file=sys.stderr)
        return 2
    dps = args.dps
    taus = spec.timescales
    out = {
        "edges": [[_fmt(b.lower.lam, dps), _fmt(b.upper.lam, dps)] for b in spec.bulks],
        # the atom sits at s2; with --dps its location comes from the high-precision coefficients
        "atoms": [[_fmt(params.mp_inputs[6] if dps is not None else loc, dps), w]
                  for loc, w in spec.atoms],
        "tau_gen": _fmt(taus["tau_gen"], dps), "tau_mem": _fmt(taus["tau_mem"], dps),
        "tau_final": _fmt(taus["tau_final"], dps), "time_unit": "1/lambda",
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"model {args.model}: {len(spec.bulks)} bulk(s), total mass {spec.total_mass:.9f}"
              f" ({spec.message})")
        for (lo, hi), b in zip(out["edges"], spec.bulks):
            print(f"  bulk [{lo}, {hi}]  mass {b.mass:.6g}")
        for loc, w in out["atoms"]:
            print(f"  atom at {loc!r}, weight {w:.6g}")
        for k in ("tau_gen", "tau_mem", "tau_final"):
            print(f"  {k} = {out[k]}  (1/lambda)")
    if not spec.converged:
        print(f"diffmix edges: warning: {spec.message}", file=sys.stderr)
        return 1
    return 0
