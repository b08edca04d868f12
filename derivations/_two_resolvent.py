"""Symbolic derivation of the two-resolvent deterministic equivalent S(z1, z2) of a centered mixture.

``shared/theory/test-error.md`` §3: conditionally on W, with T_c = alpha_c K + v2_c I, the
leave-one-out (Sherman-Morrison) argument gives for A commuting with K

    R(z1) A R(z2) ~ Rbar1 A Rbar2 + sum_c rho_c t_c(A) R(z1) T_c R(z2),
    t_c(A) = (1/n) tr(T_c Rbar1 A Rbar2) / [(1 + delta_c(z1)) (1 + delta_c(z2))],

Rbar(z) = (P(z) K + Q(z) I)^{-1} the one-resolvent equivalent (``spectrum.md`` §2).  Traced against K
with A = K, and with the exact resolvent identity (1/p) tr K R1 R2 = D12 = (m1(z1) - m1(z2))/(z1 - z2),
the relation is linear in S = (1/p) tr K R1 K R2 alone; SymPy solves it here:

    S = [k2 + D12 sum_c rho_c v2_c t_c] / [1 - sum_c rho_c alpha_c t_c],
    t_c = r (alpha_c k2 + v2_c k1) / [(1 + delta_c(z1)) (1 + delta_c(z2))],     r = p / n,

with the K-traces k_j = (1/p) tr K^j Rbar1 Rbar2 = E_k[k^j / ((P1 k + Q1)(P2 k + Q2))] over the
Marchenko-Pastur law of K.  Their closed forms come from SymPy's partial fractions in k and the
moments E[1/(P k + Q)] = m0, E[k/(P k + Q)] = m1 (the definitions of m0, m1 through Rbar):

    k0 = (P1 m0(z1) - P2 m0(z2)) / Dl,  k1 = (P1 m1(z1) - P2 m1(z2)) / Dl,  k2 = (Q2 m1(z2) - Q1 m1(z1)) / Dl,
    Dl = P1 Q2 - P2 Q1.

As z1 -> z2 both numerator and Dl vanish (the closed form loses digits in proportion to the
cancellation factor ``kappa`` it returns), so the same traces are also emitted as a quadrature
over the Marchenko-Pastur law (Gauss-Chebyshev of the second kind, plus the atom 1 - 1/psi_p at
k = 0, which only k0 sees).  On the diagonal, D12 = m1'(z), emitted from the implicit derivative
of the spectral equations (F1, F2) of :mod:`._spectral`.

Internal check (test-error.md §5 (i)): the same equivalent with A = I, traced against K, must give
back the exact identity (1/p) tr K R1 R2 = D12: ``identity`` returns that prediction,
k1 + sum_c rho_c t_c(I) (alpha_c S + v2_c D12) with t_c(I) = r (alpha_c k1 + v2_c k0) / [...].
"""
from __future__ import annotations

import sympy as sp

from ._codegen import KernelFunction, _F64Printer, _MpPrinter
from ._spectral import _class_terms, _derivative_symbols, _loop_body, _replace, spectral_system

__all__ = ["closure_solution", "trace_closed_forms", "two_resolvent_functions"]

k = sp.Symbol("k", positive=True)                     # an eigenvalue of K
m0a, m1a, m0b, m1b = sp.symbols("m0a m1a m0b m1b")
Pa, Qa, Pb, Qb = sp.symbols("Pa Qa Pb Qb")
k0, k1, k2, D12, S = sp.symbols("k0 k1 k2 D12 S")
psi_p, r = sp.symbols("psi_p r")
rho_c, alpha_c, v2_c = sp.symbols("rho_c alpha_c v2_c")
SA, SV, SIA, SIV = sp.symbols("SA SV SIA SIV")        # class sums of the closures

_PARAMS = ("psi_p", "r", "beta", "s2", "rho", "alpha", "v2")


def _printer(target: str):
    return _F64Printer() if target == "f64" else _MpPrinter()


def trace_closed_forms() -> dict:
    """k0, k1, k2 as explicit functions of (P, Q, m0, m1) at the two points.

    Partial fractions in k of k^j / ((Pa k + Qa)(Pb k + Qb)) for j = 0, 1 give terms
    c / (P k + Q); k^0 times such a term averages to c m0, k^1 times it to c m1 (and a term
    independent of k would average to itself: none appears).  Returns ``{"k0": (term_a, term_b),
    ...}``: each trace as its two partial-fraction terms (their sum is the trace; the ratio of
    the sum of their moduli to the modulus of the sum is the cancellation factor).
    """
    moments = {0: {"a": m0a, "b": m0b}, 1: {"a": m1a, "b": m1b}}
    out = {}
    for name, j, power in (("k0", 0, 0), ("k1", 0, 1), ("k2", 1, 1)):
        # k^(j + power) / (..)(..) = k^power * [k^j / (..)(..)]; apart the proper fraction
        frac = sp.apart(k**j / ((Pa * k + Qa) * (Pb * k + Qb)), k)
        terms = {"a": sp.Integer(0), "b": sp.Integer(0)}
        for term in sp.Add.make_args(frac):
            for side, (P_, Q_) in (("a", (Pa, Qa)), ("b", (Pb, Qb))):
                c = sp.cancel(term * (P_ * k + Q_))
                if not c.has(k):
                    terms[side] += c * moments[power][side]
                    break
            else:
                raise AssertionError(f"partial fraction term {term} has no linear denominator")
        out[name] = (sp.factor(terms["a"]), sp.factor(terms["b"]))
    return out


def _check_note_forms(forms: dict) -> None:
    """The forms of test-error.md §3 (k1, k2 written with m1) are the ones derived here."""
    Dl = Pa * Qb - Pb * Qa
    note = {"k0": (Pa * m0a - Pb * m0b) / Dl, "k1": (Pa * m1a - Pb * m1b) / Dl,
            "k2": (Qb * m1b - Qa * m1a) / Dl}
    for name, (ta, tb) in forms.items():
        if sp.simplify(ta + tb - note[name]) != 0:
            raise AssertionError(f"{name}: derived {ta + tb} differs from the note's {note[name]}")


def _t_c(kk2, kk1, delta_a, delta_b):
    return r * (alpha_c * kk2 + v2_c * kk1) / ((1 + delta_a) * (1 + delta_b))


def closure_solution() -> sp.Expr:
    """S solved from S = k2 + SA S + SV D12 (SA = sum rho alpha t_c, SV = sum rho v2 t_c)."""
    sol = sp.solve(sp.Eq(S, k2 + SA * S + SV * D12), S)
    if len(sol) != 1:
        raise AssertionError(f"the closure must be linear in S, got {sol}")
    return sp.factor(sol[0])


def _class_loop(target: str, inits: list[tuple[str, str]], terms: list[tuple[str, sp.Expr]],
                tag: str) -> str:
    """Lines initialising accumulators, then a loop over classes adding SymPy-printed terms."""
    printer = _printer(target)
    ind = "        "
    lines = [f"    {name} = {value}" for name, value in inits]
    loop = "    for c in range(len(rho)):" if target == "mp" else "    for c in range(rho.shape[0]):"
    lines += [loop, f"{ind}rho_c = rho[c]", f"{ind}alpha_c = alpha[c]", f"{ind}v2_c = v2[c]"]
    reps, reduced = sp.cse([e for _, e in terms], symbols=sp.numbered_symbols(f"_{tag}"))
    lines += [f"{ind}{printer.doprint(s)} = {printer.doprint(v)}" for s, v in reps]
    lines += [f"{ind}{name} += {printer.doprint(e)}" for (name, _), e in zip(terms, reduced)]
    return "\n".join(lines) + "\n"


def _print_cse(target: str, exprs, tag: str) -> tuple[list[str], list[str]]:
    """Assignment lines of the common subexpressions, and the printed reduced expressions."""
    printer = _printer(target)
    reps, reduced = sp.cse(list(exprs), symbols=sp.numbered_symbols(f"_{tag}"))
    lines = [f"    {printer.doprint(s)} = {printer.doprint(v)}" for s, v in reps]
    return lines, [printer.doprint(e) for e in reduced]


def _print_return(target: str, exprs, tag: str) -> str:
    lines, printed = _print_cse(target, exprs, tag)
    ret = printed[0] if len(printed) == 1 else "(" + ", ".join(printed) + ")"
    return "\n".join(lines + [f"    return {ret}"]) + "\n"


def _pq_function() -> KernelFunction:
    m0, m1, z, beta, s2 = sp.symbols("m0 m1 z beta s2")
    delta = r * (alpha_c * m1 + v2_c * m0)
    bodies = []
    for target in ("f64", "mp"):
        head = _class_loop(target, [("P", "beta + 0 * z"), ("Q", "s2 - z")],
                           [("P", rho_c * alpha_c / (1 + delta)), ("Q", rho_c * v2_c / (1 + delta))],
                           "p")
        bodies.append((target, head + "    return (P, Q)\n"))
    return KernelFunction("pq", ("m0", "m1", "z") + _PARAMS, body=tuple(bodies),
                          doc="(P(z), Q(z)) of spectrum.md §2 at a solution (m0, m1) of the spectral "
                              "equations: Rbar(z) = (P K + Q I)^{-1}.")


def _dm_dz_function() -> KernelFunction:
    """Implicit derivative of (F1, F2)(m0(z), m1(z), z) = 0: J dm/dz = -dF/dz."""
    m0, m1, z = sp.symbols("m0 m1 z")
    F1, F2, P, Q = spectral_system()
    subs = _derivative_symbols()
    F = [F1, F2]
    J = sp.Matrix([[sp.diff(f, v) for v in (m0, m1)] for f in F]).applyfunc(lambda e: _replace(e, subs))
    Fz = sp.Matrix([_replace(sp.diff(f, z), subs) for f in F])
    dm = J.LUsolve(-Fz)
    bodies = []
    for target in ("f64", "mp"):
        head = _loop_body(target, _class_terms(), False)
        bodies.append((target, head + _print_return(target, [sp.together(dm[0]), sp.together(dm[1])], "d")))
    return KernelFunction("dm_dz", ("m0", "m1", "z") + _PARAMS, body=tuple(bodies),
                          doc="(dm0/dz, dm1/dz) by implicit differentiation of the spectral equations "
                              "(F1, F2) (spectrum.md §2); dm1/dz is D12 on the diagonal z1 = z2.")


def _traces_closed_function(forms: dict) -> KernelFunction:
    exprs = [ta + tb for ta, tb in (forms["k0"], forms["k1"], forms["k2"])]
    kappas = [(sp.Abs(ta) + sp.Abs(tb)) / sp.Abs(ta + tb) for ta, tb in
              (forms["k0"], forms["k1"], forms["k2"])]
    bodies = []
    for target in ("f64", "mp"):
        lines, e = _print_cse(target, exprs + kappas, "c")
        # the cancellation factor is the largest of the three
        lines.append(f"    return ({e[0]}, {e[1]}, {e[2]}, max({e[3]}, max({e[4]}, {e[5]})))")
        bodies.append((target, "\n".join(lines) + "\n"))
    return KernelFunction("traces_closed", ("m0a", "m1a", "Pa", "Qa", "m0b", "m1b", "Pb", "Qb"),
                          body=tuple(bodies),
                          doc="(k0, k1, k2, kappa): k_j = (1/p) tr K^j Rbar(z1) Rbar(z2) in closed form "
                              "(partial fractions, test-error.md §3); kappa = sum of |terms| / |sum|, "
                              "the cancellation factor (relative error ~ kappa * eps); undefined on z1 = z2 "
                              "(use traces_quadrature there).")


def _traces_quadrature_function() -> KernelFunction:
    x = sp.Symbol("x")
    integrands = [x**j / ((Pa * x + Qa) * (Pb * x + Qb)) for j in range(3)]
    bodies = []
    for target in ("f64", "mp"):
        printer = _printer(target)
        mod = "math" if target == "f64" else "mpmath"
        reps, reduced = sp.cse(integrands, symbols=sp.numbered_symbols("_q"))
        ind = "        "
        inner = [f"{ind}{printer.doprint(s)} = {printer.doprint(v)}" for s, v in reps]
        one = "1.0" if target == "f64" else "mpmath.mpf(1)"
        text = "\n".join([
            f"    lo = ({one} - {mod}.sqrt(psi_p)) ** 2",
            f"    hi = ({one} + {mod}.sqrt(psi_p)) ** 2",
            "    half = (hi - lo) / 2",
            "    mid = (hi + lo) / 2",
            "    s0 = 0 * Pa",
            "    s1 = 0 * Pa",
            "    s2 = 0 * Pa",
            "    for i in range(1, n + 1):",
            f"{ind}theta = i * {mod}.pi / (n + 1)",
            f"{ind}sn = {mod}.sin(theta)",
            f"{ind}x = mid - half * {mod}.cos(theta)",
            f"{ind}w = sn * sn / x",
            *inner,
            f"{ind}s0 += w * ({printer.doprint(reduced[0])})",
            f"{ind}s1 += w * ({printer.doprint(reduced[1])})",
            f"{ind}s2 += w * ({printer.doprint(reduced[2])})",
            "    scale = half * half / (2 * psi_p * (n + 1))",
            f"    atom = max(0 * psi_p, {one} - {one} / psi_p)",
            "    return (scale * s0 + atom / (Qa * Qb), scale * s1, scale * s2)",
        ]) + "\n"
        bodies.append((target, text))
    return KernelFunction("traces_quadrature", ("Pa", "Qa", "Pb", "Qb", "psi_p", "n"), body=tuple(bodies),
                          doc="(k0, k1, k2) as integrals over the Marchenko-Pastur law of K (ratio psi_p): "
                              "n-node Gauss-Chebyshev of the second kind on the bulk "
                              "(lambda = mid - half cos(theta)), plus the atom max(0, 1 - 1/psi_p) at 0.")


def _kernel_function(sol: sp.Expr) -> KernelFunction:
    da = r * (alpha_c * m1a + v2_c * m0a)
    db = r * (alpha_c * m1b + v2_c * m0b)
    t = _t_c(k2, k1, da, db)
    bodies = []
    for target in ("f64", "mp"):
        head = _class_loop(target, [("SA", "0 * m0a"), ("SV", "0 * m0a")],
                           [("SA", rho_c * alpha_c * t), ("SV", rho_c * v2_c * t)], "s")
        bodies.append((target, head + _print_return(target, [sol], "e")))
    return KernelFunction("kernel", ("m0a", "m1a", "m0b", "m1b", "k1", "k2", "D12", "psi_p", "r", "rho",
                                     "alpha", "v2"), body=tuple(bodies),
                          doc="S(z1, z2) ~ (1/p) tr K R(z1) K R(z2) from the traces k1, k2 and D12 "
                              "(test-error.md §3; the closure solved for S by SymPy).")


def _identity_function() -> KernelFunction:
    da = r * (alpha_c * m1a + v2_c * m0a)
    db = r * (alpha_c * m1b + v2_c * m0b)
    tI = _t_c(k1, k0, da, db)
    pred = k1 + SIA * S + SIV * D12
    bodies = []
    for target in ("f64", "mp"):
        head = _class_loop(target, [("SIA", "0 * m0a"), ("SIV", "0 * m0a")],
                           [("SIA", rho_c * alpha_c * tI), ("SIV", rho_c * v2_c * tI)], "i")
        bodies.append((target, head + _print_return(target, [pred], "e")))
    return KernelFunction("identity", ("m0a", "m1a", "m0b", "m1b", "k0", "k1", "S", "D12", "psi_p", "r",
                                       "rho", "alpha", "v2"), body=tuple(bodies),
                          doc="The A = I equivalent's prediction of (1/p) tr K R(z1) R(z2), "
                              "k1 + sum_c rho_c t_c(I) (alpha_c S + v2_c D12); exactly D12 when S is "
                              "right (test-error.md §5, check (i)).")


def two_resolvent_functions() -> tuple[list[KernelFunction], str]:
    """Kernel functions of the two-resolvent equivalent (float64 Numba twin and mpmath twin).

    * ``pq(m0, m1, z, psi_p, r, beta, s2, rho, alpha, v2)`` -> (P, Q);
    * ``dm_dz(m0, m1, z, ...)`` -> (dm0/dz, dm1/dz);
    * ``traces_closed(m0a, m1a, Pa, Qa, m0b, m1b, Pb, Qb)`` -> (k0, k1, k2, kappa);
    * ``traces_quadrature(Pa, Qa, Pb, Qb, psi_p, n)`` -> (k0, k1, k2);
    * ``kernel(m0a, m1a, m0b, m1b, k1, k2, D12, psi_p, r, rho, alpha, v2)`` -> S;
    * ``identity(m0a, m1a, m0b, m1b, k0, k1, S, D12, psi_p, r, rho, alpha, v2)`` -> the A = I
      prediction of D12.
    """
    forms = trace_closed_forms()
    _check_note_forms(forms)
    sol = closure_solution()
    fns = [_pq_function(), _dm_dz_function(), _traces_closed_function(forms),
           _traces_quadrature_function(), _kernel_function(sol), _identity_function()]
    return fns, ""
