"""Exact gradient-flow learning curves of the random-features readout, per class.

The readout A of the score model s_A(x) = A phi(x) / sqrt(p) is trained from A = 0 on the
quadratic denoising loss, so its whole trajectory follows from one eigendecomposition of the
feature covariance U (paper arXiv 2605.06367, eq. (6), App. C; ``shared/theory/dynamics.md``
§1-3, §11):

    dA/dtau = -(2/p) [A U + sqrt(p/Delta_t) V^T],
    A(tau)  = -sqrt(p/Delta_t) V^T U^{-1} (I - exp(-2 U tau / p)),               (dynamics.md (6'))

and, with U = sum_k lambda_k u_k u_k^T, F_k(tau) = (1 - exp(-2 lambda_k tau / p)) / lambda_k,
X = Q^T V, X_c = Q^T V_c^pop, N_c = Q^T U_c^pop Q (paper eqs. (129)-(133)),

    E_train(tau)  = 1 - (2/d) F.q + (1/d) (F^2 lambda).q,               q_k = ||X_k||^2,
    E_test^c(tau) = 1 - (2/d) F.b_c + (1/d) F^T [(X X^T) o N_c] F,      b_{c,k} = X_{c,k}.X_k,
    E_test(tau)   = sum_c rho_c E_test^c(tau),
    MSE_c(tau)    = [E_test^c(tau) - e^{-2t} sigma_c^2 / Gamma_c^2] / Delta_t    (App. H, dynamics.md (146')).

Time is the flow time tau = k eta_e of ``dynamics.md`` §2 (k gradient steps at learning rate
eta = eta_e d / Delta_t; the paper's eta_e is 5e-5), stated as :data:`TIME_UNIT` in every output.
:meth:`GradientFlow.steps` converts to steps; ``eta_e=`` in :meth:`GradientFlow.errors` gives the
exact mean of discrete gradient descent instead of the flow (F_k with (1 - 2 eta_e lambda_k/p)^k).
The paper's own plotted unit is an open question (``dynamics.md`` §2, UNRESOLVED): the factor
between steps and tau is the one stated here, and nothing else is assumed.

Two constructions share everything after the eigendecomposition:

* :meth:`GradientFlow.from_matrices`: dense U (p x p), as for the empirical matrices of a finite
  random-features model; ``eigh`` of U, O(p^3).
* :meth:`GradientFlow.from_factor`: U = B B^T + s2 I_p with B of shape (p, r), r < p, and V, V_c
  and the factors of U_c^pop inside the column space of B, as for the GEP matrices (``gep.md``
  §2-4: B = [G / sqrt(n), sqrt(beta) W / sqrt(d)], V = bbar W / sqrt(d)). The eigenvectors of U
  outside range(B) have eigenvalue s2 and carry no projection of V, so they drop out of every
  error; only the r x r Gram matrix B^T B is diagonalized (about (p / r)^3 faster), and the
  eigenvectors in R^p are never formed.

Class population matrices are given either dense or as U_c = L_c L_c^T + shift_c I_p
(:class:`ClassPopulation`; in the factored form N_c = Y Y^T + shift I with Y = Q^T L_c, so no
p x p product is formed). Either way each class is reduced once to the r x r matrix
H_c = (X X^T) o N_c, and a batch of T times costs O(T r^2) per class (one matrix product).

The decomposition is cached on disk (:func:`cached_flow`), keyed by everything that determines it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import brentq, minimize_scalar

__all__ = ["TIME_UNIT", "ClassPopulation", "GradientFlow", "FlowAverage", "LearningCurves", "ClassTimes",
           "class_times", "class_times_on_grid", "time_gaps", "cached_flow", "flow_cache_dir"]

#: The time unit of every curve and class time of this module (``dynamics.md`` §2).
TIME_UNIT = "tau = k * eta_e (flow time; k gradient steps at eta = eta_e * d / Delta_t; dynamics.md §2)"


def _array(name: str, value, ndim: int) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim != ndim:
        raise ValueError(f"{name}: must be a {ndim}-d array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: must be finite (found NaN or inf)")
    return arr


@dataclass(frozen=True, eq=False)
class ClassPopulation:
    """Population matrices of one class: V_c^pop (p x d) and U_c^pop (p x p).

    U_c^pop is given dense (``U``) or as ``factor @ factor.T + shift * I_p`` (``factor`` of shape
    (p, k), e.g. the GEP form sqrt(a_c^2 sigma_c^2 + b_c^2) W / sqrt(d) with shift v_c^2 + s_c^2 of
    ``gep.md`` §4); exactly one of ``U`` and ``factor``.
    """

    V: np.ndarray
    U: np.ndarray | None = None
    factor: np.ndarray | None = None
    shift: float = 0.0

    def __post_init__(self):
        if (self.U is None) == (self.factor is None):
            raise ValueError("ClassPopulation: give exactly one of U (dense) and factor (U = L L^T + shift I)")
        p = _array("V_c", self.V, 2).shape[0]
        if self.U is not None and _array("U_c", self.U, 2).shape != (p, p):
            raise ValueError(f"U_c: must have shape ({p}, {p}) like V_c's rows, got {np.shape(self.U)}")
        if self.factor is not None and _array("factor", self.factor, 2).shape[0] != p:
            raise ValueError(f"factor: must have {p} rows like V_c, got shape {np.shape(self.factor)}")
        if not math.isfinite(self.shift):
            raise ValueError(f"shift: must be finite, got {self.shift}")


@dataclass(frozen=True, eq=False)
class LearningCurves:
    """Errors on a set of times (all normalized so that every error is 1 at tau = 0).

    Attributes
    ----------
    tau : (T,) flow times (:data:`TIME_UNIT`).
    train : (T,) training loss E_train.
    test_c : (C, T) class-conditional test errors E_test^c (paper eq. (14)).
    test : (T,) mixture test error sum_c rho_c E_test^c.
    mse_c : (C, T) class score MSE (App. H; ``dynamics.md`` (146')), or None without floors.
    eta_e : None for gradient flow, else the step of the discrete-GD mean.
    time_unit : str
    """

    tau: np.ndarray
    train: np.ndarray
    test_c: np.ndarray
    test: np.ndarray
    mse_c: np.ndarray | None
    eta_e: float | None
    time_unit: str = TIME_UNIT


class GradientFlow:
    """Gradient-flow learning curves from one eigendecomposition (see the module docstring).

    Build with :meth:`from_matrices` or :meth:`from_factor`; then :meth:`errors` at any times.

    Parameters (of both constructors)
    ---------------------------------
    classes : sequence of ClassPopulation
        One per class, in class order.
    weights : sequence of float
        rho_c of the mixture test error, positive, summing to 1.
    delta_t : float
        1 - e^{-2t}, > 0 (enters only the score MSE).
    floors : sequence of float, optional
        e^{-2t} sigma_c^2 / Gamma_c^2 per class, the score-MSE offsets of ``dynamics.md`` (146').
    """

    def __init__(self, lam, q, b, quad, *, p: int, d: int, weights, delta_t: float, floors=None,
                 info: dict | None = None):
        self.lam = np.asarray(lam, dtype=float)
        self.q = np.asarray(q, dtype=float)
        self.b = np.atleast_2d(np.asarray(b, dtype=float))
        self._quad = [np.asarray(h, dtype=float) for h in quad]   # H_c = (X X^T) o N_c per class
        self.p, self.d = int(p), int(d)
        self.weights = np.asarray(weights, dtype=float)
        self.delta_t = float(delta_t)
        self.floors = None if floors is None else np.asarray(floors, dtype=float)
        self.info = dict(info or {})
        if self.weights.shape != (self.n_classes,) or np.any(self.weights <= 0) \
                or abs(self.weights.sum() - 1.0) > 1e-9:
            raise ValueError(f"weights: must be {self.n_classes} positive numbers summing to 1, got {weights}")
        if not (self.delta_t > 0):
            raise ValueError(f"delta_t: must be > 0, got {delta_t}")
        if self.floors is not None and self.floors.shape != (self.n_classes,):
            raise ValueError(f"floors: must have one value per class ({self.n_classes}), got {floors}")
        if np.any(self.lam <= 0):
            raise ValueError(f"U: must be positive definite (smallest eigenvalue {self.lam.min():.3g}); "
                             "the exact-in-noise U always is, a Monte Carlo U may not be")

    # ------------------------------------------------------------------ construction

    @property
    def n_classes(self) -> int:
        return self.b.shape[0]

    @classmethod
    def from_matrices(cls, U, V, classes: Sequence[ClassPopulation], *, weights, delta_t: float,
                      floors=None) -> "GradientFlow":
        """From a dense U (p x p, symmetric positive definite) and V (p x d): full ``eigh`` of U.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> W = rng.standard_normal((6, 3)); U = W @ W.T / 3 + 0.1 * np.eye(6); V = 0.2 * W / 3**0.5
        >>> f = GradientFlow.from_matrices(U, V, [ClassPopulation(V, U=U)], weights=[1.0], delta_t=0.02)
        >>> float(f.errors([0.0]).train[0]), bool(np.allclose(f.errors([0.0]).test_c, 1.0))
        (1.0, True)
        """
        U, V = _array("U", U, 2), _array("V", V, 2)
        p, d = V.shape
        if U.shape != (p, p):
            raise ValueError(f"U: must have shape ({p}, {p}) to match V {V.shape}, got {U.shape}")
        lam, Q = np.linalg.eigh(0.5 * (U + U.T))
        X = Q.T @ V
        return cls._assemble(lam, X, lambda M: Q.T @ M, classes, p, d, weights, delta_t, floors,
                             {"construction": "dense eigh", "rank": p})

    @classmethod
    def from_factor(cls, B, s2: float, V, classes: Sequence[ClassPopulation], *, weights,
                    delta_t: float, floors=None) -> "GradientFlow":
        """From U = B B^T + s2 I_p (B of shape (p, r)) with V and every class's V_c and factor in range(B).

        Diagonalizes the r x r Gram matrix B^T B = P diag(sigma^2) P^T when r < p; the eigenvectors
        of U in range(B) are B P_k / sigma_k with eigenvalues sigma_k^2 + s2, and a projection
        Q^T M is computed as P^T (B^T M) / sigma without forming them. Dense class matrices are
        refused here (they need the full basis): use factors.
        """
        B, V = _array("B", B, 2), _array("V", V, 2)
        p, r = B.shape
        if V.shape[0] != p:
            raise ValueError(f"V: must have {p} rows like B, got shape {V.shape}")
        if not (s2 > 0):
            raise ValueError(f"s2: must be > 0 (U positive definite), got {s2}")
        if any(c.U is not None for c in classes):
            raise ValueError("classes: from_factor needs factored class matrices (ClassPopulation.factor)")
        if r >= p:
            U = B @ B.T + s2 * np.eye(p)
            lam, Q = np.linalg.eigh(0.5 * (U + U.T))
            return cls._assemble(lam, Q.T @ V, lambda M: Q.T @ M, classes, p, V.shape[1], weights,
                                 delta_t, floors, {"construction": "dense eigh (r >= p)", "rank": p})
        sig2, P = np.linalg.eigh(B.T @ B)
        keep = sig2 > 1e-13 * max(sig2.max(), 1e-300)
        sig2, P = sig2[keep], P[:, keep]
        sig = np.sqrt(sig2)

        def project(M):
            return (P.T @ (B.T @ M)) / sig[:, None]

        X = project(V)
        # V must lie in range(B): its part outside would sit on eigenvalue s2 and was dropped.
        lost = max(0.0, float(np.sum(V * V) - np.sum(X * X)))
        if lost > 1e-10 * max(float(np.sum(V * V)), 1e-300):
            raise ValueError(f"V: has a part outside range(B) (relative {lost / np.sum(V * V):.2e}); "
                             "from_factor needs V in the column space of B")
        return cls._assemble(sig2 + s2, X, project, classes, p, V.shape[1], weights, delta_t, floors,
                             {"construction": "Gram eigh of B^T B", "rank": int(sig2.size)})

    @classmethod
    def _assemble(cls, lam, X, project: Callable, classes, p, d, weights, delta_t, floors, info):
        if len(classes) == 0:
            raise ValueError("classes: at least one class is needed")
        q = np.sum(X * X, axis=1)
        b, quad = [], []
        for c, pop in enumerate(classes):
            if pop.V.shape != (p, d):
                raise ValueError(f"classes[{c}].V: must have shape ({p}, {d}), got {pop.V.shape}")
            Xc = project(pop.V)
            b.append(np.sum(Xc * X, axis=1))
            if pop.U is not None:
                N = project(project(pop.U).T)            # Q^T U_c Q (U_c symmetric)
                quad.append((X @ X.T) * (0.5 * (N + N.T)))
            else:
                # N_c = Y Y^T + shift I with Y = Q^T L_c: H_c = (X X^T) o (Y Y^T) + shift diag(q)
                Y = project(pop.factor)
                H = (X @ X.T) * (Y @ Y.T)
                H[np.diag_indices_from(H)] += pop.shift * q
                quad.append(H)
        return cls(lam, q, np.array(b), quad, p=p, d=d, weights=weights, delta_t=delta_t,
                   floors=floors, info=info)

    # ------------------------------------------------------------------ evaluation

    def _F(self, tau: np.ndarray, eta_e: float | None) -> np.ndarray:
        """F_k(tau) of ``dynamics.md`` §2, shape (T, r); cancellation-free at small tau."""
        x = 2.0 * np.outer(tau, self.lam) / self.p
        if eta_e is None:
            return -np.expm1(-x) / self.lam
        step = 2.0 * eta_e * self.lam / self.p
        if np.any(step >= 2.0):
            raise ValueError(f"eta_e = {eta_e}: discrete GD diverges (needs eta_e < p / lambda_max = "
                             f"{self.p / self.lam.max():.4g})")
        k = tau / eta_e
        if np.all(step < 1.0):
            return -np.expm1(np.outer(k, np.log1p(-step))) / self.lam
        # 1 <= step < 2: the factor 1 - step is negative (the iterate oscillates but converges);
        # (1 - step)^k is defined for whole numbers of steps only.
        if np.any(np.abs(k - np.round(k)) > 1e-9 * np.maximum(k, 1.0)):
            raise ValueError(f"tau: with eta_e = {eta_e} some modes oscillate (2 eta_e lambda / p >= 1); "
                             "tau must then be a whole number of steps times eta_e")
        return (1.0 - np.power(1.0 - step[None, :], np.round(k)[:, None])) / self.lam

    def _quadratic(self, F: np.ndarray) -> np.ndarray:
        """(C, T): F^T H_c F for each class, H_c = (X X^T) o N_c (``dynamics.md`` §11)."""
        return np.array([np.sum((F @ H) * F, axis=1) for H in self._quad])

    def errors(self, tau, *, eta_e: float | None = None) -> LearningCurves:
        """Train, class test, mixture test errors and class score MSE at flow times ``tau``.

        ``tau`` may contain ``np.inf`` (the least-squares readout A_LS = -sqrt(p/Delta_t) V^T U^{-1}).
        With ``eta_e`` the curves are the exact mean of discrete gradient descent with fresh noise
        after tau / eta_e steps (``dynamics.md`` §2) instead of the flow.
        """
        tau = np.atleast_1d(np.asarray(tau, dtype=float))
        if tau.ndim != 1 or np.any(np.isnan(tau)) or np.any(tau < 0):
            raise ValueError("tau: must be a 1-d array of times >= 0 (inf allowed)")
        if eta_e is not None and not (eta_e > 0 and math.isfinite(eta_e)):
            raise ValueError(f"eta_e: must be a finite number > 0, got {eta_e}")
        F = np.empty((tau.size, self.lam.size))
        fin = np.isfinite(tau)
        F[fin] = self._F(tau[fin], eta_e)
        F[~fin] = 1.0 / self.lam
        d = self.d
        train = 1.0 - (2.0 / d) * F @ self.q + (1.0 / d) * (F * F * self.lam) @ self.q
        test_c = 1.0 - (2.0 / d) * (self.b @ F.T) + self._quadratic(F) / d
        test = self.weights @ test_c
        mse = None if self.floors is None else (test_c - self.floors[:, None]) / self.delta_t
        return LearningCurves(tau, train, test_c, test, mse, eta_e)

    def steps(self, tau, eta_e: float = 5e-5) -> np.ndarray:
        """Gradient steps k = tau / eta_e at the effective step eta_e = eta Delta_t / d (paper: 5e-5)."""
        return np.asarray(tau, dtype=float) / eta_e

    def time_range(self, decades_out: float = 2.0) -> tuple[float, float]:
        """A tau interval covering every relaxation time p / (2 lambda_k), widened by ``decades_out``."""
        lo = self.p / (2.0 * self.lam.max()) * 10.0 ** -decades_out
        hi = self.p / (2.0 * self.lam.min()) * 10.0 ** decades_out
        return lo, hi

    # ------------------------------------------------------------------ cache

    def _arrays(self) -> dict:
        out = {"lam": self.lam, "q": self.q, "b": self.b, "weights": self.weights,
               "meta": np.array([self.p, self.d, self.delta_t]),
               "floors": self.floors if self.floors is not None else np.array([])}
        for c, H in enumerate(self._quad):
            out[f"H{c}"] = H
        return out

    def save(self, path) -> Path:
        """Write the decomposition to ``path`` (.npz) atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
        os.close(fd)
        try:
            np.savez(tmp, info=np.array(json.dumps(self.info)), **self._arrays())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path) -> "GradientFlow":
        """Read a decomposition written by :meth:`save`."""
        with np.load(path) as z:
            p, d, delta_t = z["meta"]
            floors = z["floors"] if z["floors"].size else None
            quad = []
            while f"H{len(quad)}" in z:
                quad.append(z[f"H{len(quad)}"])
            info = json.loads(str(z["info"]))
            info["cache"] = str(path)
            return cls(z["lam"], z["q"], z["b"], quad, p=int(p), d=int(d), weights=z["weights"],
                       delta_t=float(delta_t), floors=floors, info=info)


class FlowAverage:
    """The seed average of several :class:`GradientFlow` of the same model (same classes, weights).

    :meth:`errors` averages the curves; :func:`class_times` accepts it like a single flow, so
    times are taken on the averaged curve (as the paper does, ``dynamics.md`` §5). ``p`` must
    agree (the curves are compared at equal flow time).
    """

    def __init__(self, flows: Sequence[GradientFlow]):
        flows = list(flows)
        if not flows:
            raise ValueError("flows: at least one GradientFlow is needed")
        if len({(f.p, f.d, f.n_classes) for f in flows}) != 1:
            raise ValueError("flows: must share p, d and the number of classes")
        self.flows = flows
        self.p, self.d, self.n_classes = flows[0].p, flows[0].d, flows[0].n_classes

    def errors(self, tau, *, eta_e: float | None = None) -> LearningCurves:
        """Seed means of :meth:`GradientFlow.errors` (``mse_c`` None unless every flow has floors)."""
        curves = [f.errors(tau, eta_e=eta_e) for f in self.flows]
        mean = lambda name: np.mean([getattr(c, name) for c in curves], axis=0)
        mse = None if any(c.mse_c is None for c in curves) else mean("mse_c")
        return LearningCurves(curves[0].tau, mean("train"), mean("test_c"), mean("test"), mse, eta_e)

    def spread(self, tau) -> dict:
        """Standard deviations over seeds (ddof = 1; zeros for a single flow) of train and test_c."""
        curves = [f.errors(tau) for f in self.flows]
        ddof = 1 if len(curves) > 1 else 0
        return {"train": np.std([c.train for c in curves], axis=0, ddof=ddof),
                "test_c": np.std([c.test_c for c in curves], axis=0, ddof=ddof)}

    def time_range(self, decades_out: float = 2.0) -> tuple[float, float]:
        ranges = [f.time_range(decades_out) for f in self.flows]
        return min(r[0] for r in ranges), max(r[1] for r in ranges)


def flow_cache_dir() -> Path:
    """Where decompositions are cached: ``flow/`` beside the emitted kernels of
    :func:`diffmix.derivations.cache_dir` (``$DIFFMIX_CACHE_DIR/flow``, else XDG / ~/.cache/diffmix/flow)."""
    from diffmix.derivations._kernels import cache_dir
    return cache_dir().parent / "flow"


def cached_flow(key: dict, build: Callable[[], GradientFlow], *, cache: bool = True) -> GradientFlow:
    """``build()`` once per ``key`` (a JSON-able dict of everything that determines the result).

    The file is ``flow_cache_dir() / <sha256 of the key>.npz`` with the key beside it as JSON;
    a missing or unreadable file is rebuilt and rewritten atomically.
    """
    if not cache:
        return build()
    text = json.dumps(key, sort_keys=True, default=str)
    name = hashlib.sha256(text.encode()).hexdigest()[:32]
    path = flow_cache_dir() / f"{name}.npz"
    if path.exists():
        try:
            return GradientFlow.load(path)
        except Exception:           # corrupt or from an older layout: rebuild
            pass
    flow = build()
    flow.info["key"] = key
    flow.save(path)
    from diffmix.derivations._codegen import write_atomic
    write_atomic(path.with_suffix(".json"), text + "\n")
    return flow


# ---------------------------------------------------------------------- class times


@dataclass(frozen=True)
class ClassTimes:
    """Generalization and memorization times of one class (paper eq. (15); ``dynamics.md`` §5).

    Attributes
    ----------
    tau_gen : argmin of E_test^c over tau.
    min_error : E_test^c(tau_gen).
    flat_interval : (lo, hi) where E_test^c <= min_error + flat_tol (the minimum is flat).
    tau_mem : first tau > tau_gen with E_test^c(tau) >= threshold, or None ("not reached": the
        curve stays below the threshold up to tau = infinity, E_inf < threshold).
    E_inf : E_test^c at tau = infinity (least-squares readout).
    threshold, flat_tol : the options used.
    time_unit : str
    """

    tau_gen: float
    min_error: float
    flat_interval: tuple[float, float]
    tau_mem: float | None
    E_inf: float
    threshold: float
    flat_tol: float
    time_unit: str = TIME_UNIT

    def as_dict(self) -> dict:
        return {"tau_gen": self.tau_gen, "min_error": self.min_error,
                "flat_interval": list(self.flat_interval), "tau_mem": self.tau_mem,
                "E_inf": self.E_inf, "threshold": self.threshold, "flat_tol": self.flat_tol}


def class_times(flow: GradientFlow | FlowAverage, *, threshold: float = 1.0, flat_tol: float = 1e-3,
                points: int = 2000, tau_range: tuple[float, float] | None = None) -> list[ClassTimes]:
    """Class times of every class (paper eq. (15)), refined on the continuous curve.

    A ``points``-point log grid over ``tau_range`` (default :meth:`GradientFlow.time_range`)
    brackets the global minimum of E_test^c, refined by Brent's method in log tau; tau_mem is the
    first upward crossing of ``threshold`` after tau_gen on the grid, refined by ``brentq``; the
    flat interval's ends likewise. ``threshold`` is 1 in eq. (15) (the A = 0 value); the paper also
    uses stricter ones (e.g. 0.99).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> W = rng.standard_normal((40, 4)); G = rng.standard_normal((40, 8))
    >>> U = G @ G.T / 8 + W @ W.T / 4 * 0.01 + 0.01 * np.eye(40); V = 0.1 * W / 2
    >>> pop = ClassPopulation(V, factor=0.3 * W / 2, shift=0.05)
    >>> t = class_times(GradientFlow.from_matrices(U, V, [pop], weights=[1.0], delta_t=0.02))[0]
    >>> t.min_error < 1.0, t.tau_gen > 0
    (True, True)
    """
    if not (threshold > 0 and math.isfinite(threshold)):
        raise ValueError(f"threshold: must be a finite number > 0, got {threshold}")
    if not (flat_tol > 0):
        raise ValueError(f"flat_tol: must be > 0, got {flat_tol}")
    if int(points) < 50:
        raise ValueError(f"points: must be >= 50, got {points}")
    lo, hi = tau_range if tau_range is not None else flow.time_range()
    if not (0 < lo < hi):
        raise ValueError(f"tau_range: must satisfy 0 < lo < hi, got {(lo, hi)}")
    grid = np.geomspace(lo, hi, int(points))
    curves = flow.errors(grid)
    e_inf = flow.errors([np.inf]).test_c[:, 0]
    out = []
    for c in range(flow.n_classes):
        def E(tau, c=c):
            return float(flow.errors([tau]).test_c[c, 0])

        e = curves.test_c[c]
        i = int(np.argmin(e))
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        res = minimize_scalar(lambda s: E(math.exp(s)), bounds=(math.log(a), math.log(b)),
                              method="bounded", options={"xatol": 1e-10})
        tau_gen, e_min = (math.exp(res.x), float(res.fun)) if res.fun <= e[i] else (grid[i], float(e[i]))

        level = e_min + flat_tol
        def crossing(j0, step, target):
            """First grid index from j0 (moving by step) where E - target changes sign; refined."""
            j = j0
            while 0 <= j + step < grid.size:
                if (e[j] - target) * (e[j + step] - target) <= 0 and e[j + step] != e[j]:
                    x0, x1 = sorted((grid[j], grid[j + step]))
                    return brentq(lambda tt: E(tt) - target, x0, x1, xtol=1e-12 * x1, rtol=1e-12)
                j += step
            return None

        flat_lo = crossing(i, -1, level)
        flat_hi = crossing(i, +1, level)
        flat = (grid[0] if flat_lo is None else flat_lo, grid[-1] if flat_hi is None else flat_hi)
        tau_mem = crossing(i, +1, threshold) if e_min < threshold else None
        if tau_mem is None and e_inf[c] >= threshold and e_min < threshold:
            # the crossing lies beyond the grid: search between its end and where E_inf is reached
            t_hi = grid[-1]
            while E(t_hi) < threshold and t_hi < grid[-1] * 1e12:
                t_hi *= 10.0
            if E(t_hi) >= threshold:
                tau_mem = brentq(lambda tt: E(tt) - threshold, grid[-1], t_hi, rtol=1e-12)
        out.append(ClassTimes(float(tau_gen), e_min, (float(flat[0]), float(flat[1])),
                              None if tau_mem is None else float(tau_mem), float(e_inf[c]),
                              float(threshold), float(flat_tol)))
    return out


def class_times_on_grid(tau, test_c, *, threshold: float = 1.0) -> list[dict]:
    """Class times from sampled curves (e.g. gradient-descent logs), ``dynamics.md`` §5's algorithm.

    tau_gen: the grid argmin, refined by a parabola through it and its neighbours in log tau (kept
    inside the neighbours); tau_mem: the first upward crossing of ``threshold`` after the argmin,
    by linear interpolation in log tau, or None when the sampled curve never crosses. Times must be
    positive and increasing (drop tau = 0 first).
    """
    tau = np.asarray(tau, dtype=float)
    E = np.atleast_2d(np.asarray(test_c, dtype=float))
    if tau.ndim != 1 or tau.size < 3 or np.any(tau <= 0) or np.any(np.diff(tau) <= 0):
        raise ValueError("tau: must be at least 3 positive increasing times")
    if E.shape[1] != tau.size:
        raise ValueError(f"test_c: must have {tau.size} columns like tau, got shape {E.shape}")
    x = np.log(tau)
    out = []
    for e in E:
        i = int(np.argmin(e))
        t_gen, e_min = tau[i], float(e[i])
        if 0 < i < tau.size - 1:
            a, b, c = np.polyfit(x[i - 1:i + 2], e[i - 1:i + 2], 2)
            if a > 0:
                xs = min(max(-b / (2 * a), x[i - 1]), x[i + 1])
                t_gen, e_min = math.exp(xs), float(min(e_min, a * xs * xs + b * xs + c))
        t_mem = None
        for j in range(i, tau.size - 1):
            if e[j] < threshold <= e[j + 1]:
                f = (threshold - e[j]) / (e[j + 1] - e[j])
                t_mem = math.exp(x[j] + f * (x[j + 1] - x[j]))
                break
        out.append({"tau_gen": float(t_gen), "min_error": e_min, "tau_mem": t_mem})
    return out


def time_gaps(times: Sequence[ClassTimes]) -> dict:
    """Generalization and memorization gaps between classes: entry (i, j) is time_j - time_i.

    A memorization gap involving a class that is never memorized is None.
    """
    C = len(times)
    gen = [[times[j].tau_gen - times[i].tau_gen for j in range(C)] for i in range(C)]
    mem = [[None if times[i].tau_mem is None or times[j].tau_mem is None
            else times[j].tau_mem - times[i].tau_mem for j in range(C)] for i in range(C)]
    return {"gen": gen, "mem": mem, "time_unit": TIME_UNIT}
