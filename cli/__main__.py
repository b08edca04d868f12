"""The ``diffmix`` command: one entry point, subcommands dispatched lazily.

Each subcommand is a thin ``main(argv) -> int`` in the package that owns the computation; tests
call those directly.  Run ``diffmix <command> --help`` for a command's options.
"""
from __future__ import annotations

import importlib
import sys

from . import __version__

#: name -> ("module:function", one-line help)
COMMANDS = {
    "coefficients": ("diffmix.theory._cli:coefficients_main",
                     "GEP coefficients (mu0, mu1, a_t, b_t, v_t2, s_t2) of an activation or a model"),
    "emit": ("diffmix.derivations._cli:emit_main",
             "write the Numba and mpmath kernel modules derived by SymPy for an activation"),
    "edges": ("diffmix.solvers._cli:edges_main",
              "spectral edges, atoms and timescales of a centered mixture (any precision)"),
    "spectrum": ("diffmix.validation._cli:spectrum_main",
                 "density, edges, timescales and a plot of U_gep, centered or with centroids (optionally against a finite size)"),
    "figure": ("diffmix.validation._cli:figure_main", "regenerate a figure of the paper"),
    "curves": ("diffmix.validation._learning:curves_main",
               "learning curves per class (train, test, score MSE): exact flow of a finite draw, or --method analytic"),
    "hierarchy": ("diffmix.validation._learning:hierarchy_main",
                  "class generalization / memorization times and gaps (paper eq. (15)); --method analytic"),
    "speciation": ("diffmix.theory._speciation_cli:speciation_main",
                   "class speciation times (per class and per mode of M = sum rho_c mu_c mu_c^T) at dimension d"),
    "fmnist": ("diffmix.gpu._fmnist_cli:fmnist_main",
               "Fashion-MNIST class statistics (variance, centroid norm, cosine to Sneaker) of the training set"),
    "ddpm": ("diffmix.gpu._ddpm_cli:ddpm_main",
             "DDPM on a Fashion-MNIST Sneaker pair (App. J.1): train, sample, per-class memorization, track"),
    "simulate": ("diffmix.gpu._cli:simulate_main",
                 "gradient descent of the finite random-features model (PyTorch, CPU or CUDA)"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: diffmix <command> [options]   (diffmix {__version__})", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run 'diffmix <command> --help' for the options of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to a subcommand; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"diffmix {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"diffmix: error: unknown command '{name}' (commands: {', '.join(COMMANDS)})",
              file=sys.stderr)
        return 2
    module, func = COMMANDS[name][0].split(":")
    try:
        return int(getattr(importlib.import_module(module), func)(rest) or 0)
    except SystemExit as exc:  # argparse: --help or a usage error
        return exc.code if isinstance(exc.code, int) else 2


if __name__ == "__main__":
    sys.exit(main())
