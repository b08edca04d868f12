"""Activations as SymPy expressions: the built-in table and a restricted parser for user input.

An activation is a function of one real variable ``x``.  Built-ins are those of
``shared/theory/notation.md`` ("Activations by name").  A user may also type any expression in
``x`` built from numbers, ``+ - * / **``, the constants ``pi`` and ``E`` and a fixed list of
functions.  The text is parsed with :mod:`ast` and translated node by node into SymPy objects: no
``eval``/``sympify`` of user text ever runs, so nothing outside that grammar can execute.
"""
from __future__ import annotations

import ast
import functools
import hashlib
from dataclasses import dataclass

import sympy as sp

__all__ = ["Activation", "BUILTIN_ACTIVATIONS", "parse_activation", "X"]

#: The variable of every activation expression.
X = sp.Symbol("x", real=True)

#: Functions a user expression may call, by the name typed.
_ALLOWED_FUNCTIONS = {
    "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt,
    "sin": sp.sin, "cos": sp.cos, "atan": sp.atan, "asinh": sp.asinh,
    "erf": sp.erf, "erfc": sp.erfc,
    "abs": sp.Abs, "Abs": sp.Abs, "sign": sp.sign,
    "max": sp.Max, "Max": sp.Max, "min": sp.Min, "Min": sp.Min,
    "Phi": lambda arg: (1 + sp.erf(arg / sp.sqrt(2))) / 2,
    "sigmoid": lambda arg: 1 / (1 + sp.exp(-arg)),
}
_ALLOWED_CONSTANTS = {"pi": sp.pi, "E": sp.E}
_BINOPS = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a ** b,
}
_MAX_SOURCE_LENGTH = 500

# Functions whose presence makes the activation non-smooth (a kink or a jump): Gauss-Hermite
# quadrature then converges only algebraically, and coefficients need a closed form.
_NONSMOOTH = (sp.Abs, sp.sign, sp.Max, sp.Min, sp.Heaviside, sp.Piecewise)


@dataclass(frozen=True)
class Activation:
    """One activation function, symbolic.

    Attributes
    ----------
    name : str
        The built-in name, or the expression text as the user typed it (whitespace stripped).
    expr : sympy.Expr
        The activation as an expression in :data:`X`; for built-ins, the numerically stable form
        that is printed into kernels (``definition`` is the form of notation.md).
    definition : sympy.Expr
        The defining expression (equal to ``expr`` as a function; tests check it).
    builtin : bool
        Whether ``name`` is a built-in (its kernels are committed in ``_generated``).
    smooth : bool
        False when the expression contains ``Abs``, ``sign``, ``Max``, ``Min``, ... : such
        activations need closed forms (quadrature of a kink does not reach float64 accuracy).
    odd : bool
        Whether sigma(-x) = -sigma(x) symbolically (then mu0 = 0 for centered classes).
    """

    name: str
    expr: sp.Expr
    definition: sp.Expr
    builtin: bool
    smooth: bool
    odd: bool

    @property
    def key(self) -> str:
        """Stable identifier: the built-in name, or ``user_<12 hex digits of the hash>``."""
        return self.name.replace("-", "_") if self.builtin else f"user_{self.hash[:12]}"

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical SymPy form (``srepr``) of ``expr``."""
        return hashlib.sha256(sp.srepr(self.expr).encode()).hexdigest()


def _builtin_table() -> dict[str, tuple[sp.Expr, sp.Expr]]:
    x = X
    gelu = x * (1 + sp.erf(x / sp.sqrt(2))) / 2
    return {
        # name: (printed, numerically stable expression; defining expression of notation.md)
        "tanh": (sp.tanh(x), sp.tanh(x)),
        "erf": (sp.erf(x), sp.erf(x)),
        "relu": (sp.Max(0, x), sp.Max(0, x)),
        "gelu": (gelu, gelu),
        # 1/(1+e^{-x}) - 1/2 overflows to nan for large |x| in naive float64 forms; it equals
        # tanh(x/2)/2 exactly (checked symbolically in the tests).
        "sigmoid-centered": (sp.tanh(x / 2) / 2, 1 / (1 + sp.exp(-x)) - sp.Rational(1, 2)),
        "linear": (x, x),
        "sign": (sp.sign(x), sp.sign(x)),
    }


BUILTIN_ACTIVATIONS: tuple[str, ...] = tuple(_builtin_table())


def _is_odd(expr: sp.Expr) -> bool:
    return sp.simplify(expr.subs(X, -X) + expr) == 0


def _is_smooth(expr: sp.Expr) -> bool:
    return not any(expr.has(f) for f in _NONSMOOTH)


def _translate(node: ast.AST, text: str) -> sp.Expr:
    """Translate one node of a parsed expression; anything outside the grammar raises."""
    if isinstance(node, ast.Expression):
        return _translate(node.body, text)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ValueError(f"constant {node.value!r} is not a real number")
        return sp.nsimplify(node.value, rational=True) if isinstance(node.value, float) \
            else sp.Integer(node.value)
    if isinstance(node, ast.Name):
        if node.id == "x":
            return X
        if node.id in _ALLOWED_CONSTANTS:
            return _ALLOWED_CONSTANTS[node.id]
        if isinstance(text, str) and text.strip() == node.id:
            raise ValueError(f"unknown activation '{node.id}' (built-in names: "
                             f"{', '.join(BUILTIN_ACTIVATIONS)}; or an expression in x)")
        raise ValueError(f"unknown name '{node.id}' (the variable is x; constants: pi, E)")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _translate(node.operand, text)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_translate(node.left, text), _translate(node.right, text))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _ALLOWED_FUNCTIONS:
            called = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise ValueError(f"unknown function '{called}' (allowed: "
                             f"{', '.join(sorted(_ALLOWED_FUNCTIONS))})")
        if node.keywords:
            raise ValueError(f"keyword arguments are not allowed in '{node.func.id}(...)'")
        args = [_translate(a, text) for a in node.args]
        if node.func.id in ("max", "Max", "min", "Min"):
            if len(args) < 2:
                raise ValueError(f"'{node.func.id}' needs at least two arguments")
        elif len(args) != 1:
            raise ValueError(f"'{node.func.id}' takes one argument, got {len(args)}")
        return _ALLOWED_FUNCTIONS[node.func.id](*args)
    raise ValueError(f"'{ast.unparse(node)}' is not allowed (use numbers, x, pi, E, + - * / **"
                     " and the listed functions)")


def parse_activation(spec: str) -> Activation:
    """Return the :class:`Activation` for a built-in name or an expression in ``x``.

    Parameters
    ----------
    spec : str
        A name from :data:`BUILTIN_ACTIVATIONS` (notation.md, "Activations by name") or an
        expression such as ``"x + 0.1*x**3"`` or ``"tanh(2*x)/2"``.

    Raises
    ------
    ValueError
        With a one-line reason: empty text, a syntax error, an unknown name or function, an
        expression that does not depend on ``x`` or is not real-valued.

    Examples
    --------
    >>> parse_activation("tanh").odd
    True
    >>> parse_activation("x + x**3/3").expr
    x**3/3 + x
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("activation must be a non-empty string (a built-in name "
                         f"{', '.join(BUILTIN_ACTIVATIONS)} or an expression in x)")
    return _parse(spec.strip())


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> Activation:
    table = _builtin_table()
    if text in table:
        expr, definition = table[text]
        return Activation(text, expr, definition, True, _is_smooth(expr), _is_odd(expr))
    if len(text) > _MAX_SOURCE_LENGTH:
        raise ValueError(f"activation expression longer than {_MAX_SOURCE_LENGTH} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"cannot parse activation '{text}': {exc.msg} (not a built-in name "
                         f"{', '.join(BUILTIN_ACTIVATIONS)}, nor an expression in x)") from None
    try:
        expr = _translate(tree, text)
    except ValueError as exc:
        raise ValueError(f"activation '{text}': {exc}") from None
    except (ZeroDivisionError, OverflowError, RecursionError) as exc:
        raise ValueError(f"activation '{text}': {type(exc).__name__}") from None
    if X not in expr.free_symbols:
        raise ValueError(f"activation '{text}' does not depend on x")
    probe = [expr.subs(X, v).evalf() for v in (-1.3, 0.3, 2.1)]
    if not all(p.is_real and p.is_finite for p in probe):
        raise ValueError(f"activation '{text}' is not real and finite on the real line "
                         "(value at x = -1.3, 0.3 or 2.1 is not a finite real number)")
    return Activation(text, expr, expr, False, _is_smooth(expr), _is_odd(expr))
