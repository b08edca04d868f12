"""``diffmix emit``: write the kernel modules derived for an activation."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._activations import BUILTIN_ACTIVATIONS, parse_activation
from ._kernels import (GENERATED_DIR, cache_dir, emit, emit_spectral, emit_two_resolvent, module_texts,
                       spectral_texts, two_resolvent_texts)


def emit_main(argv: list[str] | None = None) -> int:
    """Emit kernels: ``--builtin`` regenerates the committed modules of every built-in
    activation (in a source checkout), ``--activation EXPR`` one activation; ``--check`` only
    reports which committed modules differ from what the current SymPy derivation prints."""
    parser = argparse.ArgumentParser(
        prog="diffmix emit",
        description="Derive the GEP coefficient kernels of an activation with SymPy and write them "
                    "as a float64 Numba module and an mpmath module.")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--builtin", action="store_true",
                      help=f"all built-in activations ({', '.join(BUILTIN_ACTIVATIONS)}) and the "
                           "spectral equations and the two-resolvent kernel, into derivations/_generated")
    what.add_argument("--activation", metavar="EXPR",
                      help="a built-in name or an expression in x, e.g. 'x + 0.1*x**3'")
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help=f"output directory (default: _generated for built-ins, {cache_dir()} "
                             "for expressions)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a committed module (all built-ins by default) "
                           "differs from what the current derivation prints")
    args = parser.parse_args(argv)
    if not (args.builtin or args.activation or args.check):
        parser.error("one of --builtin, --activation or --check is required")
    args.builtin = args.builtin or (args.check and not args.activation)
    try:
        acts = ([parse_activation(a) for a in BUILTIN_ACTIVATIONS] if args.builtin
                else [parse_activation(args.activation)])
    except ValueError as exc:
        print(f"diffmix emit: error: --activation: {exc}", file=sys.stderr)
        return 2
    if args.check:
        expected = {f"act_{a.key}_{tgt}.py": text for a in acts
                    for tgt, text in module_texts(a).items()}
        if args.builtin:
            expected.update({f"spectral_{tgt}.py": text for tgt, text in spectral_texts().items()})
            expected.update({f"two_resolvent_{tgt}.py": text
                             for tgt, text in two_resolvent_texts().items()})
        stale = [name for name, text in expected.items()
                 if not (GENERATED_DIR / name).exists() or (GENERATED_DIR / name).read_text() != text]
        for name in stale:
            print(f"out of date: {name}")
        return 1 if stale else 0
    for act in acts:
        for path in emit(act, args.out):
            print(path)
    if args.builtin:
        for path in emit_spectral(args.out) + emit_two_resolvent(args.out):
            print(path)
    return 0
