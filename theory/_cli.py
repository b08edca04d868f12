"""``diffmix coefficients``: GEP coefficients of an activation at (t, variance), or of a model."""
from __future__ import annotations

import argparse
import json
import sys

from diffmix.derivations import (QuadratureError, centered_coefficients, neuron_coefficients,
                                 parse_activation)

from ._gep import class_coefficients
from ._model import ModelError, load_model

_KEYS = ("mu0", "mu1", "a_t", "b_t", "v_t2", "s_t2")


def _number(text: str) -> str:
    """Keep the number as typed (so that --dps reads it exactly); check it parses."""
    try:
        float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    return text


def _print_text(coeffs, header: str) -> None:
    print(header)
    d = coeffs.as_dict()
    for key in _KEYS:
        name = {"v_t2": "v2", "s_t2": "s2", "a_t": "mu1", "b_t": "mu1"}.get(key, key)
        print(f"  {key:<5} = {d[key]}    [{coeffs.methods.get(name, '')}]")


def coefficients_main(argv: list[str] | None = None) -> int:
    """Print the centered GEP coefficients (gep.md §1).  Exit status 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="diffmix coefficients",
        description="GEP coefficients mu0, mu1, a_t, b_t, v_t2, s_t2 of a centered class "
                    "(gep.md section 1), for one activation at (t, variance) or for every class "
                    "of a model file.")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--activation", help="built-in name or expression in x")
    src.add_argument("--model", metavar="FILE", help="model file (.toml or .json)")
    parser.add_argument("--t", type=_number, help="diffusion time, > 0 (with --activation)")
    parser.add_argument("--variance", type=_number,
                        help="per-coordinate class variance sigma^2, > 0 (with --activation)")
    parser.add_argument("--mean", type=_number,
                        help="pre-activation data mean m of one neuron, INCLUDING e^{-t} "
                             "(speciation.md section 1.1; with --activation): per-neuron "
                             "coefficients of an extensive centroid")
    parser.add_argument("--row-norm", type=_number, dest="row_norm",
                        help="row norm factor r = ||w_i||/sqrt(d), > 0 (with --mean; default 1)")
    parser.add_argument("--dps", type=int, help="decimal digits (mpmath); default float64")
    parser.add_argument("--method", default="auto", choices=("auto", "closed", "quadrature"))
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    prog = "diffmix coefficients: error:"
    try:
        if args.model is not None:
            if args.t is not None or args.variance is not None:
                raise ValueError("--t and --variance are taken from the model file with --model")
            if args.mean is not None or args.row_norm is not None:
                raise ValueError("--mean and --row-norm go with --activation, not --model")
            model = load_model(args.model)
            coeffs = class_coefficients(model, dps=args.dps, method=args.method)
        else:
            for name in ("t", "variance"):
                if getattr(args, name) is None:
                    raise ValueError(f"--{name} is required with --activation")
            try:
                act = parse_activation(args.activation)
            except ValueError as exc:
                raise ValueError(f"--activation: {exc}") from None
            t = args.t if args.dps else float(args.t)
            var = args.variance if args.dps else float(args.variance)
            for name, value in (("t", args.t), ("variance", args.variance)):
                if not float(value) > 0 or float(value) == float("inf"):
                    raise ValueError(f"--{name} = {value}: must be a finite number > 0")
            if args.row_norm is not None and args.mean is None:
                raise ValueError("--row-norm needs --mean")
            if args.mean is not None:
                if not abs(float(args.mean)) < float("inf"):
                    raise ValueError(f"--mean = {args.mean}: must be a finite number")
                r = 1.0 if args.row_norm is None else float(args.row_norm)
                if not 0 < r < float("inf"):
                    raise ValueError(f"--row-norm = {args.row_norm}: must be a finite number > 0")
                coeffs = (neuron_coefficients(act, t, var, float(args.mean), row_norm=r,
                                              dps=args.dps, method=args.method),)
            else:
                coeffs = (centered_coefficients(act, t, var, dps=args.dps, method=args.method),)
    except (ValueError, ModelError, QuadratureError) as exc:
        print(f"{prog} {exc}", file=sys.stderr)
        return 2
    if args.json:
        if args.model is not None:
            print(json.dumps({"classes": [c.as_dict() for c in coeffs]}))
        else:
            print(json.dumps(coeffs[0].as_dict()))
    else:
        for i, c in enumerate(coeffs):
            head = f"class {i}: " if args.model is not None else ""
            mean = f", mean = {c.mean!r}, row_norm = {c.row_norm!r}" if hasattr(c, "mean") else ""
            _print_text(c, f"{head}activation {c.activation}, t = {c.t!r}, "
                           f"variance = {c.variance!r}{mean}" + (f", {c.dps} digits" if c.dps else ""))
    return 0
