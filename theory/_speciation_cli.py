"""``diffmix speciation``: class speciation times of a model at dimension d (speciation.md §3, §5).

    diffmix speciation model.toml --d D [--weight-exponent a1,a2,...] [--norm-exponent b1,b2,...] [--json]

``--json`` prints exactly ``{"classes": [{"t_s": x}, ...], "modes": [{"t_s": x, "lambda": l, "classes": [w, ...]},
...]}`` (null where no outlier appears at any t). The model's t and psi_n are not used.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

from ._model import ModelError, load_model
from ._speciation import speciation_times


def _floats(text: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers, e.g. 0,0.5") from None
    return values


def _fmt(x) -> str:
    return "none (no outlier at any t)" if x is None else f"{x:.6g}"


def _print_text(result, path: str, args) -> None:
    log_d = math.log(result.d)
    print(f"{path}: speciation at d = {result.d:g} (speciation.md sections 3 and 5; paper eqs. 11-13)")
    print(f"  weights rho_c(d) = {', '.join(f'{w:.6g}' for w in result.weights)}"
          + (f"   (weight exponents {args.weight_exponent})" if args.weight_exponent else ""))
    print(f"  ||mu_c||^2/d     = {', '.join(f'{m:.6g}' for m in result.centroid_norm2)}"
          + (f"   (norm exponents {args.norm_exponent})" if args.norm_exponent else ""))
    print(f"  sigmabar^2 = {result.mean_variance:.6g}")
    print("classes (t_s: largest diffusion time with an outlier carrying the class):")
    for c, entry in enumerate(result.classes):
        t_s = entry["t_s"]
        ratio = "" if t_s is None else f"   t_s/log d = {t_s / log_d:.4f}"
        slope = result.slopes[c]
        limit = "   (d -> inf: no speciation at leading order)" if slope is None else f"   (d -> inf: {slope:.4g})"
        print(f"  class {c}: t_s = {_fmt(t_s)}{ratio}{limit}")
    print("modes of M = sum_c rho_c mu_c mu_c^T (lambda, t_s, class composition):")
    for k, mode in enumerate(result.modes):
        comp = ", ".join(f"{w:.4g}" for w in mode.composition)
        print(f"  mode {k}: lambda = {mode.lam:.6g}, t_s = {_fmt(mode.t_s)}, classes = [{comp}]")


def speciation_main(argv: list[str] | None = None) -> int:
    """Print the speciation times of each class and mode.  Exit status 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="diffmix speciation",
        description="Class speciation times t_s = (1/2) log(sqrt(psi_p) lambda + 1 - sigmabar^2) of a model with "
                    "centroids at data dimension d, per eigen-direction of M = sum_c rho_c mu_c mu_c^T and per "
                    "class (speciation.md sections 3 and 5).")
    parser.add_argument("model", help="model file (.toml or .json)")
    parser.add_argument("--d", type=float, required=True, help="data dimension d >= 1")
    parser.add_argument("--weight-exponent", type=_floats, metavar="A1,A2,...",
                        help="alpha_c >= 0 per class: rho_c(d) = rho_c d^-alpha_c / sum_c' rho_c' d^-alpha_c'")
    parser.add_argument("--norm-exponent", type=_floats, metavar="B1,B2,...",
                        help="beta_c >= 0 per class: ||mu_c||^2 = centroid_norm2_c d^(1 - beta_c)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model)
        result = speciation_times(model, args.d, weight_exponents=args.weight_exponent,
                                  norm_exponents=args.norm_exponent)
    except (ValueError, ModelError) as exc:
        message = str(exc).replace("weight_exponents", "--weight-exponent").replace("norm_exponents", "--norm-exponent")
        print(f"diffmix speciation: error: {message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        _print_text(result, args.model, args)
    return 0
