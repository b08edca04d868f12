"""Explicit gradient descent of the random-features score model on the DSM loss, R runs at once.

The finite-size simulator of the paper's protocol (arXiv 2605.06367, eq. (6), App. C, App. I.1;
``theory/dynamics.md`` §1-2, §7). The score model is s_A(x) = A phi(x) / sqrt(p),
phi(x) = sigma(W x / sqrt(d)), and the training loss at diffusion time t (eq. (3), normalized so
that L(0) = 1) is

    Lhat_k(A) = (1/n) sum_nu || sqrt(Delta_t) s_A(x_t^nu) + xi_k^nu ||^2 / d,
    x_t^nu = e^{-t} x_0^nu + sqrt(Delta_t) xi_k^nu,

with ONE fresh noise vector xi_k^nu per training sample per step (full batch). Gradient descent
A_{k+1} = A_k - eta grad Lhat_k(A_k) from A_0 = 0 with eta = eta_e d / Delta_t (App. I.1,
eta_e = 5e-5 in the paper), whose flow time is tau = k eta_e (``dynamics.md`` §2).

The losses of every iterate are not sampled: they are the exact quadratic form (L) of
``dynamics.md`` §1,

    L(A) = 1 + Delta_t / (p d) Tr(A U* A^T) + 2 sqrt(Delta_t) / (sqrt(p) d) Tr(A V*),

with (U*, V*) = (U, V) of the training set (paper eqs. (7)-(8): :func:`~diffmix.gpu.true_feature_covariance`,
or the GEP of :func:`~diffmix.gpu.gep_matrices`) for the train error and (U_c^pop, V_c^pop)
(eqs. (38)-(39): :func:`~diffmix.gpu.population_matrices`) for the class test errors E_test^c
(eq. (14)); E_test = sum_c rho_c E_test^c. The matrices are built once by :func:`build_system`.

Seeds and the order of the draws:

1. :func:`build_system` with ``seed`` (or a CPU ``torch.Generator``): W (p x d), then the training
   noise Z (n x d), then, for ``matrices="gep"`` only, Omega (p x n) -- the order of
   ``diffmix.gpu._finite``, so the same seed gives the same W and X0 for both kinds of matrices and
   on every device. The centroids are the coordinate axes (not drawn).
2. :func:`simulate_gd` with ``noise_seed``: run r gets its own ``torch.Generator`` on the run's
   device, seeded with ``numpy.random.SeedSequence(noise_seed, spawn_key=(r,))`` (the r-th child of
   ``SeedSequence(noise_seed)``), so run r has the same stream whatever the number of runs. At each
   step every run draws its n x d noise matrix (row nu = xi^nu) in the feature dtype. CPU and CUDA
   generators give different streams, and float32 and float64 draws differ.
"""
from __future__ import annotations

import hashlib
import math
import numbers
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from diffmix._provenance import write_file_atomic
from diffmix.theory import Model, needs_extensive_gep

from ._finite import (_ACTIVATIONS, FiniteSize, _check_int, gep_matrices, gep_matrices_centroids,
                      true_feature_covariance)
from ._population import PopulationMatrices, population_matrices

__all__ = ["GDResult", "GDStepper", "GDSystem", "build_system", "log_grid", "quadratic_loss", "run_seeds",
           "simulate_gd"]

#: The paper's learning rate in units of d / Delta_t (App. I.1).
ETA_E_PAPER = 5e-5
#: File names written into ``out``.
CHECKPOINT_NAME = "checkpoint.pt"
PROVENANCE_NAME = "provenance.json"
_CHECKPOINT_FORMAT = 1
_MATRICES = ("exact", "gep")
#: Power iterations used for lambda_max(U) in the stability check.
_POWER_ITERATIONS = 200


def _check_positive(name: str, value: object) -> float:
    if (not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value)
            or value <= 0):
        raise ValueError(f"{name} = {value!r}: must be a finite number > 0")
    return float(value)


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ---------------------------------------------------------------------- the system


@dataclass(frozen=True, eq=False)
class GDSystem:
    """Everything fixed during training: W, the training set and the loss matrices.

    Attributes
    ----------
    model : Model
    size : FiniteSize
        d, p, n.
    W : Tensor, shape (p, d)
    X0 : Tensor, shape (n, d)
        Training samples, grouped by class.
    labels : Tensor, shape (n,), dtype long
    counts : tuple of int, length C
    U : Tensor, shape (p, p)
        Training feature covariance (paper eq. (7)), exact in xi or GEP.
    V : Tensor, shape (p, d)
        Training feature-noise correlation (paper eq. (8)).
    population : PopulationMatrices
        U_c^pop (C, p, p), V_c^pop (C, p, d) (paper eqs. (38)-(39)).
    matrices : str
        ``"exact"`` or ``"gep"``.
    seed : int or None
        The data seed (None when a generator was given).
    normalize_rows : bool
    """

    model: Model
    size: FiniteSize
    W: torch.Tensor
    X0: torch.Tensor
    labels: torch.Tensor
    counts: tuple[int, ...]
    U: torch.Tensor
    V: torch.Tensor
    population: PopulationMatrices
    matrices: str
    seed: int | None
    normalize_rows: bool

    def fingerprint(self) -> str:
        """SHA-256 of W and X0 (float64, CPU, C order): identifies the draw on resume."""
        digest = hashlib.sha256()
        for tensor in (self.W, self.X0):
            digest.update(tensor.detach().to(device="cpu", dtype=torch.float64).contiguous().numpy().tobytes())
        return digest.hexdigest()


def build_system(model: Model, d: int, *, seed: int | None = None, generator: torch.Generator | None = None,
                 matrices: str = "exact", normalize_rows: bool = False, order: int = 5, n_nodes: int = 80,
                 population_order: int = 40, population_nodes: int = 120,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float64) -> GDSystem:
    """Draw W and the training set at dimension d and build the loss matrices once.

    ``matrices="exact"``: U, V of :func:`~diffmix.gpu.true_feature_covariance` (exact in xi,
    ``dynamics.md`` §6) and the exact population matrices; ``matrices="gep"``: for centered classes
    with an odd activation U_gep, V_gep of :func:`~diffmix.gpu.gep_matrices` (``gep.md`` §2-3, paper
    eq. (50)) and the GEP population matrices (``gep.md`` §4); otherwise
    (:func:`diffmix.theory.needs_extensive_gep`) the extensive-centroid U_gep, V_gep of
    :func:`~diffmix.gpu.gep_matrices_centroids` (per-neuron coefficients, ``speciation.md`` §1.2)
    and the per-neuron population GEP (``gep.md`` §4). In both cases W and X0 are those of the
    seed (draw order in the module docstring) and the population centroids are those of the
    training set (coordinate axes).

    Parameters
    ----------
    model : Model
    d : int
        Data dimension; p = round(psi_p d), n = round(psi_n d).
    seed, generator
        Exactly one: an int seed or a CPU torch.Generator (draws W, then Z, then Omega for GEP).
    matrices : {"exact", "gep"}
    normalize_rows : bool, optional
        Rescale the rows of W to norm sqrt(d) (recommended with ``"gep"``, ``gep.md`` §4).
    order, n_nodes : int, optional
        Mehler order and Gauss-Hermite nodes of the training U (``"exact"``; defaults 5 and 80).
    population_order, population_nodes : int, optional
        The same for the population matrices (``"exact"``; defaults 40 and 120, ``dynamics.md`` §6).
    device, dtype
        Of every tensor (default CPU, float64).

    Returns
    -------
    GDSystem

    Examples
    --------
    >>> m = Model("tanh", 0.01, 3.0, 2.0, [0.5, 0.5], [0.5, 0.25], [1.0, 1.0])
    >>> s = build_system(m, 4, seed=0)
    >>> s.size, tuple(s.population.U.shape), s.counts
    (FiniteSize(d=4, p=12, n=8), (2, 12, 12), (4, 4))
    """
    if matrices not in _MATRICES:
        raise ValueError(f"matrices = {matrices!r}: must be one of {', '.join(map(repr, _MATRICES))}")
    size = FiniteSize.from_model(model, d)
    common = dict(seed=seed, generator=generator, normalize_rows=normalize_rows, device=device, dtype=dtype)
    extensive = matrices == "gep" and needs_extensive_gep(model)
    if matrices == "exact":
        train = true_feature_covariance(model, d, order=order, n_nodes=n_nodes, **common)
    elif extensive:
        train = gep_matrices_centroids(model, d, dense=True, **common)
    else:
        train = gep_matrices(model, d, **common)
    population = population_matrices(model, train.W, kind=matrices, order=population_order,
                                     n_nodes=population_nodes, dtype=dtype, extensive=extensive)
    return GDSystem(model, size, train.W, train.X0, train.labels, train.counts, train.U, train.V, population,
                    matrices, None if seed is None else int(seed), bool(normalize_rows))


# ---------------------------------------------------------------------- one step


def run_seeds(noise_seed: int, runs: int) -> list[int]:
    """The torch seed of each run's noise generator: child r of ``SeedSequence(noise_seed)``.

    Examples
    --------
    >>> run_seeds(0, 3)[:2] == run_seeds(0, 2)
    True
    """
    noise_seed = _check_int("noise_seed", noise_seed, 0)
    runs = _check_int("runs", runs, 1)
    return [int(np.random.SeedSequence(noise_seed, spawn_key=(r,)).generate_state(1, np.uint64)[0] >> 1)
            for r in range(runs)]


class GDStepper:
    """Full-batch GD with fresh noise on the DSM loss, R independent runs batched on one device.

    One call of :meth:`step` does, for every run r (``dynamics.md`` §2; paper eq. (6), App. I.1),

        xi ~ N(0, I) (n x d, run r's generator),   Phi = sigma(e^{-t} X0 W^T/sqrt(d) + sqrt(Delta_t/d) xi W^T),
        Res = sqrt(Delta_t/p) Phi A_r^T + xi        (n x d; row nu = sqrt(Delta_t) s_A(x_t^nu) + xi^nu),
        A_r <- A_r - eta grad = A_r - 2 eta_e / (n sqrt(p Delta_t)) Res^T Phi,

    i.e. eta = eta_e d / Delta_t on the loss (1/(n d)) sum_nu ||Res_nu||^2. Features, noise and the
    residual are computed in ``feature_dtype``; A is accumulated in ``dtype`` (float32 features
    with float64 A is the fast GPU option of ``dynamics.md`` §7).

    Parameters
    ----------
    model : Model
        Gives t and the activation (a built-in name).
    W : Tensor, shape (p, d)
    X0 : Tensor, shape (n, d)
        On W's device; that device runs the steps.
    runs : int
        R >= 1.
    eta_e : float
        > 0.
    noise_seed : int, optional
        Seeds the R generators (see :func:`run_seeds`).
    noise_generators : sequence of torch.Generator, optional
        Instead of ``noise_seed``: R generators on W's device.
    dtype : torch.dtype, optional
        Of A (default W's dtype).
    feature_dtype : torch.dtype, optional
        Of the features and the noise (default ``dtype``).
    allow_tf32 : bool, optional
        With float32 features on CUDA: let the three matrix products use TF32 tensor cores (inputs
        rounded to 10-bit mantissas; about 3x faster on Hopper). Off by default.

    Attributes
    ----------
    A : Tensor, shape (R, d, p)
        The iterates, A_0 = 0.
    generators : list of torch.Generator
    n_steps : int
        Steps done so far.

    Examples
    --------
    >>> from diffmix.gpu import sample_mixture, sample_weights
    >>> m = Model("tanh", 0.01, 3.0, 2.0, [0.5, 0.5], [0.5, 0.25])
    >>> W = sample_weights(6, 2, generator=torch.Generator().manual_seed(0))
    >>> X0, _ = sample_mixture(m, 2, 4, seed=1)
    >>> stepper = GDStepper(m, W, X0, runs=3, eta_e=0.1, noise_seed=0)
    >>> stepper.step(); stepper.step()
    >>> tuple(stepper.A.shape), stepper.n_steps
    ((3, 2, 6), 2)
    """

    def __init__(self, model: Model, W: torch.Tensor, X0: torch.Tensor, *, runs: int, eta_e: float,
                 noise_seed: int | None = None, noise_generators: Sequence[torch.Generator] | None = None,
                 dtype: torch.dtype | None = None, feature_dtype: torch.dtype | None = None,
                 allow_tf32: bool = False) -> None:
        activation = _ACTIVATIONS.get(model.activation.strip())
        if activation is None:
            raise ValueError(f"activation {model.activation!r}: the simulator supports the built-in activations "
                             f"{', '.join(_ACTIVATIONS)} only")
        runs = _check_int("runs", runs, 1)
        eta_e = _check_positive("eta_e", eta_e)
        if W.ndim != 2 or X0.ndim != 2 or W.shape[1] != X0.shape[1] or W.device != X0.device:
            raise ValueError(f"W, X0: need shapes (p, d) and (n, d) on one device, got {tuple(W.shape)} on "
                             f"{W.device} and {tuple(X0.shape)} on {X0.device}")
        device = W.device
        dtype = W.dtype if dtype is None else dtype
        feature_dtype = dtype if feature_dtype is None else feature_dtype
        for name, value in (("dtype", dtype), ("feature_dtype", feature_dtype)):
            if value not in (torch.float32, torch.float64):
                raise ValueError(f"{name} = {value}: must be torch.float32 or torch.float64")
        if (noise_seed is None) == (noise_generators is None):
            raise ValueError("noise_seed, noise_generators: give exactly one (an int seed or R torch.Generators)")
        if noise_generators is None:
            generators = [torch.Generator(device=device).manual_seed(s) for s in run_seeds(noise_seed, runs)]
        else:
            generators = list(noise_generators)
            if len(generators) != runs or not all(isinstance(g, torch.Generator) for g in generators):
                raise ValueError(f"noise_generators: must be {runs} torch.Generator objects (one per run)")
            for g in generators:
                if g.device.type != device.type:
                    raise ValueError(f"noise_generators: a generator on {g.device}, the run is on {device}")
        p, d = W.shape
        n = X0.shape[0]
        delta_t = model.delta_t
        self.model, self.p, self.d, self.n, self.runs, self.eta_e = model, p, d, n, runs, eta_e
        self.device, self.dtype, self.feature_dtype = device, dtype, feature_dtype
        self.generators = generators
        self.n_steps = 0
        self.A = torch.zeros((runs, d, p), dtype=dtype, device=device)
        w64 = W.to(torch.float64)
        self._activation = activation
        # e^{-t} X0 W^T / sqrt(d): the data part of the pre-activations, fixed (n, p).
        self._mean = (math.exp(-model.t) / math.sqrt(d) * (X0.to(torch.float64) @ w64.T)).to(feature_dtype)
        self._noise_map = (math.sqrt(delta_t / d) * w64.T).to(feature_dtype).contiguous()   # (d, p)
        self._residual_scale = math.sqrt(delta_t / p)
        self._step_scale = 2.0 * eta_e / (n * math.sqrt(p * delta_t))
        self._xi = torch.empty((runs, n, d), dtype=feature_dtype, device=device)
        if allow_tf32 and (feature_dtype != torch.float32 or device.type != "cuda"):
            raise ValueError("allow_tf32: needs float32 features on a CUDA device")
        self.allow_tf32 = bool(allow_tf32)

    def step(self) -> None:
        """One GD step of every run (fresh noise, full batch)."""
        if self.allow_tf32:
            previous = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = True
            try:
                self._step()
            finally:
                torch.backends.cuda.matmul.allow_tf32 = previous
        else:
            self._step()

    def _step(self) -> None:
        xi = self._xi
        for r, generator in enumerate(self.generators):
            xi[r].normal_(generator=generator)
        runs, n, p, d = self.runs, self.n, self.p, self.d
        pre = torch.baddbmm(self._mean.expand(runs, n, p), xi, self._noise_map.expand(runs, d, p))
        phi = self._activation(pre)
        a = self.A if self.feature_dtype == self.dtype else self.A.to(self.feature_dtype)
        residual = torch.baddbmm(xi, phi, a.transpose(1, 2), alpha=self._residual_scale)
        if self.feature_dtype == self.dtype:
            self.A.baddbmm_(residual.transpose(1, 2), phi, alpha=-self._step_scale)
        else:
            self.A.sub_(torch.bmm(residual.transpose(1, 2), phi).to(self.dtype), alpha=self._step_scale)
        self.n_steps += 1

    def rng_states(self) -> list[torch.Tensor]:
        """The state of each run's generator (CPU byte tensors)."""
        return [g.get_state() for g in self.generators]

    def set_rng_states(self, states: Sequence[torch.Tensor]) -> None:
        """Restore the states returned by :meth:`rng_states`."""
        if len(states) != self.runs:
            raise ValueError(f"states: {len(states)} generator states for {self.runs} runs")
        for g, s in zip(self.generators, states):
            g.set_state(s)


# ---------------------------------------------------------------------- losses


def quadratic_loss(A: torch.Tensor, U: torch.Tensor, V: torch.Tensor, delta_t: float) -> torch.Tensor:
    """The DSM loss of each iterate as the exact quadratic form (L) of ``dynamics.md`` §1 (eq. (3)).

    L(A) = 1 + Delta_t / (p d) Tr(A U A^T) + 2 sqrt(Delta_t) / (sqrt(p) d) Tr(A V).

    Parameters
    ----------
    A : Tensor, shape (R, d, p)
    U : Tensor, shape (p, p)
    V : Tensor, shape (p, d)
    delta_t : float

    Returns
    -------
    Tensor, shape (R,)

    Examples
    --------
    >>> quadratic_loss(torch.zeros(2, 3, 4), torch.eye(4), torch.ones(4, 3), 0.1).tolist()
    [1.0, 1.0]
    """
    _, d, p = A.shape
    quadratic = ((A @ U) * A).sum(dim=(1, 2))
    linear = torch.einsum("rij,ji->r", A, V)
    return 1.0 + (delta_t / (p * d)) * quadratic + (2.0 * math.sqrt(delta_t) / (math.sqrt(p) * d)) * linear


def _largest_eigenvalue(U: torch.Tensor) -> float:
    """lambda_max of a symmetric PSD U by power iteration from a fixed start (a lower estimate)."""
    x = torch.randn(U.shape[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = (x / torch.linalg.vector_norm(x)).to(device=U.device, dtype=U.dtype)
    lam = 0.0
    for _ in range(_POWER_ITERATIONS):
        y = U @ x
        lam = float(x @ y)
        norm = torch.linalg.vector_norm(y)
        if norm == 0:
            return 0.0
        x = y / norm
    return lam


def log_grid(steps: int, log_points: int) -> np.ndarray:
    """Step 0 and ``log_points`` log-spaced steps in [1, steps] (rounded, duplicates removed).

    Examples
    --------
    >>> log_grid(1000, 4).tolist()
    [0, 1, 10, 100, 1000]
    """
    steps = _check_int("steps", steps, 1)
    log_points = _check_int("log_points", log_points, 2)
    grid = np.unique(np.rint(np.logspace(0.0, math.log10(steps), log_points)).astype(np.int64))
    return np.concatenate([[0], grid[(grid >= 1) & (grid <= steps)]]).astype(np.int64)


# ---------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class GDResult:
    """Learning curves of R gradient-descent runs, evaluated exactly at logged steps.

    Attributes
    ----------
    steps : ndarray, shape (K,), int64
        Logged steps k (0 first).
    tau : ndarray, shape (K,)
        Flow time tau = k eta_e (``dynamics.md`` §2).
    train : ndarray, shape (R, K)
        E_train of each run's iterate (quadratic form (L) with the training U, V).
    test : ndarray, shape (R, K)
        Mixture test error sum_c rho_c E_test^c.
    test_c : ndarray, shape (R, C, K)
        Class-conditional test errors E_test^c (paper eq. (14)).
    train_of_mean, test_of_mean : ndarray, shape (K,)
        The same errors of the run-averaged iterate (1/R) sum_r A_r (it follows the discrete
        closed form as R grows; ``dynamics.md`` §7).
    test_c_of_mean : ndarray, shape (C, K)
    eta_e, eta : float
        eta = eta_e d / Delta_t.
    device, dtype, feature_dtype, matrices : str
    d, p, n, runs : int
    seed, noise_seed : int or None
    n_steps : int
        Steps done.
    completed : bool
        n_steps reached the requested steps.
    diverged : bool
        A logged loss was not finite (the run stopped there).
    message : str
    wall_s : float
        Wall-clock seconds of stepping and logging, summed over resumed calls.
    """

    steps: np.ndarray
    tau: np.ndarray
    train: np.ndarray
    test: np.ndarray
    test_c: np.ndarray
    train_of_mean: np.ndarray
    test_of_mean: np.ndarray
    test_c_of_mean: np.ndarray
    eta_e: float
    eta: float
    device: str
    dtype: str
    feature_dtype: str
    matrices: str
    d: int
    p: int
    n: int
    runs: int
    seed: int | None
    noise_seed: int | None
    n_steps: int
    completed: bool
    diverged: bool
    message: str
    wall_s: float

    @property
    def train_mean(self) -> np.ndarray:
        """Mean over runs of the train error, shape (K,)."""
        return self.train.mean(axis=0)

    @property
    def test_mean(self) -> np.ndarray:
        """Mean over runs of the mixture test error, shape (K,)."""
        return self.test.mean(axis=0)

    @property
    def test_c_mean(self) -> np.ndarray:
        """Mean over runs of the class test errors, shape (C, K)."""
        return self.test_c.mean(axis=0)

    def as_dict(self) -> dict:
        """A JSON-ready dictionary (arrays as nested lists, means included)."""
        out = {}
        for key, value in self.__dict__.items():
            out[key] = value.tolist() if isinstance(value, np.ndarray) else value
        for key in ("train_mean", "test_mean", "test_c_mean"):
            out[key] = getattr(self, key).tolist()
        return out


# ---------------------------------------------------------------------- the simulation


def _save_atomic(state: dict, path: Path) -> None:
    write_file_atomic(path, lambda f: torch.save(state, f))


def simulate_gd(system: GDSystem, *, steps: int, runs: int = 1, eta_e: float = ETA_E_PAPER,
                noise_seed: int | None = None, noise_generators: Sequence[torch.Generator] | None = None,
                log_points: int = 50, feature_dtype: torch.dtype | None = None, allow_tf32: bool = False,
                out: str | os.PathLike[str] | None = None, checkpoint_every: int | None = None,
                resume: bool = False, stop_at: int | None = None, progress: bool = True,
                check_stability: bool = True) -> GDResult:
    """Run R independent GD runs of ``steps`` steps and log exact train and test errors.

    The protocol of ``dynamics.md`` §2 (paper eq. (6), App. C, App. I.1; see :class:`GDStepper`):
    A_0 = 0, full batch, one fresh xi per sample per step, eta = eta_e d / Delta_t, tau = k eta_e.
    All runs share W and the data of ``system`` and have their own noise streams. At step 0 and at
    ``log_points`` log-spaced steps (:func:`log_grid`) the errors of every iterate, and of the
    run-averaged iterate, are evaluated by the quadratic form (L) (:func:`quadratic_loss`) with the
    matrices of ``system`` (computed once). The errors at step 0 are exactly 1.

    Checkpoints. With ``out``, the state (A, step, generator states, the curves so far, the
    parameters and a fingerprint of W and X0) is written atomically (temporary file, then
    ``os.replace``) to ``out/checkpoint.pt`` every ``checkpoint_every`` steps, at ``stop_at`` and at
    the end, and ``out/provenance.json`` records the parameters, seeds and versions.
    ``resume=True`` continues from the checkpoint; the continued curves are bit-identical to an
    uninterrupted run on the same device (the parameters must be equal, else ValueError).
    ``stop_at`` stops early (e.g. to split a long run into jobs); the log grid always depends on
    ``steps`` only.

    Parameters
    ----------
    system : GDSystem
        From :func:`build_system`; its device runs the simulation.
    steps : int
        Total number of GD steps, >= 1.
    runs : int, optional
        R >= 1 (default 1).
    eta_e : float, optional
        Learning rate in units of d / Delta_t (default 5e-5, the paper's).
    noise_seed, noise_generators
        Exactly one: an int (see :func:`run_seeds`) or R torch.Generators on the system's device.
    log_points : int, optional
        Log-spaced logged steps besides step 0 (default 50; duplicates after rounding are dropped).
    feature_dtype : torch.dtype, optional
        float32 for faster features (A stays in the system's dtype); default the system's dtype.
    allow_tf32 : bool, optional
        TF32 matrix products for float32 features on CUDA (see :class:`GDStepper`).
    out : path, optional
        Directory for the checkpoint and provenance (created).
    checkpoint_every : int, optional
        Checkpoint period in steps (default: only at ``stop_at`` and at the end).
    resume : bool, optional
        Continue from ``out/checkpoint.pt``.
    stop_at : int, optional
        Stop after this many total steps, 1..steps (a checkpoint is written).
    progress : bool, optional
        Show a tqdm progress bar (default True).
    check_stability : bool, optional
        Refuse eta_e >= p / lambda_max(U), where the mean iterate diverges (default True).

    Returns
    -------
    GDResult

    Raises
    ------
    ValueError
        For invalid arguments, an unstable eta_e, ``resume`` without a checkpoint or with different
        parameters, or a fresh run into an ``out`` that already holds a checkpoint.

    Examples
    --------
    >>> m = Model("tanh", 0.01, 3.0, 2.0, [0.5, 0.5], [0.5, 0.25], [1.0, 1.0])
    >>> s = build_system(m, 4, seed=0)
    >>> r = simulate_gd(s, steps=100, runs=2, eta_e=0.5, noise_seed=0, log_points=3, progress=False)
    >>> r.steps.tolist(), r.train[:, 0].tolist(), r.test_c.shape
    ([0, 1, 10, 100], [1.0, 1.0], (2, 2, 4))
    >>> bool(r.train_mean[-1] < 1.0)
    True
    """
    from tqdm.auto import tqdm

    if not isinstance(system, GDSystem):
        raise ValueError(f"system: must be a GDSystem (from build_system), got {type(system).__name__}")
    steps = _check_int("steps", steps, 1)
    runs = _check_int("runs", runs, 1)
    eta_e = _check_positive("eta_e", eta_e)
    grid = log_grid(steps, log_points)
    if checkpoint_every is not None:
        checkpoint_every = _check_int("checkpoint_every", checkpoint_every, 1)
    if stop_at is not None:
        stop_at = _check_int("stop_at", stop_at, 1)
        if stop_at > steps:
            raise ValueError(f"stop_at = {stop_at}: must be at most steps = {steps}")
    end = steps if stop_at is None else stop_at
    if resume and out is None:
        raise ValueError("resume: needs out (the directory holding checkpoint.pt)")
    model, size = system.model, system.size
    delta_t = model.delta_t
    dtype = system.W.dtype
    stepper = GDStepper(model, system.W, system.X0, runs=runs, eta_e=eta_e, noise_seed=noise_seed,
                        noise_generators=noise_generators, dtype=dtype, feature_dtype=feature_dtype,
                        allow_tf32=allow_tf32)
    device = system.W.device
    params = {
        "model": model.to_dict(), "d": size.d, "p": size.p, "n": size.n, "matrices": system.matrices,
        "seed": system.seed, "normalize_rows": system.normalize_rows, "runs": runs, "steps": steps,
        "eta_e": eta_e, "noise_seed": noise_seed, "log_points": log_points,
        "dtype": _dtype_name(dtype), "feature_dtype": _dtype_name(stepper.feature_dtype),
        "allow_tf32": bool(allow_tf32), "device_type": device.type, "fingerprint": system.fingerprint(),
        "population_order": system.population.order, "population_nodes": system.population.n_nodes,
    }

    out_dir = None if out is None else Path(out)
    checkpoint_path = None if out_dir is None else out_dir / CHECKPOINT_NAME
    log_steps: list[int] = []
    log_values: list[torch.Tensor] = []       # per logged step: (R + 1, 1 + C) train, classes; row R = mean
    start, wall_before = 0, 0.0
    if resume:
        if not checkpoint_path.exists():
            raise ValueError(f"resume: no checkpoint at {checkpoint_path}")
        state = torch.load(checkpoint_path, weights_only=True)
        if state.get("format") != _CHECKPOINT_FORMAT:
            raise ValueError(f"resume: {checkpoint_path} has format {state.get('format')!r}, "
                             f"expected {_CHECKPOINT_FORMAT}")
        for key, value in params.items():
            if state["params"].get(key) != value:
                raise ValueError(f"resume: {key} = {value!r} differs from the checkpoint's "
                                 f"{state['params'].get(key)!r} ({checkpoint_path})")
        start, wall_before = int(state["step"]), float(state["wall_s"])
        stepper.A.copy_(state["A"].to(device=device, dtype=dtype))
        stepper.set_rng_states(state["rng_states"])
        stepper.n_steps = start
        log_steps = [int(k) for k in state["log_steps"]]
        log_values = list(state["log_values"].unbind(0)) if log_steps else []
    elif checkpoint_path is not None and checkpoint_path.exists():
        raise ValueError(f"out = {out_dir}: already holds {CHECKPOINT_NAME}; pass resume=True to continue "
                         "it or choose another directory")

    if check_stability and start < end:
        lam_max = _largest_eigenvalue(system.U)
        if lam_max > 0 and eta_e * lam_max / size.p >= 1.0:
            raise ValueError(f"eta_e = {eta_e!r}: GD is unstable for eta_e >= p / lambda_max(U) = "
                             f"{size.p / lam_max:.4g} (dynamics.md §2); lower eta_e")

    if out_dir is not None:
        from diffmix._provenance import provenance, write_json_atomic
        out_dir.mkdir(parents=True, exist_ok=True)
        record = dict(params, resumed_from_step=start if resume else None, stop_at=stop_at,
                      checkpoint_every=checkpoint_every, device=str(device),
                      run_seeds=None if noise_seed is None else run_seeds(noise_seed, runs))
        write_json_atomic(out_dir / PROVENANCE_NAME, provenance("diffmix.gpu.simulate_gd", record))

    population = system.population
    u_pop = population.U.to(device=device, dtype=dtype)
    v_pop = population.V.to(device=device, dtype=dtype)
    u_train, v_train = system.U.to(dtype), system.V.to(dtype)

    def evaluate() -> torch.Tensor:
        a = torch.cat([stepper.A, stepper.A.mean(dim=0, keepdim=True)])
        columns = [quadratic_loss(a, u_train, v_train, delta_t)]
        columns += [quadratic_loss(a, u_pop[c], v_pop[c], delta_t) for c in range(model.n_classes)]
        return torch.stack(columns, dim=1).to(device="cpu", dtype=torch.float64)

    def save(step: int, wall: float) -> None:
        values = torch.stack(log_values) if log_values else torch.empty(0)
        _save_atomic({"format": _CHECKPOINT_FORMAT, "params": params, "step": step,
                      "A": stepper.A.detach().cpu(), "rng_states": stepper.rng_states(),
                      "log_steps": torch.tensor(log_steps, dtype=torch.int64), "log_values": values,
                      "wall_s": wall}, checkpoint_path)

    logged = set(grid.tolist())
    diverged = False
    t0 = time.perf_counter()
    if start == 0 and not log_steps:
        log_steps.append(0)
        log_values.append(evaluate())
    with tqdm(total=steps, initial=start, disable=not progress, unit="step", desc=f"GD d={size.d} R={runs}",
              mininterval=0.5) as bar:
        for k in range(start + 1, end + 1):
            stepper.step()
            bar.update(1)
            if k in logged:
                values = evaluate()
                log_steps.append(k)
                log_values.append(values)
                if not torch.isfinite(values).all():
                    diverged = True
                    break
            if checkpoint_path is not None and checkpoint_every is not None and k % checkpoint_every == 0 \
                    and k != end:
                save(k, wall_before + time.perf_counter() - t0)
    wall = wall_before + time.perf_counter() - t0
    if checkpoint_path is not None and not diverged and start < end:
        save(end, wall)

    n_steps = stepper.n_steps
    values = torch.stack(log_values).numpy()                     # (K, R + 1, 1 + C)
    rho = np.array(population.weights)
    test_c = np.transpose(values[:, :, 1:], (1, 2, 0))           # (R + 1, C, K)
    test = np.einsum("c,rck->rk", rho, test_c)
    train = values[:, :, 0].T                                    # (R + 1, K)
    completed = n_steps >= steps and not diverged
    if diverged:
        message = f"diverged: a non-finite loss at step {log_steps[-1]} (eta_e = {eta_e!r} too large)"
    elif completed:
        message = f"completed {steps} steps"
    else:
        message = f"stopped at step {n_steps} of {steps} (stop_at); continue with resume=True"
    steps_arr = np.array(log_steps, dtype=np.int64)
    return GDResult(
        steps=steps_arr, tau=steps_arr * eta_e, train=train[:runs].copy(), test=test[:runs].copy(),
        test_c=test_c[:runs].copy(), train_of_mean=train[runs].copy(), test_of_mean=test[runs].copy(),
        test_c_of_mean=test_c[runs].copy(), eta_e=eta_e, eta=eta_e * size.d / delta_t, device=str(device),
        dtype=_dtype_name(dtype), feature_dtype=_dtype_name(stepper.feature_dtype), matrices=system.matrices,
        d=size.d, p=size.p, n=size.n, runs=runs, seed=system.seed, noise_seed=noise_seed, n_steps=n_steps,
        completed=completed, diverged=diverged, message=message, wall_s=wall)
