"""Printing SymPy expressions into real Python modules: a float64 Numba twin and an mpmath twin.

The pipeline follows SymPy's codegen (house style): *what* to compute is a SymPy expression,
*how* to print it is a printer per target, and the printed text is a module written to disk (so
that ``numba.njit(cache=True)`` can cache it; functions built by ``lambdify`` at run time cannot be
cached).  Emission is deterministic: the same expressions give byte-identical files.

Special functions that need care in floating point are SymPy ``Function`` subclasses here; each
target prints them as a call to a helper that every emitted module defines in its preamble.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sympy as sp
from sympy.printing.pycode import MpmathPrinter, PythonCodePrinter

__all__ = ["AsinMinusX", "NormalCdf", "SinMinusXCos", "KernelFunction", "render_module", "write_atomic",
           "TEMPLATE_VERSION"]

#: Bumped whenever the emitted text changes for the same expressions.
TEMPLATE_VERSION = "1"


class AsinMinusX(sp.Function):
    """asin(y) - y, printed as a helper that has no cancellation for small |y|."""

    nargs = 1

    def fdiff(self, argindex=1):
        y = self.args[0]
        return 1 / sp.sqrt(1 - y**2) - 1

    def _eval_rewrite_as_asin(self, y, **kwargs):
        return sp.asin(y) - y


class SinMinusXCos(sp.Function):
    """sin(theta) - theta cos(theta), printed as a helper without cancellation for small theta."""

    nargs = 1

    def fdiff(self, argindex=1):
        theta = self.args[0]
        return theta * sp.sin(theta)

    def _eval_rewrite_as_sin(self, theta, **kwargs):
        return sp.sin(theta) - theta * sp.cos(theta)


class NormalCdf(sp.Function):
    """Phi(s) = erfc(-s / sqrt 2) / 2, printed so (SymPy would rewrite erfc(-y) as 2 - erfc(y),
    which loses every digit of Phi(s) for s << 0)."""

    nargs = 1

    def fdiff(self, argindex=1):
        s = self.args[0]
        return sp.exp(-s**2 / 2) / sp.sqrt(2 * sp.pi)

    def _eval_rewrite_as_erfc(self, s, **kwargs):
        return sp.erfc(-s / sp.sqrt(2)) / 2


class _F64Printer(PythonCodePrinter):
    def __init__(self):
        super().__init__({"fully_qualified_modules": True, "standard": "python3"})

    def _print_AsinMinusX(self, expr):
        return f"_asin_minus_x({self._print(expr.args[0])})"

    def _print_SinMinusXCos(self, expr):
        return f"_sin_minus_xcos({self._print(expr.args[0])})"

    def _print_NormalCdf(self, expr):
        return f"(0.5 * math.erfc(-0.7071067811865476 * ({self._print(expr.args[0])})))"



class _MpPrinter(MpmathPrinter):
    def _print_AsinMinusX(self, expr):
        return f"_asin_minus_x({self._print(expr.args[0])})"

    def _print_SinMinusXCos(self, expr):
        return f"_sin_minus_xcos({self._print(expr.args[0])})"

    def _print_NormalCdf(self, expr):
        return f"(mpmath.erfc(-({self._print(expr.args[0])}) / mpmath.sqrt(2)) / 2)"


_F64_PREAMBLE = '''\
import math

import numpy as np
from numba import njit

_NAN = math.nan

@njit(cache=True)
def _asin_minus_x(y):
    """asin(y) - y without cancellation: Taylor series for |y| < 0.25 (error < 1e-17)."""
    if abs(y) >= 0.25:
        return math.asin(y) - y
    y2 = y * y
    term = y * y2 / 6.0
    total = term
    k = 1
    while abs(term) > 1e-18 * abs(total):
        term *= y2 * (2 * k + 1) * (2 * k + 1) / ((2 * k + 2) * (2 * k + 3))
        total += term
        k += 1
    return total


@njit(cache=True)
def _sin_minus_xcos(theta):
    """sin(theta) - theta cos(theta) without cancellation: series for |theta| < 0.5."""
    if abs(theta) >= 0.5:
        return math.sin(theta) - theta * math.cos(theta)
    t2 = theta * theta
    # sum_{k>=1} (-1)^(k+1) 2k theta^(2k+1) / (2k+1)!
    term = theta * t2 / 3.0
    total = term
    k = 1
    while abs(term) > 1e-18 * abs(total):
        term *= -t2 / ((2 * k) * (2 * k + 3))
        total += term
        k += 1
    return total
'''

_MP_PREAMBLE = '''\
import mpmath

_NAN = None

def _guard_bits(x):
    """Extra working bits that absorb the cancellation of a direct formula near x = 0."""
    if x == 0:
        return 10
    return 10 + max(0, -2 * int(mpmath.floor(mpmath.log(abs(x), 2))))


def _asin_minus_x(y):
    """asin(y) - y at the caller's precision (extra guard bits absorb the cancellation)."""
    y = mpmath.mpf(y)
    with mpmath.extraprec(_guard_bits(y)):
        value = mpmath.asin(y) - y
    return +value


def _sin_minus_xcos(theta):
    """sin(theta) - theta cos(theta) at the caller's precision."""
    theta = mpmath.mpf(theta)
    with mpmath.extraprec(_guard_bits(theta)):
        value = mpmath.sin(theta) - theta * mpmath.cos(theta)
    return +value
'''


@dataclass(frozen=True)
class KernelFunction:
    """A function to emit: ``name(args) -> expr`` (a scalar or a tuple of scalars).

    ``doc`` becomes its docstring.  ``body`` may replace the printed return for hand-written
    templates (loops), as pairs ``(target, text)``; ``prelude`` holds lines, per target, that
    run before the printed expressions (e.g. stable intermediate quantities they use as symbols);
    ``lift_args`` converts the arguments of the mpmath twin to ``mpf`` first (entry points; inner
    integrands are called with mpf already).
    """

    name: str
    args: tuple[str, ...]
    exprs: tuple[sp.Expr, ...] = ()
    doc: str = ""
    body: tuple[tuple[str, str], ...] = ()
    prelude: tuple[tuple[str, str], ...] = ()
    lift_args: bool = False


def _print_exprs(exprs, printer, indent):
    """CSE the expressions together and print assignments plus the returned names."""
    replacements, reduced = sp.cse(list(exprs), symbols=sp.numbered_symbols("_c"), optimizations=None)
    lines = [f"{indent}{printer.doprint(sym)} = {printer.doprint(val)}" for sym, val in replacements]
    results = [printer.doprint(e) for e in reduced]
    ret = results[0] if len(results) == 1 else "(" + ", ".join(results) + ")"
    return lines, ret


def _render_function(fn: KernelFunction, target: str) -> str:
    deco = "@njit(cache=True)\n" if target == "f64" else ""
    header = f"{deco}def {fn.name}({', '.join(fn.args)}):\n"
    doc = f'    """{fn.doc}"""\n' if fn.doc else ""
    bodies = dict(fn.body)
    if target in bodies:
        return header + doc + bodies[target].rstrip() + "\n"
    printer = _F64Printer() if target == "f64" else _MpPrinter()
    lines, ret = _print_exprs(fn.exprs, printer, "    ")
    prelude = dict(fn.prelude).get(target, "")
    if prelude:
        lines = prelude.rstrip().split("\n") + lines
    if target == "mp" and fn.lift_args:
        # Arguments may arrive as floats or strings: lift them to mpf at the working precision.
        lines = [f"    {a} = mpmath.mpf({a})" for a in fn.args] + lines
    return header + doc + "\n".join(lines + [f"    return {ret}"]) + "\n"


def render_module(functions, *, target: str, title: str, source: str, extra: str = "") -> str:
    """Return the text of one emitted module.

    Parameters
    ----------
    functions : sequence of KernelFunction
    target : {"f64", "mp"}
        ``"f64"``: float64 functions compiled by ``numba.njit(cache=True)``; ``"mp"``: mpmath
        functions evaluated at the caller's ``mpmath.mp`` precision (use ``mpmath.workdps``).
    title : str
        First docstring line.
    source : str
        What the module was derived from (printed in the header, hashed).
    extra : str
        Module-level constants appended after the functions.
    """
    if target not in ("f64", "mp"):
        raise ValueError(f"target = {target!r}: must be 'f64' or 'mp'")
    preamble = _F64_PREAMBLE if target == "f64" else _MP_PREAMBLE
    body = "\n\n".join(_render_function(fn, target) for fn in functions)
    text = preamble + "\n\n" + body + ("\n\n" + extra.rstrip() + "\n" if extra else "")
    digest = hashlib.sha256((source + "\n" + text).encode()).hexdigest()
    header = (
        "# Generated by diffmix.derivations (`diffmix emit`); do not edit, re-emit instead.\n"
        f"# source: {source}\n"
        f"# target: {'float64, numba.njit(cache=True)' if target == 'f64' else 'mpmath, caller precision (mpmath.workdps)'}\n"
        f"# sympy {sp.__version__}, template v{TEMPLATE_VERSION}, sha256 {digest}\n"
        f'"""{title}"""\n'
    )
    return header + text


def write_atomic(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically; return False (and write nothing) if unchanged."""
    path = Path(path)
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True
