"""Memorization metrics of generated samples: nearest-neighbour gap ratio, class fractions, t_mem^c.

The evaluation of the paper's DDPM experiments (arXiv 2605.06367, Sec. 4 "Evaluation" and App. J.1;
issue 8 item 3):

* a generated sample x is *memorized* when the L2 distances to its nearest and second-nearest
  training images satisfy d1 / d2 < 1/3 (:func:`nearest_two`, :func:`memorized_mask`);
* the per-class memorization fraction f_mem^c is the mean of that indicator over the generated
  samples assigned to class c by a binary classifier (:func:`class_fractions`, with percentile
  bootstrap intervals from :func:`bootstrap_fractions`);
* the threshold-crossing time t_mem^c is the first training step at which f_mem^c >= 1/3
  (:func:`threshold_crossing_time`), and the Sneaker-partner memorization gap of eq. (147) is
  Delta t_mem(c_p) = t_mem^{Sneaker} - t_mem^{c_p} (:func:`memorization_gap`; positive when the
  partner is memorized first).

The distances are taken on whatever rows are passed; the paper's are the 784 unpadded pixels. With
:class:`~diffmix.gpu.PairSubset`, pass ``subset.pixels / 255`` for the training set and
``subset.to_unit(generated)`` for the generated images (both flattened or not: trailing axes are
flattened).

Exactness of the nearest-neighbour search (:func:`nearest_two`). The candidates are found from the
expansion ||q - x||^2 = ||q||^2 + ||x||^2 - 2 q.x, one matrix product per batch of queries, in
float32 on the CPU by default. The distances returned are then recomputed exactly in float64 as
sum((q - x)^2) for those candidates, so an exact copy has d1 == 0.0 exactly. Every row is certified:
with the worst-case rounding bound of the low-precision key, eps = 2 (D + 4) u (||x||_max^2 + 2 ||q||
||x||_max + ||q||^2) (u the unit roundoff: 2^-24 in float32, 2^-53 in float64), a training row outside
the k candidates has an exact squared distance >= (k-th smallest key) - eps. When the exact second
distance is not strictly below that, the row is redone over every training row whose key is within
eps of the exact second distance (a set that contains the true two nearest neighbours and all their
ties). The result is therefore the exact float64 top-2 whatever the precision of the search, and
``index1`` is the smallest index among exactly tied nearest neighbours.
"""
from __future__ import annotations

import contextlib
import math
import numbers

import numpy as np
import torch

__all__ = ["MEMORIZATION_RATIO", "bootstrap_fractions", "class_fractions", "log_memorization_gap",
           "memorization_gap", "memorized_mask", "nearest_two", "threshold_crossing_time"]

#: The gap-ratio threshold of the paper (Sec. 4, App. J.1): memorized when d1 / d2 < 1/3.
MEMORIZATION_RATIO = 1.0 / 3.0
#: The fraction threshold defining t_mem^c (Sec. 4): f_mem^c >= 1/3.
FRACTION_THRESHOLD = 1.0 / 3.0
#: Elements of one (batch x N) key matrix when ``batch_size`` is None (128 MiB in float32).
_BATCH_ELEMENTS = 2 ** 25
_UNIT_ROUNDOFF = {torch.float32: 2.0 ** -24, torch.float64: 2.0 ** -53}


# ---------------------------------------------------------------------- helpers


def _as_rows(name: str, array: object) -> torch.Tensor:
    """A float64 CPU-or-device tensor of shape (n, D) from numpy or torch input (trailing axes flattened)."""
    if isinstance(array, torch.Tensor):
        tensor = array.detach()
        if tensor.is_complex() or tensor.dtype == torch.bool:
            raise ValueError(f"{name}: dtype {tensor.dtype}, expected real numbers")
        tensor = tensor.to(torch.float64)
    else:
        a = np.asarray(array)
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)) or a.dtype == bool:
            raise ValueError(f"{name}: dtype {a.dtype}, expected real numbers")
        tensor = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))
    if tensor.ndim < 2 or tensor.shape[0] == 0 or math.prod(tensor.shape[1:]) == 0:
        raise ValueError(f"{name}: shape {tuple(tensor.shape)}, expected (n, D) or (n, ...) with n >= 1, D >= 1")
    return tensor.reshape(tensor.shape[0], -1)


def _check_norms(name: str, rows: torch.Tensor, norms2: torch.Tensor) -> None:
    """NaN/inf in ``rows`` make their squared norm non-finite: a full elementwise scan only then."""
    if not bool(torch.isfinite(norms2).all()):
        if not bool(torch.isfinite(rows).all()):
            raise ValueError(f"{name}: contains NaN or infinite values")
        raise ValueError(f"{name}: values too large (squared norms overflow {norms2.dtype})")


def _resolve_device(device: object) -> torch.device:
    if device is None:
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (TypeError, RuntimeError) as exc:
        raise ValueError(f"device = {device!r}: not a torch device ({exc})") from exc


@contextlib.contextmanager
def _full_precision_matmul():
    """Scope float32 matmuls to full precision (no TF32 / bf16), restoring the caller's settings."""
    precision = torch.get_float32_matmul_precision()
    tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.set_float32_matmul_precision("highest")
        torch.backends.cuda.matmul.allow_tf32 = False
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.set_float32_matmul_precision(precision)


def _exact_sq(q64: torch.Tensor, x64: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Exact float64 sum((q - x_idx)^2): q64 (b, D), idx (b, k) -> (b, k)."""
    diff = torch.index_select(x64, 0, idx.reshape(-1)).view(idx.shape[0], idx.shape[1], -1)
    diff.sub_(q64[:, None, :])
    return diff.square_().sum(dim=-1)


def _top2(sq: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two smallest exact squared distances per row and the smallest index at the minimum (ties by index)."""
    by_index = torch.argsort(idx, dim=1, stable=True)
    idx = torch.gather(idx, 1, by_index)
    sq = torch.gather(sq, 1, by_index)
    order = torch.argsort(sq, dim=1, stable=True)[:, :2]
    return torch.gather(sq, 1, order[:, :1])[:, 0], torch.gather(sq, 1, order[:, 1:2])[:, 0], \
        torch.gather(idx, 1, order[:, :1])[:, 0]


# ---------------------------------------------------------------------- nearest neighbours


def nearest_two(queries: object, train: object, *, device: object = None, batch_size: int | None = None,
                precision: str | None = None, n_candidates: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L2 distances of each query to its nearest and second-nearest training rows (exact float64 top-2).

    The memorization criterion of Sec. 4 / App. J.1 needs d1 = ||x - a_1|| and d2 = ||x - a_2||, a_k
    the k-th nearest training image of the generated image x. Queries are processed in batches: a
    low-precision key ||x_j||^2 - 2 q.x_j (one matrix product) selects ``n_candidates`` rows, whose
    distances are recomputed exactly in float64; a certificate on the rounding error (module
    docstring) guarantees the result equals the float64 brute force, and rows that fail it are redone
    over all training rows that could still be nearer.

    Parameters
    ----------
    queries : array or tensor, shape (m, D) or (m, ...)
        Generated samples (e.g. 784 pixels in [0, 1]); trailing axes are flattened.
    train : array or tensor, shape (N, D) or (N, ...), N >= 2
        The training set, in the same units.
    device : str or torch.device, keyword-only
        None for the CPU (default); e.g. "cuda".
    batch_size : int, keyword-only
        Queries per batch; None: as many as keep the (batch, N) key matrix at 2^25 elements.
    precision : {"float32", "float64"}, keyword-only
        The dtype of the candidate search (the returned distances are float64 in both cases).
        None: float32 on the CPU (about twice faster), float64 on CUDA. Float32 matmuls are run at
        full precision (TF32 is switched off for the call and restored).
    n_candidates : int, keyword-only
        Candidates per query recomputed exactly (>= 2; more makes the fallback rarer).

    Returns
    -------
    d1, d2 : ndarray, shape (m,), float64
        Distances to the nearest and second-nearest training rows (d1 <= d2; d1 == 0.0 exactly for
        an exact copy; d2 == 0.0 when the training set holds the query twice).
    index1 : ndarray, shape (m,), int64
        Row of ``train`` of the nearest neighbour (the smallest such row among exact ties).

    Examples
    --------
    >>> import numpy as np
    >>> train = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    >>> d1, d2, i1 = nearest_two(np.array([[3.0, 4.0], [0.6, 0.8]]), train)
    >>> d1.tolist(), d2.tolist(), i1.tolist()
    ([0.0, 1.0], [5.0, 4.0], [1, 0])
    """
    dev = _resolve_device(device)
    if precision is None:
        low = torch.float64 if dev.type == "cuda" else torch.float32
    elif precision in ("float32", "float64"):
        low = getattr(torch, precision)
    else:
        raise ValueError(f"precision = {precision!r}: must be None, 'float32' or 'float64'")
    if not isinstance(n_candidates, numbers.Integral) or isinstance(n_candidates, bool) or n_candidates < 2:
        raise ValueError(f"n_candidates = {n_candidates!r}: must be an integer >= 2")
    q64 = _as_rows("queries", queries).to(dev)
    x64 = _as_rows("train", train).to(dev)
    m, dim = q64.shape
    n, dim_train = x64.shape
    if dim != dim_train:
        raise ValueError(f"queries, train: {dim} values per query but {dim_train} per training row")
    if n < 2:
        raise ValueError(f"train: {n} row(s); the gap ratio d1/d2 needs at least 2 training rows")
    if batch_size is None:
        batch = max(1, min(m, _BATCH_ELEMENTS // n))
    elif isinstance(batch_size, numbers.Integral) and not isinstance(batch_size, bool) and batch_size >= 1:
        batch = int(batch_size)
    else:
        raise ValueError(f"batch_size = {batch_size!r}: must be None or an integer >= 1")
    k = min(int(n_candidates), n)

    d1 = torch.empty(m, dtype=torch.float64, device=dev)  # squared distances until the end
    d2 = torch.empty(m, dtype=torch.float64, device=dev)
    i1 = torch.empty(m, dtype=torch.int64, device=dev)
    with torch.no_grad(), _full_precision_matmul():
        x_low = x64 if low == torch.float64 else x64.to(low)
        xn_low = torch.einsum("nd,nd->n", x_low, x_low)
        _check_norms("train", x64, xn_low)
        xn_max = float(xn_low.max()) * (1.0 + 4 * dim * _UNIT_ROUNDOFF[low])
        qn_all = torch.einsum("bd,bd->b", q64, q64)
        _check_norms("queries", q64, qn_all)
        x_max = math.sqrt(xn_max)
        coefficient = 2.0 * (dim + 4) * _UNIT_ROUNDOFF[low]
        for start in range(0, m, batch):
            qb = q64[start:start + batch]
            q_low = qb if low == torch.float64 else qb.to(low)
            key = torch.addmm(xn_low[None, :], q_low, x_low.T, beta=1.0, alpha=-2.0)  # ||x||^2 - 2 q.x
            key_k, cand = torch.topk(key, k, dim=1, largest=False, sorted=True)
            sq = _exact_sq(qb, x64, cand)
            s1, s2, j1 = _top2(sq, cand)
            qn = qn_all[start:start + batch]
            qnorm = torch.sqrt(qn)
            eps = coefficient * (xn_max + 2.0 * qnorm * x_max + qn)
            if k < n:
                # Non-candidates have exact squared distance >= qn + key_k[:, -1] - eps.
                failed = torch.nonzero(~(s2 < qn + key_k[:, -1].to(torch.float64) - eps), as_tuple=True)[0]
            else:
                failed = torch.empty(0, dtype=torch.int64, device=dev)
            for row in failed.tolist():
                approx = qn[row] + key[row].to(torch.float64)
                pool = torch.nonzero(approx <= s2[row] + eps[row], as_tuple=True)[0]
                pool_sq = _exact_sq(qb[row:row + 1], x64, pool[None, :])
                a, b, c = _top2(pool_sq, pool[None, :])
                s1[row], s2[row], j1[row] = a[0], b[0], c[0]
            d1[start:start + batch] = s1
            d2[start:start + batch] = s2
            i1[start:start + batch] = j1
    # NumPy's sqrt is correctly rounded everywhere; torch's vectorized CPU sqrt was seen 1 ulp off.
    return np.sqrt(d1.cpu().numpy()), np.sqrt(d2.cpu().numpy()), i1.cpu().numpy()


# ---------------------------------------------------------------------- memorization indicator and fractions


def _check_ratio(name: str, value: object) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{name} = {value!r}: must be a number in (0, 1], e.g. 1/3")
    return float(value)


def memorized_mask(d1: object, d2: object, *, ratio: float = MEMORIZATION_RATIO) -> np.ndarray:
    """The memorization indicator of Sec. 4 / App. J.1: d1 / d2 < ratio.

    Duplicates: d2 == 0 means that the training set holds the sample at least twice (then d1 == 0
    too); the sample is an exact copy of a training image and is counted as memorized. In general
    d1 == 0 is memorized whatever d2. The test is evaluated as d1 < ratio * d2, so no division occurs.

    Parameters
    ----------
    d1, d2 : array, shape (m,)
        Nearest and second-nearest distances (:func:`nearest_two`), finite, >= 0.
    ratio : float, keyword-only
        The threshold in (0, 1]; the paper's is 1/3.

    Returns
    -------
    ndarray, shape (m,), bool

    Examples
    --------
    >>> memorized_mask([0.0, 0.0, 1.0, 1.0], [0.0, 2.0, 3.0, 3.1]).tolist()
    [True, True, False, True]
    """
    ratio = _check_ratio("ratio", ratio)
    a = np.asarray(d1, dtype=np.float64)
    b = np.asarray(d2, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"d1, d2: shapes {a.shape} and {b.shape}, expected the same (m,)")
    for name, v in (("d1", a), ("d2", b)):
        if not np.all(np.isfinite(v)) or (v < 0).any():
            raise ValueError(f"{name}: distances must be finite and >= 0")
    if (a > b).any():
        raise ValueError(f"d1, d2: d1 > d2 at index {int(np.argmax(a > b))} (d1 must be the nearest distance)")
    return (a == 0.0) | (a < ratio * b)


def _check_labels(memorized: object, classes: object, n_classes: object) -> tuple[np.ndarray, np.ndarray, int]:
    if not isinstance(n_classes, numbers.Integral) or isinstance(n_classes, bool) or n_classes < 1:
        raise ValueError(f"n_classes = {n_classes!r}: must be an integer >= 1")
    mem = np.asarray(memorized)
    if mem.ndim != 1 or mem.dtype != bool:
        raise ValueError(f"memorized: {mem.dtype} array of shape {mem.shape}, expected bool (m,)")
    cls = np.asarray(classes)
    if cls.shape != mem.shape or not np.issubdtype(cls.dtype, np.integer):
        raise ValueError(f"classes: {cls.dtype} array of shape {cls.shape}, expected integers of shape {mem.shape}")
    if cls.size and (cls.min() < 0 or cls.max() >= n_classes):
        raise ValueError(f"classes: values outside 0..{int(n_classes) - 1}")
    return mem, cls.astype(np.int64), int(n_classes)


def class_fractions(memorized: object, classes: object, n_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Per-class memorization fractions f_mem^c: the mean of the indicator over samples of class c.

    The empirical estimate of the paper's per-class fraction (App. J.1, the expected memorized rate
    under the generated distribution of class c), with c the class assigned to each generated
    sample by the pair classifier (0 = Sneaker, 1 = partner).

    Parameters
    ----------
    memorized : array, shape (m,), bool
    classes : array, shape (m,), int in 0..n_classes-1
    n_classes : int

    Returns
    -------
    fractions : ndarray, shape (n_classes,), float64
        NaN for a class with no generated sample.
    counts : ndarray, shape (n_classes,), int64
        Generated samples per class.

    Examples
    --------
    >>> f, c = class_fractions([True, False, True, True], [0, 0, 1, 1], 3)
    >>> f.tolist(), c.tolist()
    ([0.5, 1.0, nan], [2, 2, 0])
    """
    mem, cls, n_classes = _check_labels(memorized, classes, n_classes)
    counts = np.bincount(cls, minlength=n_classes).astype(np.int64)
    hits = np.bincount(cls[mem], minlength=n_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    return fractions, counts


def bootstrap_fractions(memorized: object, classes: object, *, n_boot: int = 1000, seed: int, level: float = 0.9,
                        n_classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap intervals of the per-class memorization fractions.

    The m generated samples (indicator, class) are resampled jointly with replacement ``n_boot``
    times with ``numpy.random.default_rng(seed)``, so the class counts vary as they would between
    sampling runs; each replicate gives :func:`class_fractions`, and the interval is the
    ((1 - level)/2, (1 + level)/2) percentile pair of the replicates (linear interpolation, replicates
    with no sample of the class left out).

    Parameters
    ----------
    memorized : array, shape (m,), bool
    classes : array, shape (m,), int
    n_boot : int, keyword-only
    seed : int, keyword-only
    level : float, keyword-only
        Coverage in (0, 1).
    n_classes : int, keyword-only

    Returns
    -------
    lo, hi : ndarray, shape (n_classes,), float64
        NaN for a class absent from the sample.

    Examples
    --------
    >>> lo, hi = bootstrap_fractions([True, False] * 50, [0, 1, 1, 0] * 25, n_boot=200, seed=0)
    >>> bool(lo[0] < 0.5 < hi[0]), bool(hi[0] - lo[0] < 0.4)
    (True, True)
    """
    mem, cls, n_classes = _check_labels(memorized, classes, n_classes)
    if not isinstance(n_boot, numbers.Integral) or isinstance(n_boot, bool) or n_boot < 1:
        raise ValueError(f"n_boot = {n_boot!r}: must be an integer >= 1")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed = {seed!r}: must be an integer >= 0")
    if not isinstance(level, numbers.Real) or not 0.0 < float(level) < 1.0:
        raise ValueError(f"level = {level!r}: must be a number in (0, 1), e.g. 0.9")
    m = mem.size
    if m == 0:
        raise ValueError("memorized: no samples")
    rng = np.random.default_rng(int(seed))
    replicates = np.empty((int(n_boot), n_classes))
    chunk = max(1, 2 ** 22 // m)
    for start in range(0, int(n_boot), chunk):
        rows = min(chunk, int(n_boot) - start)
        pick = rng.integers(0, m, size=(rows, m))
        mem_b, cls_b = mem[pick], cls[pick]
        for c in range(n_classes):
            in_c = cls_b == c
            counts = in_c.sum(axis=1)
            hits = (in_c & mem_b).sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                replicates[start:start + rows, c] = np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)
    alpha = (1.0 - float(level)) / 2.0
    lo = np.full(n_classes, np.nan)
    hi = np.full(n_classes, np.nan)
    for c in range(n_classes):
        values = replicates[:, c][np.isfinite(replicates[:, c])]
        if values.size:
            lo[c], hi[c] = np.quantile(values, [alpha, 1.0 - alpha])
    return lo, hi


# ---------------------------------------------------------------------- threshold crossing and the gap


def threshold_crossing_time(steps: object, fractions: object, *, threshold: float = FRACTION_THRESHOLD,
                            log: bool = True) -> float | None:
    """t_mem^c: the first training step at which the memorization fraction reaches ``threshold``.

    The paper's threshold-crossing time (Sec. 4, App. J.1) on log-spaced checkpoints: with i the first
    checkpoint whose fraction is >= threshold (NaN fractions skipped), the crossing is interpolated
    linearly in log10(step) between checkpoints i-1 and i,

        log10 t = log10 s_{i-1} + (threshold - f_{i-1}) / (f_i - f_{i-1}) (log10 s_i - log10 s_{i-1}),

    (linearly in the step when ``log=False``). A fraction exactly at the threshold gives its step; a
    first checkpoint already at or above the threshold gives that step (the crossing happened at or
    before it). Only the first upward crossing counts, even if the fraction falls back later.

    Parameters
    ----------
    steps : array, shape (K,)
        Strictly increasing training steps of the checkpoints (> 0 when ``log``).
    fractions : array, shape (K,)
        f_mem^c at each checkpoint (NaN: no sample of the class at that checkpoint).
    threshold : float, keyword-only
        1/3 in the paper.
    log : bool, keyword-only

    Returns
    -------
    float or None
        None when the threshold is never reached.

    Examples
    --------
    >>> threshold_crossing_time([10, 100, 1000], [0.0, 0.2, 0.6], threshold=0.4)
    316.22776601683796
    >>> threshold_crossing_time([10, 100], [0.0, 0.2]) is None
    True
    """
    s = np.asarray(steps, dtype=np.float64)
    f = np.asarray(fractions, dtype=np.float64)
    if s.ndim != 1 or f.shape != s.shape or s.size == 0:
        raise ValueError(f"steps, fractions: shapes {s.shape} and {f.shape}, expected the same (K,), K >= 1")
    if not np.all(np.isfinite(s)) or (np.diff(s) <= 0).any():
        raise ValueError("steps: must be finite and strictly increasing")
    if log and (s <= 0).any():
        raise ValueError("steps: must be > 0 for log interpolation (drop a step-0 checkpoint or pass log=False)")
    if not isinstance(threshold, numbers.Real) or not math.isfinite(float(threshold)):
        raise ValueError(f"threshold = {threshold!r}: must be a finite number")
    keep = ~np.isnan(f)
    s, f = s[keep], f[keep]
    above = np.flatnonzero(f >= float(threshold))
    if above.size == 0:
        return None
    i = int(above[0])
    if i == 0 or f[i] == float(threshold):
        return float(s[i])
    weight = (float(threshold) - f[i - 1]) / (f[i] - f[i - 1])
    if log:
        return float(10.0 ** (math.log10(s[i - 1]) + weight * (math.log10(s[i]) - math.log10(s[i - 1]))))
    return float(s[i - 1] + weight * (s[i] - s[i - 1]))


def memorization_gap(t_sneaker: float | None, t_partner: float | None) -> float | None:
    """The Sneaker-partner memorization gap of eq. (147): Delta t_mem(c_p) = t_mem^Sneaker - t_mem^{c_p}.

    Positive when the partner class is memorized first. None if either time is None (never reached).

    Examples
    --------
    >>> memorization_gap(3000.0, 1000.0), memorization_gap(None, 1000.0)
    (2000.0, None)
    """
    if t_sneaker is None or t_partner is None:
        return None
    return float(t_sneaker) - float(t_partner)


def log_memorization_gap(t_sneaker: float | None, t_partner: float | None) -> float | None:
    """log10(t_mem^Sneaker / t_mem^{c_p}): eq. (147) on the log-spaced checkpoint axis (decades).

    Positive when the partner is memorized first; None if either time is None.

    Examples
    --------
    >>> log_memorization_gap(1e4, 1e3)
    1.0
    """
    if t_sneaker is None or t_partner is None:
        return None
    if float(t_sneaker) <= 0 or float(t_partner) <= 0:
        raise ValueError(f"t_sneaker, t_partner = {t_sneaker!r}, {t_partner!r}: must be > 0 for the log gap")
    return float(math.log10(float(t_sneaker) / float(t_partner)))
