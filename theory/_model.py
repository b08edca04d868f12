"""The model: a Gaussian mixture, an activation, a diffusion time and the two aspect ratios.

A :class:`Model` holds everything the theory needs that does not depend on the size d: the activation
sigma, the diffusion time t, psi_p = p/d and psi_n = n/d, and per class c the weight rho_c, the
per-coordinate variance sigma_c^2 and the centroid norm ||mu_c||^2/d, plus the C x C cosine matrix
between centroids. Symbols follow ``theory/notation.md``; the model is the one of the paper
(arXiv 2605.06367). The file schema (TOML, or the same keys in JSON) is the one of
``examples/README.md``; :func:`load_model` and :func:`save_model` read and write it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import numbers
import os
import secrets
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Model", "ModelError", "load_model", "save_model"]

_TOP_KEYS = ("activation", "t", "psi_p", "psi_n", "cosine", "classes")
_TOP_REQUIRED = ("activation", "t", "psi_p", "psi_n", "classes")
_CLASS_KEYS = ("weight", "variance", "centroid_norm2")
_CLASS_REQUIRED = ("weight", "variance")
_SUFFIXES = (".toml", ".json")
_WEIGHT_SUM_TOL = 1e-12
_PSD_TOL = 1e-12


class ModelError(ValueError):
    """An invalid model, model dictionary or model file; the message names the field and what it must be."""


def _show(value: Any) -> str:
    """Render a user-supplied value for an error message (floats by repr, NumPy scalars as Python ones)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _finite(label: str, value: Any, bound: str = "") -> float:
    """Convert ``value`` to a finite Python float, or raise a :class:`ModelError` naming ``label``.

    ``bound`` is ``""``, ``"> 0"`` or ``">= 0"``. Negative zero is returned as ``0.0`` so that equal
    models have equal :meth:`Model.content_hash`.
    """
    requirement = f"must be a finite number {bound}".rstrip()
    if not _is_number(value):
        raise ModelError(f"{label} = {_show(value)}: {requirement}")
    try:
        x = float(value)
    except OverflowError:
        raise ModelError(f"{label} = {_show(value)}: {requirement}") from None
    if not math.isfinite(x) or (bound == "> 0" and x <= 0) or (bound == ">= 0" and x < 0):
        raise ModelError(f"{label} = {_show(value)}: {requirement}")
    return x + 0.0


def _sequence(label: str, value: Any) -> tuple:
    """The items of a list, tuple or 1-D NumPy array, or a :class:`ModelError` naming ``label``."""
    if isinstance(value, np.ndarray):
        value = value.tolist() if value.ndim == 1 else value
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ModelError(f"{label}: must be a sequence of numbers (one per class), got {type(value).__name__}")
    return tuple(value)


@functools.lru_cache(maxsize=256)
def _activation_problem(activation: str) -> str | None:
    """The message of ``parse_activation``'s ValueError for ``activation``, or None if it is accepted."""
    from diffmix.derivations import parse_activation

    try:
        parse_activation(activation)
    except ValueError as exc:
        return str(exc).removeprefix(f"activation '{activation.strip()}': ")
    return None


@dataclasses.dataclass(frozen=True)
class Model:
    """A C-class Gaussian mixture learned by a random-features score model at diffusion time t.

    Notation is that of ``theory/notation.md`` and of the paper (arXiv 2605.06367): class c has
    weight rho_c, centroid mu_c and per-coordinate variance sigma_c^2; the score model has
    p = psi_p d features and is trained on n = psi_n d samples noised to time t.

    Parameters
    ----------
    activation : str
        A named activation (tanh, erf, relu, gelu, sigmoid-centered, linear, sign) or an expression
        in ``x``; it must be accepted by :func:`diffmix.derivations.parse_activation`.
    t : float
        Diffusion time, > 0.
    psi_p, psi_n : float
        p/d and n/d (the paper's chi_p and chi_m), > 0.
    weights : sequence of float
        rho_c > 0, one per class, summing to 1 within 1e-12.
    variances : sequence of float
        sigma_c^2 > 0, one per class.
    centroid_norm2 : sequence of float, optional
        ||mu_c||^2 / d >= 0, one per class; None (the default) means all 0 (a centered mixture).
    cosine : C x C array_like, optional
        Cosines between centroids: symmetric, unit diagonal, positive semi-definite (smallest
        eigenvalue >= -1e-12 times the largest). None (the default) means the identity.

    Sequences may be lists, tuples or NumPy arrays; they are stored as tuples of Python floats, so a
    model is immutable, hashable and compares by value. Construction validates every field and
    raises :class:`ModelError` naming the first invalid one.

    Examples
    --------
    >>> m = Model.from_classes("tanh", t=0.01, psi_p=60.0, psi_n=30.0,
    ...                        classes=[{"weight": 0.5, "variance": 0.5},
    ...                                 {"weight": 0.5, "variance": 0.25}])
    >>> m.n_classes, m.mean_variance, m.ratio_pn, m.is_centered
    (2, 0.375, 2.0, True)
    >>> m.cosine
    ((1.0, 0.0), (0.0, 1.0))
    >>> m.replace(t=0.5).t
    0.5
    """

    activation: str
    t: float
    psi_p: float
    psi_n: float
    weights: tuple[float, ...]
    variances: tuple[float, ...]
    centroid_norm2: tuple[float, ...] | None = None
    cosine: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        activation = self.activation
        if not isinstance(activation, str) or not activation.strip():
            raise ModelError(f"activation = {_show(activation)}: must be a non-empty string")
        problem = _activation_problem(activation)
        if problem is not None:
            raise ModelError(f"activation = {activation!r}: {problem}")

        for name in ("t", "psi_p", "psi_n"):
            object.__setattr__(self, name, _finite(name, getattr(self, name), "> 0"))

        weights = _sequence("weights", self.weights)
        variances = _sequence("variances", self.variances)
        if not weights:
            raise ModelError("weights: must have at least one entry (one per class)")
        if self.centroid_norm2 is None:
            norms = (0.0,) * len(weights)
        else:
            norms = _sequence("centroid_norm2", self.centroid_norm2)
        if not len(weights) == len(variances) == len(norms):
            raise ModelError(
                "weights, variances, centroid_norm2: must have one entry per class "
                f"(got {len(weights)}, {len(variances)}, {len(norms)})"
            )
        weights = tuple(_finite(f"weights[{c}]", w, "> 0") for c, w in enumerate(weights))
        variances = tuple(_finite(f"variances[{c}]", v, "> 0") for c, v in enumerate(variances))
        norms = tuple(_finite(f"centroid_norm2[{c}]", m, ">= 0") for c, m in enumerate(norms))
        total = math.fsum(weights)
        if abs(total - 1.0) > _WEIGHT_SUM_TOL:
            raise ModelError(f"weights: must sum to 1 within {_WEIGHT_SUM_TOL:g} (sum = {total!r})")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "variances", variances)
        object.__setattr__(self, "centroid_norm2", norms)
        object.__setattr__(self, "cosine", _cosine(self.cosine, len(weights)))

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_classes(
        cls,
        activation: str,
        t: float,
        psi_p: float,
        psi_n: float,
        classes: Sequence[Mapping[str, float]],
        cosine: Any = None,
    ) -> Model:
        """Build a model from one mapping per class, as in the ``[[classes]]`` tables of a model file.

        Parameters
        ----------
        activation, t, psi_p, psi_n, cosine
            As for :class:`Model`.
        classes : sequence of mapping
            One mapping per class with keys ``weight`` and ``variance`` (required) and
            ``centroid_norm2`` (optional, default 0). Other keys raise :class:`ModelError`, and
            errors in a class name it as in the file, e.g. ``classes[1].weight``.
        """
        if isinstance(classes, (str, bytes, Mapping)) or not isinstance(classes, Sequence):
            raise ModelError(
                f"classes: must be a list of tables (one per class), got {type(classes).__name__}"
            )
        if not classes:
            raise ModelError("classes: must have at least one class")
        columns: dict[str, list[float]] = {key: [] for key in _CLASS_KEYS}
        for c, entry in enumerate(classes):
            if not isinstance(entry, Mapping):
                raise ModelError(
                    f"classes[{c}]: must be a table with keys {', '.join(_CLASS_KEYS)}, got {type(entry).__name__}"
                )
            _check_keys(f"classes[{c}]", entry, _CLASS_KEYS, _CLASS_REQUIRED)
            entry = {"centroid_norm2": 0.0, **entry}
            for key, bound in zip(_CLASS_KEYS, ("> 0", "> 0", ">= 0")):
                columns[key].append(_finite(f"classes[{c}].{key}", entry[key], bound))
        return cls(
            activation, t, psi_p, psi_n, columns["weight"], columns["variance"], columns["centroid_norm2"], cosine
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Model:
        """Build a model from a dictionary with the schema of ``examples/README.md``.

        ``cosine`` is optional (default identity), and so is ``centroid_norm2`` in each class
        (default 0). Unknown or missing keys and values of the wrong type raise :class:`ModelError`
        naming the key.
        """
        if not isinstance(data, Mapping):
            raise ModelError(f"model: must be a table with keys {', '.join(_TOP_KEYS)}, got {type(data).__name__}")
        _check_keys("model", data, _TOP_KEYS, _TOP_REQUIRED)
        return cls.from_classes(
            data["activation"], data["t"], data["psi_p"], data["psi_n"], data["classes"], data.get("cosine")
        )

    def replace(self, **changes: Any) -> Model:
        """A new, validated model with the given fields changed (see :func:`dataclasses.replace`).

        Fields sized by the number of classes are not resized: changing it means passing
        ``weights``, ``variances``, ``centroid_norm2`` and ``cosine`` together.
        """
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ derived quantities

    @property
    def n_classes(self) -> int:
        """C, the number of classes."""
        return len(self.weights)

    @property
    def delta_t(self) -> float:
        """Delta_t = 1 - e^{-2t}, the noise variance at time t, computed as -expm1(-2t) (accurate for small t)."""
        return -math.expm1(-2.0 * self.t)

    @property
    def gamma2(self) -> np.ndarray:
        """Gamma_{c,t}^2 = e^{-2t} sigma_c^2 + Delta_t, the class variances at time t (a new array, shape (C,))."""
        return math.exp(-2.0 * self.t) * np.array(self.variances) + self.delta_t

    @property
    def mean_variance(self) -> float:
        """sigmabar^2 = sum_c rho_c sigma_c^2, the mean data variance."""
        return math.fsum(w * v for w, v in zip(self.weights, self.variances))

    @property
    def is_centered(self) -> bool:
        """True if every centroid is zero (all ``centroid_norm2`` are 0)."""
        return all(m == 0.0 for m in self.centroid_norm2)

    @property
    def ratio_pn(self) -> float:
        """psi_p / psi_n = p / n."""
        return self.psi_p / self.psi_n

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """The model as a dictionary with the schema of ``examples/README.md`` (``cosine`` always written).

        ``Model.from_dict(m.to_dict()) == m`` exactly.
        """
        return {
            "activation": self.activation,
            "t": self.t,
            "psi_p": self.psi_p,
            "psi_n": self.psi_n,
            "cosine": [list(row) for row in self.cosine],
            "classes": [
                {"weight": w, "variance": v, "centroid_norm2": m}
                for w, v, m in zip(self.weights, self.variances, self.centroid_norm2)
            ],
        }

    def content_hash(self) -> str:
        """SHA-256 hex digest of the canonical JSON of :meth:`to_dict`; the cache key of a model.

        The canonical JSON sorts keys, uses separators ``(",", ":")`` and writes floats by ``repr``
        (shortest round-trip form), so the digest depends only on the model's values and is the same
        across processes, platforms and Python runs. Equal models have equal digests.
        """
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_keys(where: str, data: Mapping[str, Any], allowed: tuple[str, ...], required: tuple[str, ...]) -> None:
    for key in data:
        if key not in allowed:
            raise ModelError(f"{where}: unknown key {key!r} (allowed: {', '.join(allowed)})")
    for key in required:
        if key not in data:
            raise ModelError(f"{where}: missing required key {key!r}")


def _cosine(value: Any, n: int) -> tuple[tuple[float, ...], ...]:
    """Validate the cosine matrix of an ``n``-class model (None: the identity) and return it as tuples."""
    if value is None:
        return tuple(tuple(1.0 if i == j else 0.0 for j in range(n)) for i in range(n))
    shape_error = ModelError(f"cosine: must be a {n} x {n} matrix (one row and column per class)")
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != n:
        raise shape_error
    for row in value:
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or len(row) != n:
            raise shape_error
    matrix = tuple(tuple(_finite(f"cosine[{i}][{j}]", x) for j, x in enumerate(row)) for i, row in enumerate(value))
    for i in range(n):
        if matrix[i][i] != 1.0:
            raise ModelError(f"cosine: diagonal must be 1 (cosine[{i}][{i}] = {matrix[i][i]!r})")
        for j in range(i):
            if matrix[i][j] != matrix[j][i]:
                raise ModelError(
                    "cosine: must be symmetric "
                    f"(cosine[{i}][{j}] = {matrix[i][j]!r}, cosine[{j}][{i}] = {matrix[j][i]!r})"
                )
    eigenvalues = np.linalg.eigvalsh(np.array(matrix))
    if eigenvalues[0] < -_PSD_TOL * eigenvalues[-1]:
        raise ModelError(f"cosine: must be positive semi-definite (smallest eigenvalue {eigenvalues[0]:.3g})")
    return matrix


# ---------------------------------------------------------------------- files


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ModelError(f"{path}: unsupported model file suffix {path.suffix!r} (allowed: {', '.join(_SUFFIXES)})")
    return suffix


def load_model(path: str | os.PathLike[str]) -> Model:
    """Read a model file, TOML (``.toml``) or JSON (``.json``), with the schema of ``examples/README.md``.

    Raises
    ------
    ModelError
        For another suffix, a file that cannot be read or parsed (the message gives the path and the
        reason on one line) or an invalid model (the message gives the path and the offending key).
    """
    path = Path(path)
    suffix = _suffix(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ModelError(f"{path}: not UTF-8 text: {exc}") from exc
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: invalid {suffix[1:].upper()}: {exc}") from exc
    try:
        return Model.from_dict(data)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from exc


def _toml_string(s: str) -> str:
    """A TOML basic string for ``s`` (quote, backslash and control characters escaped)."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _to_toml(model: Model) -> str:
    """The model as TOML; floats are written by ``repr``, which TOML reads back exactly."""
    rows = ", ".join("[" + ", ".join(repr(x) for x in row) + "]" for row in model.cosine)
    lines = [
        "# diffmix model (schema: examples/README.md)",
        f"activation = {_toml_string(model.activation)}",
        f"t = {model.t!r}",
        f"psi_p = {model.psi_p!r}",
        f"psi_n = {model.psi_n!r}",
        f"cosine = [{rows}]",
    ]
    for w, v, m in zip(model.weights, model.variances, model.centroid_norm2):
        lines += ["", "[[classes]]", f"weight = {w!r}", f"variance = {v!r}", f"centroid_norm2 = {m!r}"]
    return "\n".join(lines) + "\n"


def save_model(model: Model, path: str | os.PathLike[str]) -> None:
    """Write ``model`` to ``path`` as TOML (``.toml``) or JSON (``.json``), atomically.

    The text goes to a temporary file in the same directory, which then replaces ``path``
    (:func:`os.replace`), so readers never see a partial file. ``load_model(path) == model`` exactly.
    """
    path = Path(path)
    suffix = _suffix(path)
    text = _to_toml(model) if suffix == ".toml" else json.dumps(model.to_dict(), indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
