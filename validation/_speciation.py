"""Finite-size check of class speciation and paper Fig. 1 (speciation.md §1.2, §4; paper Sec. 3.1).

For a model with extensive centroids at dimension d, one *instance* draws (numpy ``default_rng(1000 d + s)``,
in this order) W (p x d), the data latents Z (n x d) and the GEP noise Eta (p x n), with p = round(psi_p d),
n = round(psi_n d), class counts n_c = round(rho_c n) (remainder to the largest class), samples grouped by
class and centroids mu_c along the first C coordinate axes (Cholesky factor of the Gram matrix, as in
``diffmix.gpu.centroids``). The same draw is reused at every t of a scan.

The matrix is the per-neuron U_gep of speciation.md §1.2 (paper eq. (50)), built here with numpy:

    U_gep = (1/n) sum_nu F_nu F_nu^T + sum_c rho_c diag(b_c) K diag(b_c) + diag(sum_c rho_c s2_c),
    F_nu  = mu0_c + sigma_c a_c o (W z_nu / sqrt d) + sqrt(v2_c) o eta_nu          (c = class of nu),

rho_c = n_c / n, K = W W^T / d, with the per-neuron coefficients of §1.1 (m_{c,i} = e^{-t} (W mu_c)_i / sqrt d,
r_i = ||w_i|| / sqrt d, G_{c,i} = r_i Gamma_{c,t}; 61-node Gauss-Hermite, 41 x 41 for Ef2). With
``matrix="true"`` the exact-in-noise feature covariance :func:`diffmix.gpu.true_feature_covariance`
(same model, its own torch draw) is used instead, for cross-checks at modest sizes.

Measured per instance: the top C+1 eigenvalues and R2_c = sum_{i<=C} (mutilde_c . psi_i)^2 / ||mutilde_c||^2
(psi_i the top-C eigenvectors, mutilde_c = W mu_c / sqrt d); RMS_c = sqrt(mean over instances of R2_c);
the transition t_half^c where sqrt(R2_c) first falls below 1/sqrt 2 (linear interpolation on the grid),
mean and s.e.m. over instances, against the prediction t_s^c - (1/4) log 2 (speciation.md §4-5).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.special
from matplotlib.figure import Figure

from diffmix._provenance import provenance, write_json_atomic
from diffmix.theory import Model
from diffmix.theory._speciation import model_at, overlap_curve, speciation_times

__all__ = ["GEP_NODES", "OverlapScan", "SpeciationInstance", "TransitionTable", "draw_instance",
           "extensive_gep_matrix", "fig1_panels", "figure_fig1", "scan_overlaps", "transition_table"]

#: Gauss-Hermite nodes for the 1-D averages and for each axis of Ef2 (speciation.md §0).
GEP_NODES = (61, 41)
_HALF = 1.0 / math.sqrt(2.0)


def _sigmoid_centered(x):
    return 0.5 * np.tanh(0.5 * x)


_ACTIVATIONS = {"tanh": np.tanh, "erf": scipy.special.erf, "sigmoid-centered": _sigmoid_centered,
                "linear": lambda x: x}


@functools.lru_cache(maxsize=1)
def _openblas_controls() -> tuple:
    """(get, set) pairs of the OpenBLAS libraries loaded by numpy and scipy (empty if none is found)."""
    controls = []
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and line.split()[-1].startswith("/")}
    except OSError:
        return ()
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", ""):
            get = getattr(lib, f"scipy_openblas_get_num_threads{suffix}", None)
            put = getattr(lib, f"scipy_openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype = ctypes.c_int
                put.argtypes = [ctypes.c_int]
                controls.append((get, put))
                break
    return tuple(controls)


@contextlib.contextmanager
def _one_blas_thread():
    """Run numpy/scipy BLAS and LAPACK on one thread (on shared cores a threaded eigh of p = 800 took
    5 s instead of 0.05 s); restores the previous thread counts afterwards."""
    scipy.linalg.blas  # noqa: B018  (make sure scipy's OpenBLAS is loaded before looking for it)
    controls = _openblas_controls()
    saved = [get() for get, _ in controls]
    import torch
    torch_threads = torch.get_num_threads()
    for _, put in controls:
        put(1)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        for (_, put), n in zip(controls, saved):
            put(n)
        torch.set_num_threads(torch_threads)


def _gh(n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / math.sqrt(2.0 * math.pi)


# ---------------------------------------------------------------------- one instance


@dataclass(frozen=True, eq=False)
class SpeciationInstance:
    """One finite draw of the system (module docstring).

    Attributes
    ----------
    model : Model
        The model at this d (weights and norms after ``model_at``).
    d, p, n, seed : int
    W : ndarray, shape (p, d)
    Z : ndarray, shape (n, d)
        Data latents, x0 = mu_c + sigma_c z; rows grouped by class.
    Eta : ndarray, shape (p, n)
    centroids : ndarray, shape (C, d)
    counts : tuple of int
    proj : ndarray, shape (p, C)
        mutilde_c = W mu_c / sqrt(d) as columns.
    """

    model: Model
    d: int
    p: int
    n: int
    seed: int
    W: np.ndarray
    Z: np.ndarray
    Eta: np.ndarray
    centroids: np.ndarray
    counts: tuple[int, ...]
    proj: np.ndarray


def _counts(model: Model, n: int) -> tuple[int, ...]:
    """n_c by the rule of every note (:func:`diffmix.gpu.class_counts`)."""
    from diffmix.gpu import class_counts
    return class_counts(model, n)


def _centroids(model: Model, d: int) -> np.ndarray:
    """mu_c along the first C axes with the model's cosines (:func:`diffmix.gpu.centroids`), numpy."""
    from diffmix.gpu import centroids
    return centroids(model, d).numpy()


def draw_instance(model: Model, d: int, seed: int) -> SpeciationInstance:
    """Draw W, Z, Eta for ``model`` (already at dimension d, see ``model_at``) from ``default_rng(seed)``.

    Examples
    --------
    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.7, 0.3], [1.0, 1.0], [1.0, 1.0])
    >>> inst = draw_instance(m, 10, 0)
    >>> inst.W.shape, inst.Z.shape, inst.Eta.shape, inst.counts
    ((40, 10), (20, 10), (40, 20), (14, 6))
    """
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < model.n_classes:
        raise ValueError(f"d = {d!r}: must be an integer >= C = {model.n_classes}")
    d = int(d)
    p, n = round(model.psi_p * d), round(model.psi_n * d)
    if p < model.n_classes + 1:
        raise ValueError(f"d = {d}: p = {p} features; increase d")
    counts = _counts(model, n)
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, d))
    Z = rng.standard_normal((n, d))
    Eta = rng.standard_normal((p, n))
    mu = _centroids(model, d)
    return SpeciationInstance(model, d, p, n, int(seed), W, Z, Eta, mu, counts, W @ mu.T / math.sqrt(d))


def _neuron_coefficients(act, m: np.ndarray, r: np.ndarray, t: float, var: float):
    """Per-neuron mu0, mu1, kappa2, Ef2 of speciation.md §1.1 for one class (arrays of shape (p,))."""
    z, wz = _gh(GEP_NODES[0])
    e = math.exp(-t)
    delta = -math.expm1(-2.0 * t)
    G = r * math.sqrt(e * e * var + delta)
    h = m[:, None] + G[:, None] * z
    s = act(h)
    mu0 = s @ wz
    kappa2 = s**2 @ wz
    mu1 = (s @ (wz * z)) / G                               # Stein: E[sigma'(h)] = E[sigma(h) z] / G
    g, wg = _gh(GEP_NODES[1])
    x = m[:, None] + (e * math.sqrt(var) * r)[:, None] * g            # (p, 41)
    f = act(x[:, :, None] + (math.sqrt(delta) * r)[:, None, None] * g) @ wg   # f_i(x) = E_u sigma(x + sqrt(D) r u)
    ef2 = f**2 @ wg
    return mu0, mu1, kappa2, ef2


def extensive_gep_matrix(inst: SpeciationInstance, t: float) -> np.ndarray:
    """U_gep of speciation.md §1.2 (paper eq. (50)) for one instance at diffusion time t, shape (p, p).

    Examples
    --------
    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.7, 0.3], [1.0, 1.0], [1.0, 1.0])
    >>> U = extensive_gep_matrix(draw_instance(m, 10, 0), 1.0)
    >>> U.shape, bool(np.allclose(U, U.T))
    ((40, 40), True)
    """
    model = inst.model
    act = _ACTIVATIONS.get(model.activation.strip())
    if act is None:
        raise ValueError(f"activation {model.activation!r}: the extensive U_gep supports "
                         f"{', '.join(_ACTIVATIONS)}")
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"t = {t!r}: must be a finite number > 0")
    d, n = inst.d, inst.n
    e, delta = math.exp(-t), -math.expm1(-2.0 * t)
    r = np.linalg.norm(inst.W, axis=1) / math.sqrt(d)
    wz = inst.W @ inst.Z.T / math.sqrt(d)                   # (p, n)
    F = np.empty((inst.p, n))
    diag_b = np.zeros((inst.p, inst.p))
    s2 = np.zeros(inst.p)
    start = 0
    for c, n_c in enumerate(inst.counts):
        var = model.variances[c]
        mu0, mu1, kappa2, ef2 = _neuron_coefficients(act, e * inst.proj[:, c], r, t, var)
        a, b = e * mu1, math.sqrt(delta) * mu1
        v2 = np.clip(ef2 - mu0**2 - r**2 * var * a**2, 0.0, None)
        rho_c = n_c / n
        s2 += rho_c * (kappa2 - ef2 - r**2 * b**2)
        sl = slice(start, start + n_c)
        F[:, sl] = mu0[:, None] + (math.sqrt(var) * a)[:, None] * wz[:, sl] + np.sqrt(v2)[:, None] * inst.Eta[:, sl]
        diag_b += rho_c * np.outer(b, b)
        start += n_c
    U = F @ F.T / n
    U += diag_b * (inst.W @ inst.W.T / d)
    U[np.diag_indices_from(U)] += s2
    return 0.5 * (U + U.T)


def _true_matrix(model: Model, d: int, seed: int, t: float, order: int):
    from diffmix.gpu import centroids, true_feature_covariance
    cov = true_feature_covariance(model.replace(t=t), d, seed=seed, order=order)
    mu = centroids(model, d).numpy()
    W = cov.W.numpy()
    return cov.U.numpy(), W @ mu.T / math.sqrt(d)


def _top(U: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    p = U.shape[0]
    lam, vec = scipy.linalg.eigh(U, subset_by_index=(p - k, p - 1), driver="evr")
    return lam[::-1], vec[:, ::-1]


# ---------------------------------------------------------------------- scans


@dataclass(frozen=True)
class OverlapScan:
    """Overlaps and outlier eigenvalues over a t-grid for several instances at one d.

    Attributes
    ----------
    model : Model
        The model at this d.
    d, p, n : int
    seeds : tuple of int
        ``default_rng`` seeds of the instances (1000 d + s).
    t : ndarray, shape (T,)
    r2 : ndarray, shape (S, T, C)
        R2_c per instance.
    top : ndarray, shape (S, T, C + 1)
        Top C+1 eigenvalues, decreasing.
    matrix : str
        "gep" or "true".
    """

    model: Model
    d: int
    p: int
    n: int
    seeds: tuple[int, ...]
    t: np.ndarray
    r2: np.ndarray
    top: np.ndarray
    matrix: str

    @property
    def rms(self) -> np.ndarray:
        """RMS_c = sqrt(mean over instances of R2_c), shape (T, C)."""
        return np.sqrt(self.r2.mean(axis=0))

    def crossings(self) -> np.ndarray:
        """t_half per instance and class, shape (S, C): first fall of sqrt(R2_c) below 1/sqrt 2 (NaN: none)."""
        s, _, c = self.r2.shape
        out = np.full((s, c), np.nan)
        root = np.sqrt(self.r2)
        for i in range(s):
            for k in range(c):
                y = root[i, :, k]
                below = np.flatnonzero(y < _HALF)
                if below.size == 0 or below[0] == 0:
                    continue
                j = below[0]
                out[i, k] = self.t[j - 1] + (y[j - 1] - _HALF) * (self.t[j] - self.t[j - 1]) / (y[j - 1] - y[j])
        return out


def scan_overlaps(model: Model, d: int, t_over_log_d, seeds, *, weight_exponents=None, norm_exponents=None,
                  matrix: str = "gep", order: int = 5) -> OverlapScan:
    """R2_c and the top eigenvalues on a grid of t / log d for instances 1000 d + s, s in ``seeds``.

    Parameters
    ----------
    model : Model
        Weights and norms at d come from :func:`diffmix.theory._speciation.model_at`.
    d : int
    t_over_log_d : array_like, shape (T,)
        Increasing grid of t / log d (> 0).
    seeds : sequence of int
    weight_exponents, norm_exponents : sequence of float, optional
        As in :func:`diffmix.theory._speciation.speciation_times`.
    matrix : {"gep", "true"}
        U_gep of §1.2 (numpy) or the exact-in-noise true U (``diffmix.gpu``, its own torch draw of W, X0).
    order : int
        Mehler order of the true U.

    Examples
    --------
    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.7, 0.3], [1.0, 1.0], [1.0, 1.0])
    >>> s = scan_overlaps(m, 12, [0.2, 0.8], [0])
    >>> s.r2.shape, s.top.shape
    ((1, 2, 2), (1, 2, 3))
    """
    if matrix not in ("gep", "true"):
        raise ValueError(f"matrix = {matrix!r}: must be 'gep' or 'true'")
    x = np.asarray(t_over_log_d, dtype=float).ravel()
    if x.size == 0 or not (np.all(np.isfinite(x)) and np.all(x > 0) and np.all(np.diff(x) > 0)):
        raise ValueError("t_over_log_d: must be a non-empty increasing grid of numbers > 0")
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds: need at least one instance")
    m_d = model_at(model, d, weight_exponents=weight_exponents, norm_exponents=norm_exponents)
    t = x * math.log(d)
    C = m_d.n_classes
    r2 = np.empty((len(seeds), t.size, C))
    top = np.empty((len(seeds), t.size, C + 1))
    with _one_blas_thread():
        _scan(m_d, d, t, seeds, matrix, order, r2, top)
    p, n = round(m_d.psi_p * d), round(m_d.psi_n * d)
    return OverlapScan(m_d, int(d), p, n, tuple(1000 * int(d) + s for s in seeds), t, r2, top, matrix)


def _scan(m_d, d, t, seeds, matrix, order, r2, top) -> None:
    C = m_d.n_classes
    for i, s in enumerate(seeds):
        seed = 1000 * int(d) + s
        inst = draw_instance(m_d, d, seed) if matrix == "gep" else None
        for j, tj in enumerate(t):
            if matrix == "gep":
                U, proj = extensive_gep_matrix(inst, float(tj)), inst.proj
            else:
                U, proj = _true_matrix(m_d, d, seed, float(tj), order)
            lam, vec = _top(U, C + 1)
            top[i, j] = lam
            ov = vec[:, :C].T @ proj                      # (C eigvecs, C classes)
            r2[i, j] = (ov**2).sum(axis=0) / (proj**2).sum(axis=0)


@dataclass(frozen=True)
class TransitionTable:
    """Predicted against measured transitions at one d (speciation.md §4.2 format).

    Attributes
    ----------
    d, p, n, instances : int
    weights : tuple of float
    pred_t_s, pred_t_half : tuple of float or None
        t_s^c and t_s^c - (1/4) log 2 (diffusion time units).
    meas_t_half, sem_t_half : tuple of float
        Mean and s.e.m. over instances of the measured crossing (NaN if an instance has none).
    n_crossed : tuple of int
        Instances with a crossing, per class.
    """

    d: int
    p: int
    n: int
    instances: int
    weights: tuple[float, ...]
    pred_t_s: tuple
    pred_t_half: tuple
    meas_t_half: tuple
    sem_t_half: tuple
    n_crossed: tuple

    def as_dict(self) -> dict:
        def clean(v):
            return None if v is None or (isinstance(v, float) and math.isnan(v)) else v
        return {k: ([clean(x) for x in v] if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    def rows(self) -> list[str]:
        """One text row per class: d, p, n, rho, pred t_s/log d, pred t_half/log d, meas (sem), (meas-pred) in t."""
        L = math.log(self.d)
        out = []
        for c in range(len(self.weights)):
            ts, th, mt, se = self.pred_t_s[c], self.pred_t_half[c], self.meas_t_half[c], self.sem_t_half[c]
            out.append(f"d={self.d} p={self.p} n={self.n} inst={self.instances} class {c + 1}: rho={self.weights[c]:.3f} "
                       f"pred t_s/logd={ts / L if ts else float('nan'):.3f} "
                       f"t_half/logd={th / L if th else float('nan'):.3f} "
                       f"meas={mt / L:.3f} ({se / L:.3f}) meas-pred={mt - th if th else float('nan'):+.3f}")
        return out


def transition_table(scan: OverlapScan) -> TransitionTable:
    """Crossings of ``scan`` against the predictions of :func:`speciation_times` (speciation.md §4.2).

    Examples
    --------
    >>> m = Model("tanh", 1.0, 4.0, 2.0, [0.7, 0.3], [1.0, 1.0], [1.0, 1.0])
    >>> tab = transition_table(scan_overlaps(m, 12, [0.05, 0.9], [0]))
    >>> tab.instances, len(tab.pred_t_s)
    (1, 2)
    """
    res = speciation_times(scan.model, scan.d)
    pred = tuple(c["t_s"] for c in res.classes)
    half = tuple(None if x is None else x - math.log(2.0) / 4.0 for x in pred)
    cross = scan.crossings()
    ok = np.isfinite(cross)
    mean = tuple(float(np.nanmean(cross[:, c])) if ok[:, c].any() else float("nan") for c in range(cross.shape[1]))
    sem = tuple(float(np.nanstd(cross[:, c], ddof=1) / math.sqrt(ok[:, c].sum())) if ok[:, c].sum() > 1
                else float("nan") for c in range(cross.shape[1]))
    return TransitionTable(scan.d, scan.p, scan.n, len(scan.seeds), scan.model.weights, pred, half, mean, sem,
                           tuple(int(x) for x in ok.sum(axis=0)))


# ---------------------------------------------------------------------- Fig. 1


def _two_class(weights) -> Model:
    return Model("tanh", 1.0, 4.0, 2.0, list(weights), [1.0, 1.0], [1.0, 1.0])


def fig1_panels() -> list[dict]:
    """The Fig. 1 panels: (label, model, weight exponents), psi_p = 4, psi_n = 2, tanh, sigma_c^2 = 1,
    orthogonal centroids with ||mu_c||^2 = d (speciation.md §4).

    * weak imbalance rho = (0.7, 0.3);
    * strong imbalance, 2 classes, rho(d) proportional to (1, d^{-1/2}) (weight exponents (0, 1/2));
    * strong imbalance, 3 classes, rho(d) proportional to (1, d^{-1/4}, d^{-1/2}) (exponents (0, 1/4, 1/2)).

    Examples
    --------
    >>> [p["label"] for p in fig1_panels()]
    ['weak rho=(0.7, 0.3)', 'strong rho ~ (1, d^-1/2)', 'strong rho ~ (1, d^-1/4, d^-1/2)']
    """
    three = Model("tanh", 1.0, 4.0, 2.0, [1 / 3, 1 / 3, 1 / 3], [1.0] * 3, [1.0] * 3)
    return [{"label": "weak rho=(0.7, 0.3)", "model": _two_class((0.7, 0.3)), "weight_exponents": None},
            {"label": "strong rho ~ (1, d^-1/2)", "model": _two_class((0.5, 0.5)), "weight_exponents": (0.0, 0.5)},
            {"label": "strong rho ~ (1, d^-1/4, d^-1/2)", "model": three, "weight_exponents": (0.0, 0.25, 0.5)}]


def figure_fig1(out_dir, *, d_values=(50, 100, 200), seeds=(0, 1, 2), full: bool = False,
                n_grid: int = 33):
    """Paper Fig. 1: RMS overlap of each projected centroid with the top-C eigenvectors of U_gep vs t / log d.

    Panels from :func:`fig1_panels` (weak imbalance left, strong imbalance right); one line per (class, d),
    the theory curve of ``overlap_curve`` at the largest d dashed, and the predicted t_s^c / log d marked.
    ``full`` adds d = 400 and uses 6 instances (speciation.md §4.4: d = 50, 100, 200 with 6, 400 with 4).
    Grid: ``n_grid`` values of t / log d in [0.05, 0.85].

    Parameters
    ----------
    out_dir : path
        Created if missing.
    d_values : sequence of int
    seeds : sequence of int
        Instance s uses ``default_rng(1000 d + s)``.
    full : bool
    n_grid : int

    Returns
    -------
    diffmix.validation.FigureOutput
        Files fig1.png, fig1.pdf, fig1.json, provenance.json.
    """
    from ._figures import FigureOutput, _save

    out_dir = Path(out_dir)
    d_values = tuple(int(d) for d in d_values)
    seeds = tuple(int(s) for s in seeds)
    if full:
        d_values = tuple(sorted(set(d_values) | {400}))
        seeds = tuple(range(max(6, len(seeds))))
    if not d_values or min(d_values) < 4:
        raise ValueError(f"d_values = {d_values!r}: need at least one d >= 4")
    if not isinstance(n_grid, int) or n_grid < 3:
        raise ValueError(f"n_grid = {n_grid!r}: must be an integer >= 3")
    grid = np.linspace(0.05, 0.85, n_grid)
    panels = fig1_panels()
    fig = Figure(figsize=(5.0 * len(panels), 4.4), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True)
    numbers = {"t_over_log_d": grid.tolist(), "panels": []}
    styles = ["-", "--", "-.", ":"]
    colors = ["C0", "C3", "C2", "C1"]
    for ax, panel in zip(axes, panels):
        model, alpha = panel["model"], panel["weight_exponents"]
        entry = {"label": panel["label"], "model": model.to_dict(), "weight_exponents": alpha, "sizes": []}
        for j, d in enumerate(d_values):
            scan = scan_overlaps(model, d, grid, seeds, weight_exponents=alpha)
            tab = transition_table(scan)
            rms = scan.rms
            theory = overlap_curve(scan.model, d, scan.t)
            for c in range(scan.model.n_classes):
                ax.plot(grid, rms[:, c], styles[j % 4], color=colors[c % 4], lw=1.0 + 0.4 * j, alpha=0.5 + 0.5 * j / max(1, len(d_values) - 1),
                        label=f"class {c + 1}, d={d}")
            if j == len(d_values) - 1:
                for c in range(scan.model.n_classes):
                    ax.plot(grid, theory[:, c], color="k", lw=0.8, ls=(0, (1, 1)))
                    t_s = tab.pred_t_s[c]
                    if t_s is not None:
                        ax.axvline(t_s / math.log(d), color=colors[c % 4], lw=0.6, ls=":")
            entry["sizes"].append({"d": d, "p": scan.p, "n": scan.n, "weights": list(scan.model.weights),
                                   "seeds": list(scan.seeds), "rms": rms.tolist(), "theory": theory.tolist(),
                                   "top_eigenvalues_mean": scan.top.mean(axis=0).tolist(),
                                   "transitions": tab.as_dict()})
        ax.axhline(_HALF, color="0.6", lw=0.5)
        ax.set_xlabel(r"$t / \log d$")
        ax.set_title(panel["label"], fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=6, ncol=2, loc="lower left")
        numbers["panels"].append(entry)
    axes[0].set_ylabel(r"RMS overlap of $W\mu_c/\sqrt{d}$ with top-$C$ eigenvectors of $U_{gep}$")
    fig.suptitle(f"Class speciation (paper Fig. 1): tanh, psi_p = 4, psi_n = 2, sigma_c^2 = 1, ||mu_c||^2 = d, "
                 f"d = {', '.join(map(str, d_values))}, {len(seeds)} instances; dotted black: theory at the "
                 f"largest d, vertical lines: predicted t_s/log d", fontsize=9)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = _save(fig, out_dir, "fig1")
    files["json"] = write_json_atomic(out_dir / "fig1.json", numbers)
    params = {"d_values": list(d_values), "seeds": list(seeds), "full": full, "n_grid": n_grid, "matrix": "gep",
              "seed_rule": "numpy default_rng(1000 d + s); draw order W, Z, Eta",
              "panels": [{"label": p["label"], "model": p["model"].to_dict(),
                          "weight_exponents": p["weight_exponents"]} for p in panels]}
    files["provenance"] = write_json_atomic(out_dir / "provenance.json",
                                            provenance("diffmix figure fig1", params))
    return FigureOutput("fig1", files, numbers)
