"""Symbolic derivation of the spectral (deterministic-equivalent) equations of a centered mixture.

spectrum.md §2 (paper App. F.3, eqs. (113)-(114)): for z in the upper half plane the Stieltjes
transform m0 = (1/p) tr (U_gep - z)^{-1} and m1 = (1/p) tr K (U_gep - z)^{-1} solve

    delta_c = r (alpha_c m1 + v2_c m0),                 r = psi_p / psi_n
    P = beta + sum_c rho_c alpha_c / (1 + delta_c)
    Q = s2 - z + sum_c rho_c v2_c / (1 + delta_c)
    F1 = psi_p P Q m0^2 + (Q + (1 - psi_p) P) m0 - 1 = 0
    F2 = P m1 + Q m0 - 1 = 0

two unknowns for any number of classes C (the Marchenko-Pastur transform of K = W W^T / d is
eliminated algebraically).  Only alpha_c = a_c^2 sigma_c^2, v2_c, rho_c, beta, s2 enter; odd
activations only (mu0 = 0): an even part adds outliers these equations do not describe.

SymPy derives here, by the chain rule through P(m0, m1) and Q(m0, m1, z), the Jacobian
J = d(F1, F2)/d(m0, m1) and the Jacobian of the fold system (F1, F2, det J) in (m0, m1, z) whose
real solutions are the spectral edges (spectrum.md §5); the per-class terms of P and Q and their
first and second derivatives are derived from one class's term.  The emitted kernels loop over the
classes to accumulate P, Q and their derivatives, then evaluate the printed expressions.
"""
from __future__ import annotations

import sympy as sp

from ._codegen import KernelFunction

__all__ = ["spectral_functions", "spectral_system"]

m0, m1, z = sp.symbols("m0 m1 z")
psi_p, r, beta, s2 = sp.symbols("psi_p r beta s2")
rho_c, alpha_c, v2_c = sp.symbols("rho_c alpha_c v2_c")
_VARS = (m0, m1)


def spectral_system():
    """(F1, F2) as SymPy expressions with P, Q undefined functions of (m0, m1) and (m0, m1, z)."""
    P = sp.Function("P")(m0, m1)
    Q = sp.Function("Q")(m0, m1, z)
    F1 = psi_p * P * Q * m0**2 + (Q + (1 - psi_p) * P) * m0 - 1
    F2 = P * m1 + Q * m0 - 1
    return F1, F2, P, Q


def _derivative_symbols():
    """Map Derivative(P/Q, ...) objects to plain symbols P_0, P_01, Q_1, ...; Q_z = -1."""
    P = sp.Function("P")(m0, m1)
    Q = sp.Function("Q")(m0, m1, z)
    subs = {}
    names = {m0: "0", m1: "1"}
    for f, tag in ((P, "P"), (Q, "Q")):
        for i in _VARS:
            subs[sp.Derivative(f, i)] = sp.Symbol(f"{tag}_{names[i]}")
            for j in _VARS:
                key = "".join(sorted(names[i] + names[j]))
                subs[sp.Derivative(f, i, j)] = sp.Symbol(f"{tag}_{key}")
    subs[sp.Derivative(Q, z)] = sp.Integer(-1)
    for i in _VARS:
        subs[sp.Derivative(Q, i, z)] = sp.Integer(0)
        subs[sp.Derivative(Q, z, i)] = sp.Integer(0)
    subs[sp.Derivative(Q, z, z)] = sp.Integer(0)
    subs[P] = sp.Symbol("P")
    subs[Q] = sp.Symbol("Q")
    return subs


def _replace(expr, subs):
    # Higher derivatives first (longest first), then the functions themselves.
    items = sorted(subs.items(), key=lambda kv: -len(str(kv[0])))
    for old, new in items:
        expr = expr.subs(old, new)
    if expr.has(sp.Derivative) or expr.atoms(sp.core.function.AppliedUndef):
        raise AssertionError(f"unreplaced derivative in {expr}")
    return expr


def _class_terms():
    """One class's contributions to P and Q with first and second derivatives in (m0, m1)."""
    delta = r * (alpha_c * m1 + v2_c * m0)
    tP = rho_c * alpha_c / (1 + delta)
    tQ = rho_c * v2_c / (1 + delta)
    out = []
    for tag, term in (("P", tP), ("Q", tQ)):
        out.append((f"t{tag}", term))
        for i, ni in ((m0, "0"), (m1, "1")):
            out.append((f"t{tag}_{ni}", sp.diff(term, i)))
        for key, (i, j) in (("00", (m0, m0)), ("01", (m0, m1)), ("11", (m1, m1))):
            out.append((f"t{tag}_{key}", sp.diff(term, i, j)))
    return out


def _equations():
    F1, F2, P, Q = spectral_system()
    subs = _derivative_symbols()
    F = [F1, F2]
    J = [[sp.diff(f, v) for v in _VARS] for f in F]
    det = J[0][0] * J[1][1] - J[0][1] * J[1][0]
    G = F + [det]
    JG = [[sp.diff(g, v) for v in (m0, m1, z)] for g in G]
    rep = lambda e: _replace(e, subs)
    return ([rep(f) for f in F], [[rep(e) for e in row] for row in J], rep(det),
            [[rep(e) for e in row] for row in JG])


_ACC_NAMES = ("P", "Q", "P_0", "P_1", "Q_0", "Q_1", "P_00", "P_01", "P_11", "Q_00", "Q_01", "Q_11")


def _loop_body(target: str, terms, second: bool) -> str:
    """Accumulate P, Q and derivatives over classes, with the per-class terms printed by SymPy."""
    from ._codegen import _F64Printer, _MpPrinter
    printer = _F64Printer() if target == "f64" else _MpPrinter()
    wanted = [(n, e) for n, e in terms if second or len(n.split("_")[-1]) < 2 or "_" not in n]
    acc = [n for n in _ACC_NAMES if second or len(n.split("_")[-1]) < 2 or "_" not in n]
    ind = "        "
    reps, reduced = sp.cse([e for _, e in wanted], symbols=sp.numbered_symbols("_k"))
    lines = ["    P = beta + 0 * z", "    Q = s2 - z"] + [f"    {n} = 0 * z" for n in acc[2:]]
    loop = "    for c in range(len(rho)):" if target == "mp" else "    for c in range(rho.shape[0]):"
    lines += [loop, f"{ind}rho_c = rho[c]", f"{ind}alpha_c = alpha[c]", f"{ind}v2_c = v2[c]"]
    lines += [f"{ind}{printer.doprint(s)} = {printer.doprint(v)}" for s, v in reps]
    for (name, _), e in zip(wanted, reduced):
        lines.append(f"{ind}{name[1:]} += {printer.doprint(e)}")
    return "\n".join(lines) + "\n"


def spectral_functions() -> tuple[list[KernelFunction], str]:
    """Kernel functions of the spectral equations (float64 Numba twin and mpmath twin).

    * ``residual(m0, m1, z, psi_p, r, beta, s2, rho, alpha, v2)`` ->
      ``(F1, F2, S1, S2, J00, J01, J10, J11)``: the equations, the sums of the absolute values of
      their terms (the scale for a relative residual: near an atom the terms are huge and cancel),
      and their holomorphic Jacobian in (m0, m1).
    * ``fold(m0, m1, z, ...)`` -> ``(G0, G1, G2, JG00, ..., JG22)``: the edge system
      G = (F1, F2, det J) and its Jacobian in (m0, m1, z) (spectrum.md §5).
    Works for real or complex arguments (Numba compiles one specialization per type).
    """
    F, J, det, JG = _equations()
    terms = _class_terms()
    from ._codegen import _F64Printer, _MpPrinter
    args = ("m0", "m1", "z", "psi_p", "r", "beta", "s2", "rho", "alpha", "v2")
    fns = []
    scales = [sp.Add(*[sp.Abs(term) for term in sp.expand(f).args]) for f in F]
    for name, exprs, second, doc in (
            ("residual", F + scales + [J[0][0], J[0][1], J[1][0], J[1][1]], False,
             "(F1, F2, S1, S2, dF1/dm0, dF1/dm1, dF2/dm0, dF2/dm1) of spectrum.md §2; "
             "S = sum of |terms| of F."),
            ("fold", [F[0], F[1], det] + [e for row in JG for e in row], True,
             "(F1, F2, det J) and its 3x3 Jacobian in (m0, m1, z), row-major (spectrum.md §5).")):
        bodies = []
        for target, printer in (("f64", _F64Printer()), ("mp", _MpPrinter())):
            head = _loop_body(target, terms, second)
            reps, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("_e"))
            lines = [f"    {printer.doprint(s)} = {printer.doprint(v)}" for s, v in reps]
            ret = ", ".join(printer.doprint(e) for e in reduced)
            bodies.append((target, head + "\n".join(lines) + f"\n    return ({ret})\n"))
        fns.append(KernelFunction(name, args, doc=doc, body=tuple(bodies)))
    return fns, ""
