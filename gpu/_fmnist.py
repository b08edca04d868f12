"""Fashion-MNIST: loader, class statistics, Sneaker-partner pair subsets and the Model of a pair.

The real data come from Debian's package ``dataset-fashion-mnist`` (``shared/data-sources.md`` §1),
which installs the four original IDX files, gzipped, in ``/usr/share/datasets/fashion-mnist``.
:func:`load_fashion_mnist` looks, in this order, at an explicit path, ``$FASHION_MNIST_DIR`` and that
folder. It reads a folder of the four IDX files (gzipped or not; ``train-images-idx3-ubyte`` or
``train-images.idx3-ubyte``) or an ``.npz`` with the Keras keys ``x_train, y_train, x_test, y_test``,
checks magic numbers, shapes, body lengths and label range, and (``verify=True``) the SHA-256 of the
decompressed IDX bytes of the genuine files.

:func:`class_statistics` gives per class the descriptors of the paper (arXiv 2605.06367, Sec. 4 and
App. J): mean per-pixel variance, centroid norm and cosine to the Sneaker centroid, on pixels scaled
to [0, 1]. :func:`pair_subset` draws a binary Sneaker-vs-partner training set with App. J.1's
preprocessing, and :func:`pair_model` maps a pair to a two-class :class:`~diffmix.theory.Model`
(Result 4, Fig. 6).

Only NumPy and the standard library are used here; no torch.
"""
from __future__ import annotations

import gzip
import hashlib
import math
import numbers
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from diffmix.theory import Model

__all__ = ["APT_INSTALL", "CLASS_NAMES", "DEFAULT_DIR", "FashionMNIST", "FashionMNISTError", "ClassStatistics",
           "PairSubset", "SNEAKER", "class_statistics", "load_fashion_mnist", "pair_model", "pair_subset"]

#: Class names, labels 0..9 (Zalando's README).
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
#: Label of the Sneaker class, the reference class of the paper (lowest pixel variance).
SNEAKER = 7
#: Where the Debian package installs the files.
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
#: The command that installs the real data (as root).
APT_INSTALL = "apt-get update && apt-get install -y dataset-fashion-mnist"
#: Environment variable naming a folder of IDX files or an .npz.
ENV_VAR = "FASHION_MNIST_DIR"

_SIDE = 28
_N_CLASSES = 10
#: The four files: key, IDX stem, alternative stem, ndim, genuine item count.
_FILES = (
    ("x_train", "train-images-idx3-ubyte", "train-images.idx3-ubyte", 3, 60000),
    ("y_train", "train-labels-idx1-ubyte", "train-labels.idx1-ubyte", 1, 60000),
    ("x_test", "t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte", 3, 10000),
    ("y_test", "t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte", 1, 10000),
)
#: SHA-256 of the decompressed genuine IDX files (data-sources.md, "Checksums"; same as upstream).
SHA256 = {
    "x_train": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "y_train": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "x_test": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "y_test": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
_GENUINE_COUNT = {key: count for key, _, _, _, count in _FILES}


class FashionMNISTError(ValueError):
    """Missing or corrupt Fashion-MNIST files; the message names the file, the problem and the remedy."""


def _remedy() -> str:
    return (f"install the real data with `{APT_INSTALL}` (as root), or point ${ENV_VAR} (or --data) to a folder "
            "of the four IDX files (.gz or not) or to an .npz with keys x_train, y_train, x_test, y_test")


def _corrupt(where: object, problem: str) -> FashionMNISTError:
    return FashionMNISTError(f"{where}: {problem}; the file is corrupt or not Fashion-MNIST: {_remedy()}")


# ---------------------------------------------------------------------- loading


@dataclass(frozen=True, eq=False)
class FashionMNIST:
    """The Fashion-MNIST arrays as read from disk.

    Attributes
    ----------
    x_train : ndarray, shape (n_train, 28, 28), uint8
        Training images, pixels 0..255 (60000 for the genuine data).
    y_train : ndarray, shape (n_train,), uint8
        Training labels 0..9.
    x_test : ndarray, shape (n_test, 28, 28), uint8
        Test images (10000 for the genuine data).
    y_test : ndarray, shape (n_test,), uint8
        Test labels 0..9.
    class_names : tuple of str, length 10
    source : Path
        The folder or .npz file read.
    verified : bool
        True if all four arrays matched the SHA-256 of the genuine files.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: Path
    verified: bool


def _idx_bytes(array: np.ndarray) -> bytes:
    """The IDX file of a uint8 array: magic 0x0000080<ndim>, big-endian uint32 dims, then the data."""
    header = bytes((0, 0, 0x08, array.ndim)) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _sha256_array(array: np.ndarray) -> str:
    return hashlib.sha256(_idx_bytes(array)).hexdigest()


def _parse_idx(data: bytes, where: object, ndim: int) -> np.ndarray:
    """A uint8 array from IDX bytes, checking magic number, ndim and body length."""
    kind = "images" if ndim == 3 else "labels"
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or data[3] != ndim:
        magic = data[:4].hex() if len(data) >= 4 else f"only {len(data)} bytes"
        raise _corrupt(where, f"bad IDX magic number {magic} (expected 0000080{ndim}, unsigned-byte {kind}, "
                              f"{ndim} dimension{'s' if ndim > 1 else ''})")
    start = 4 + 4 * ndim
    if len(data) < start:
        raise _corrupt(where, f"truncated IDX header ({len(data)} bytes, need {start})")
    shape = tuple(int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    expected = math.prod(shape)
    body = len(data) - start
    if body != expected:
        what = "truncated" if body < expected else "trailing bytes after the data"
        raise _corrupt(where, f"{what}: body has {body} bytes, the header's shape {shape} needs {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(shape).copy()


def _read_file(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise _corrupt(path, f"cannot read ({exc})") from exc


def _find(folder: Path, stem: str, alternative: str) -> Path:
    for name in (stem, stem + ".gz", alternative, alternative + ".gz"):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    raise FashionMNISTError(f"{folder}: missing {stem}(.gz) (or {alternative}(.gz)): {_remedy()}")


def _check_shapes(arrays: dict[str, np.ndarray], where: dict[str, object]) -> None:
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (_SIDE, _SIDE):
            raise _corrupt(where[f"x_{split}"], f"images of shape {x.shape}, expected (n, 28, 28)")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise _corrupt(where[f"y_{split}"], f"labels of shape {y.shape} do not match the "
                                                f"{x.shape[0]} images of {where[f'x_{split}']}")
        if x.shape[0] == 0:
            raise _corrupt(where[f"x_{split}"], "no images")
        if y.size and int(y.max()) >= _N_CLASSES:
            bad = int(np.argmax(y >= _N_CLASSES))
            raise _corrupt(where[f"y_{split}"], f"label {int(y[bad])} at index {bad} is outside 0..9")


def _verify(arrays: dict[str, np.ndarray], where: dict[str, object]) -> bool:
    """Check the SHA-256 of arrays of the genuine size; True if all four were checked and matched."""
    checked = 0
    for key, array in arrays.items():
        if array.shape[0] != _GENUINE_COUNT[key]:
            continue
        digest = _sha256_array(array)
        if digest != SHA256[key]:
            raise _corrupt(where[key], f"SHA-256 of the decompressed IDX bytes is {digest}, the genuine file's is "
                                       f"{SHA256[key]} (load with verify=False to accept other data of this size)")
        checked += 1
    return checked == len(arrays)


def _load_npz(path: Path) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [key for key, *_ in _FILES if key not in f.files]
            if missing:
                raise _corrupt(path, f"missing key(s) {', '.join(missing)} (has {', '.join(f.files) or 'none'}; "
                                     "expected the Keras keys x_train, y_train, x_test, y_test)")
            raw = {key: f[key] for key, *_ in _FILES}
    except FashionMNISTError:
        raise
    except (OSError, ValueError, EOFError, zlib.error) as exc:
        raise _corrupt(path, f"cannot read as .npz ({exc})") from exc
    arrays, where = {}, {}
    for key, _, _, ndim, _ in _FILES:
        array, where[key] = raw[key], f"{path}[{key}]"
        if not np.issubdtype(array.dtype, np.integer):
            raise _corrupt(where[key], f"dtype {array.dtype}, expected uint8")
        if array.size and (int(array.min()) < 0 or int(array.max()) > 255):
            raise _corrupt(where[key], f"values outside 0..255 (min {int(array.min())}, max {int(array.max())})")
        if ndim == 3 and array.ndim == 2 and array.shape[1] == _SIDE * _SIDE:
            array = array.reshape(-1, _SIDE, _SIDE)
        if array.ndim != ndim:
            raise _corrupt(where[key], f"shape {array.shape}, expected {ndim} dimension(s)")
        arrays[key] = np.ascontiguousarray(array, dtype=np.uint8).copy()
    return arrays, where


def _resolve(path: str | os.PathLike[str] | None) -> Path:
    if path is not None:
        resolved, origin = Path(path), "the path given"
    elif os.environ.get(ENV_VAR):
        resolved, origin = Path(os.environ[ENV_VAR]), f"${ENV_VAR}"
    else:
        resolved, origin = DEFAULT_DIR, "the default folder"
    if not resolved.exists():
        raise FashionMNISTError(f"{resolved} ({origin}): no such file or folder: {_remedy()}")
    return resolved


def load_fashion_mnist(path: str | os.PathLike[str] | None = None, *, verify: bool = True) -> FashionMNIST:
    """Read Fashion-MNIST from a folder of IDX files or an .npz (``shared/data-sources.md`` §1).

    Parameters
    ----------
    path : path-like, optional
        A folder holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each gzipped or not; the
        ``train-images.idx3-ubyte`` spelling is accepted too), or an ``.npz`` with keys ``x_train,
        y_train, x_test, y_test`` (Keras layout; images (n, 28, 28) or (n, 784)). None (the default)
        means ``$FASHION_MNIST_DIR`` if set, else ``/usr/share/datasets/fashion-mnist``.
    verify : bool, keyword-only
        Check every array of the genuine size (60000 train, 10000 test items) against the SHA-256 of
        the decompressed genuine IDX file (an .npz is hashed as the IDX bytes it stands for). Arrays of
        another size (subsets, test fixtures, other data) cannot be checked and are only validated
        structurally; ``FashionMNIST.verified`` says whether all four were checked.

    Returns
    -------
    FashionMNIST
        x_train (n_train, 28, 28), y_train (n_train,), x_test (n_test, 28, 28), y_test (n_test,), all
        uint8 and writable.

    Raises
    ------
    FashionMNISTError
        Missing path or file, unreadable gzip/npz, bad IDX magic number, truncated or over-long body,
        images not 28 x 28, label count not matching the images, a label outside 0..9, or (verify)
        a wrong checksum. The message names the file and the remedy (the apt line and
        ``$FASHION_MNIST_DIR``).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> d = tempfile.mkdtemp()
    >>> x, y = np.zeros((3, 28, 28), np.uint8), np.array([7, 0, 9], np.uint8)
    >>> np.savez(d + "/f.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    >>> data = load_fashion_mnist(d + "/f.npz")
    >>> data.x_train.shape, data.y_train.tolist(), data.verified
    ((3, 28, 28), [7, 0, 9], False)
    """
    source = _resolve(path)
    if source.is_dir():
        arrays, where = {}, {}
        for key, stem, alternative, ndim, _ in _FILES:
            file = _find(source, stem, alternative)
            where[key] = file
            arrays[key] = _parse_idx(_read_file(file), file, ndim)
    elif source.suffix.lower() == ".npz":
        arrays, where = _load_npz(source)
    else:
        raise FashionMNISTError(f"{source}: not a folder of IDX files nor an .npz: {_remedy()}")
    _check_shapes(arrays, where)
    verified = _verify(arrays, where) if verify else False
    return FashionMNIST(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], CLASS_NAMES,
                        source, verified)


# ---------------------------------------------------------------------- class statistics


@dataclass(frozen=True, eq=False)
class ClassStatistics:
    """Per-class descriptors of an image set on pixels scaled to [0, 1] (see :func:`class_statistics`).

    Attributes
    ----------
    labels : ndarray, shape (C,), int64
        The classes 0..C-1.
    names : tuple of str, length C
    counts : ndarray, shape (C,), int64
        Images per class.
    variance : ndarray, shape (C,)
        Mean over the d pixels of the per-pixel variance within the class (ddof = 0).
    centroid_norm2 : ndarray, shape (C,)
        ||mu_c - mu||^2 / d.
    cosine_to_reference : ndarray, shape (C,)
        cos(mu_c - mu, mu_ref - mu); NaN where a centered centroid is zero.
    cosine : ndarray, shape (C, C)
        Cosines between all centered centroids mu_c - mu (NaN rows/columns for zero ones).
    centroids : ndarray, shape (C, d)
        Class mean images mu_c, flattened.
    mean_image : ndarray, shape (d,)
        mu, the mean image of the whole set.
    reference : int
        The reference label (Sneaker, 7).
    """

    labels: np.ndarray
    names: tuple[str, ...]
    counts: np.ndarray
    variance: np.ndarray
    centroid_norm2: np.ndarray
    cosine_to_reference: np.ndarray
    cosine: np.ndarray
    centroids: np.ndarray
    mean_image: np.ndarray
    reference: int

    @property
    def cosine_to_sneaker(self) -> np.ndarray:
        """Alias of ``cosine_to_reference`` (the reference is Sneaker by default)."""
        return self.cosine_to_reference

    def to_dict(self) -> dict:
        """``{"classes": [{"label", "name", "variance", "centroid_norm2", "cosine_to_sneaker"}, ...]}``.

        The format of ``diffmix fmnist stats --json`` (issue 8 item 5); NaN is written as None.
        """
        def number(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {"classes": [
            {"label": int(k), "name": name, "variance": number(v), "centroid_norm2": number(m),
             "cosine_to_sneaker": number(c)}
            for k, name, v, m, c in zip(self.labels, self.names, self.variance, self.centroid_norm2,
                                        self.cosine_to_reference)]}


def _scaled(x: np.ndarray) -> np.ndarray:
    """Images as float64 (n, d): uint8 divided by 255, floats taken as already scaled."""
    x = np.asarray(x)
    flat = x.reshape(x.shape[0], -1)
    if flat.dtype == np.uint8:
        return flat.astype(np.float64) / 255.0
    if not np.issubdtype(flat.dtype, np.floating):
        raise ValueError(f"x: dtype {flat.dtype}; expected uint8 pixels 0..255 or floats already scaled to [0, 1]")
    return flat.astype(np.float64)


def _labels(y: np.ndarray, n: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y: shape {y.shape}, expected ({n},) (one label per image)")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y: dtype {y.dtype}, expected integer labels")
    if n and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"y: labels must lie in 0..{n_classes - 1} (min {int(y.min())}, max {int(y.max())})")
    return y.astype(np.int64)


def class_statistics(x: np.ndarray, y: np.ndarray, *, reference: int = SNEAKER,
                     names: tuple[str, ...] | None = None, n_classes: int = _N_CLASSES) -> ClassStatistics:
    """Per-class variance, centroid norm and cosine to the reference class (paper Sec. 4, App. J; issue 8).

    With pixels scaled to [0, 1], d pixels, mu_c the mean image of class c and mu the mean image of
    the whole set:

    * variance_c = (1/d) sum_i Var(x_i | c), the mean per-pixel variance (ddof = 0);
    * centroid_norm2_c = ||mu_c - mu||^2 / d;
    * cosine_to_reference_c = cos(mu_c - mu, mu_ref - mu), NaN if either vector is zero.

    Parameters
    ----------
    x : ndarray, shape (n, 28, 28) or (n, d)
        Images: uint8 (divided by 255) or floats taken as already scaled to [0, 1].
    y : ndarray, shape (n,)
        Integer labels in 0..n_classes-1; every class must occur.
    reference : int, keyword-only
        The reference class (Sneaker, 7).
    names : tuple of str, optional
        Class names (default: Fashion-MNIST's when n_classes is 10, else "class k").
    n_classes : int, keyword-only

    Returns
    -------
    ClassStatistics

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([[[0]], [[255]], [[51]], [[51]]], np.uint8)   # d = 1
    >>> s = class_statistics(x, np.array([0, 0, 1, 1]), reference=1, n_classes=2)
    >>> s.variance.round(4).tolist(), s.centroid_norm2.round(4).tolist(), s.cosine_to_reference.tolist()
    ([0.25, 0.0], [0.0225, 0.0225], [-1.0, 1.0])
    """
    flat = _scaled(x)
    n, d = flat.shape
    labels = _labels(y, n, n_classes)
    if not (isinstance(reference, numbers.Integral) and 0 <= reference < n_classes):
        raise ValueError(f"reference = {reference!r}: must be a label in 0..{n_classes - 1}")
    if names is None:
        names = CLASS_NAMES if n_classes == _N_CLASSES else tuple(f"class {k}" for k in range(n_classes))
    if len(names) != n_classes:
        raise ValueError(f"names: {len(names)} names for {n_classes} classes")
    counts = np.bincount(labels, minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(f"y: class(es) {np.flatnonzero(counts == 0).tolist()} have no images")
    centroids = np.empty((n_classes, d))
    variance = np.empty(n_classes)
    for c in range(n_classes):
        members = flat[labels == c]
        centroids[c] = members.mean(axis=0)
        variance[c] = np.mean((members - centroids[c]) ** 2)
    mean_image = flat.mean(axis=0)
    centered = centroids - mean_image
    norm2 = np.einsum("cd,cd->c", centered, centered)
    norms = np.sqrt(norm2)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = (centered @ centered.T) / np.outer(norms, norms)
    cosine[np.outer(norms, norms) == 0] = np.nan
    cosine = np.clip(cosine, -1.0, 1.0)
    np.fill_diagonal(cosine, np.where(norms > 0, 1.0, np.nan))
    return ClassStatistics(np.arange(n_classes), tuple(names), counts, variance, norm2 / d,
                           cosine[:, reference].copy(), cosine, centroids, mean_image, int(reference))


# ---------------------------------------------------------------------- pair subsets and models


@dataclass(frozen=True, eq=False)
class PairSubset:
    """A binary Sneaker-vs-partner training set with App. J.1's preprocessing (see :func:`pair_subset`).

    Attributes
    ----------
    images : ndarray, shape (size, 1, pad_to, pad_to), float32
        Preprocessed images: (x/255 - mean) / std, padded symmetrically with ``pad_value``.
    pixels : ndarray, shape (size, 28, 28), uint8
        The same images unprocessed (for nearest-neighbour distances on the 784 true pixels).
    labels : ndarray, shape (size,), int64
        0 = Sneaker, 1 = partner (the class order of :func:`pair_model`).
    indices : ndarray, shape (size,), int64
        Rows of the source arrays, ascending.
    partner : int
    sneaker_fraction : float
    counts : tuple of int
        (n_sneaker, n_partner).
    mean, std : float
        The scalar standardization constants (pixels in [0, 1] units) of this subset.
    pad_value : float
        The standardized value of a black pixel, -mean/std, used for the padding.
    pad : int
        Pixels added on each side (2 for 32 x 32, 0 for none).
    seed : int
    """

    images: np.ndarray
    pixels: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    partner: int
    sneaker_fraction: float
    counts: tuple[int, int]
    mean: float
    std: float
    pad_value: float
    pad: int
    seed: int

    def to_unit(self, images: np.ndarray) -> np.ndarray:
        """Undo the preprocessing: (..., pad_to, pad_to) standardized images -> (..., 28, 28) in [0, 1] units.

        The padding is cropped and ``x * std + mean`` applied; values are not clipped.
        """
        images = np.asarray(images, dtype=np.float64)
        if self.pad:
            images = images[..., self.pad:-self.pad, self.pad:-self.pad]
        return images * self.std + self.mean

    def standardize(self, pixels: np.ndarray) -> np.ndarray:
        """Other (n, 28, 28) uint8 images in this subset's units: (x/255 - mean) / std, padded like ``images``.

        For a classifier trained on more images of the pair than the (reduced) DDPM training set
        but fed the generated samples, which are in this subset's units.
        """
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[1:] != (_SIDE, _SIDE):
            raise ValueError(f"pixels: {pixels.dtype} array of shape {pixels.shape}; expected uint8 images "
                             "(n, 28, 28)")
        standardized = (pixels.astype(np.float64) / 255.0 - self.mean) / self.std
        pad = self.pad
        images = np.pad(standardized, ((0, 0), (pad, pad), (pad, pad)), constant_values=self.pad_value)
        return images[:, None].astype(np.float32)


def _check_fraction(sneaker_fraction: object) -> float:
    if not isinstance(sneaker_fraction, numbers.Real) or not 0.0 < float(sneaker_fraction) < 1.0:
        raise ValueError(f"sneaker_fraction = {sneaker_fraction!r}: must be a number in (0, 1), e.g. 0.25, 0.5, 0.75")
    return float(sneaker_fraction)


def _check_partner(partner: object, n_classes: int = _N_CLASSES) -> int:
    if (not isinstance(partner, numbers.Integral) or isinstance(partner, bool) or not 0 <= partner < n_classes
            or partner == SNEAKER):
        raise ValueError(f"partner = {partner!r}: must be a label in 0..{n_classes - 1} other than Sneaker ({SNEAKER})")
    return int(partner)


def pair_subset(x: np.ndarray, y: np.ndarray, partner: int, *, sneaker_fraction: float, size: int = 8000,
                seed: int, pad_to: int | None = 32) -> PairSubset:
    """The Sneaker-vs-partner training set of App. J.1 at a given Sneaker proportion.

    n_sneaker = round(sneaker_fraction * size) Sneaker images and size - n_sneaker partner images are
    drawn without replacement from ``x`` (the training set), uniformly, with
    ``numpy.random.default_rng(seed)`` (Sneaker first, then partner). With 6000 images per class and
    size 8000, the proportions 25/50/75 % fit exactly.

    Preprocessing (App. J.1: "class-pair mean subtracted, unit standard deviation", shared by the
    DDPM and the classifier): pixels scaled to [0, 1], then one scalar mean and one scalar standard
    deviation, both over all pixels of this subset, are used to standardize, x' = (x - mean) / std.
    The images are then padded symmetrically to ``pad_to`` x ``pad_to`` (32: the four-level U-Net
    needs a side divisible by 8; issue 8 item 2) with the standardized value of a black pixel,
    -mean/std, so the frame continues the background.

    Parameters
    ----------
    x : ndarray, shape (n, 28, 28), uint8
    y : ndarray, shape (n,), integer labels 0..9
    partner : int
        The partner label (0..9, not 7).
    sneaker_fraction : float, keyword-only
        In (0, 1); the paper uses 0.25, 0.5, 0.75.
    size : int, keyword-only
        Total images (8000 in the paper).
    seed : int, keyword-only
    pad_to : int or None, keyword-only
        Side after padding (>= 28, and pad_to - 28 even); None or 28 for no padding.

    Returns
    -------
    PairSubset

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8); y = np.repeat([7, 8], 20)
    >>> s = pair_subset(x, y, 8, sneaker_fraction=0.25, size=16, seed=1)
    >>> s.images.shape, s.counts, int(s.labels.sum())
    ((16, 1, 32, 32), (4, 12), 12)
    >>> bool(abs(s.images[..., 2:30, 2:30].mean()) < 1e-6)
    True
    """
    partner = _check_partner(partner)
    fraction = _check_fraction(sneaker_fraction)
    if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 2:
        raise ValueError(f"size = {size!r}: must be an integer >= 2")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed = {seed!r}: must be an integer >= 0")
    side = _SIDE if pad_to is None else pad_to
    if not isinstance(side, numbers.Integral) or side < _SIDE or (side - _SIDE) % 2:
        raise ValueError(f"pad_to = {pad_to!r}: must be None or an integer >= 28 with pad_to - 28 even")
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (_SIDE, _SIDE):
        raise ValueError(f"x: {x.dtype} array of shape {x.shape}; expected uint8 images (n, 28, 28)")
    labels_all = _labels(y, x.shape[0], _N_CLASSES)
    n_sneaker = int(round(fraction * size))
    counts = (n_sneaker, int(size) - n_sneaker)
    if min(counts) < 1:
        raise ValueError(f"sneaker_fraction = {fraction!r}, size = {size}: each class needs at least one image "
                         f"(counts {counts})")
    rng = np.random.default_rng(int(seed))
    chosen = []
    for label, count in zip((SNEAKER, partner), counts):
        pool = np.flatnonzero(labels_all == label)
        if pool.size < count:
            raise ValueError(f"class {label} ({CLASS_NAMES[label]}): {count} images requested, only {pool.size} "
                             f"available (size = {size}, sneaker_fraction = {fraction})")
        chosen.append(rng.choice(pool, size=count, replace=False))
    indices = np.sort(np.concatenate(chosen))
    pixels = x[indices].copy()
    labels = (labels_all[indices] == partner).astype(np.int64)
    unit = pixels.astype(np.float64) / 255.0
    mean, std = float(unit.mean()), float(unit.std())
    if std == 0.0:
        raise ValueError("pair_subset: the subset's pixels are all equal; cannot standardize")
    standardized = (unit - mean) / std
    pad = (side - _SIDE) // 2
    pad_value = -mean / std
    images = np.pad(standardized, ((0, 0), (pad, pad), (pad, pad)), constant_values=pad_value)
    return PairSubset(images[:, None].astype(np.float32), pixels, labels, indices, partner, fraction, counts,
                      mean, std, pad_value, pad, int(seed))


def pair_model(stats: ClassStatistics, partner: int, sneaker_fraction: float, *, t: float, psi_p: float,
               psi_n: float, activation: str = "tanh", normalize: str = "pair_mean") -> Model:
    """The two-class Model of a Sneaker-partner pair (paper Result 4, Fig. 6; issue 8 item 4).

    Class 0 is Sneaker, class 1 the partner (as in :class:`PairSubset`). With v_c, m_c =
    ``stats.variance``, ``stats.centroid_norm2`` (pixels in [0, 1], centroids centered at the mean
    training image mu) and rho = (sneaker_fraction, 1 - sneaker_fraction):

    * weights = rho;
    * variances = v_c / s and centroid_norm2 = m_c / s, one common scale s;
    * cosine = [[1, c], [c, 1]] with c = cos(mu_sneaker - mu, mu_partner - mu) = the partner's
      ``cosine_to_sneaker``.

    ``normalize="pair_mean"`` (default) takes s = rho_0 v_0 + rho_1 v_1, the pair's mean
    within-class pixel variance, so the model's ``mean_variance`` is 1. Reason: the DDPM sees the
    pair standardized to unit pixel variance (App. J.1), and the theory's diffusion time t is
    measured against an O(1) data variance; one common scale keeps the descriptors Result 4 relies
    on (the variance ratio v_1/v_0, centroid norm relative to variance, cosine) exactly.
    ``normalize="none"`` keeps s = 1 (raw [0, 1] pixel units; variances ~0.02-0.1, small against the
    noise at moderate t).

    Parameters
    ----------
    stats : ClassStatistics
        From :func:`class_statistics` on the training set (reference Sneaker).
    partner : int
        0..9, not 7.
    sneaker_fraction : float
        In (0, 1).
    t, psi_p, psi_n : float, keyword-only
        As for :class:`~diffmix.theory.Model`.
    activation : str, keyword-only
        Default tanh (``theory/notation.md``).
    normalize : {"pair_mean", "none"}, keyword-only

    Returns
    -------
    Model

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.integers(0, 256, (100, 28, 28), dtype=np.uint8); y = np.arange(100) % 10
    >>> m = pair_model(class_statistics(x, y), 8, 0.25, t=0.1, psi_p=4.0, psi_n=2.0)
    >>> m.weights, round(m.mean_variance, 12), m.cosine[0][0]
    ((0.25, 0.75), 1.0, 1.0)
    """
    partner = _check_partner(partner, len(stats.labels))
    fraction = _check_fraction(sneaker_fraction)
    if stats.reference != SNEAKER:
        raise ValueError(f"stats: reference class is {stats.reference}, expected Sneaker ({SNEAKER})")
    weights = (fraction, 1.0 - fraction)
    v = (float(stats.variance[SNEAKER]), float(stats.variance[partner]))
    m = (float(stats.centroid_norm2[SNEAKER]), float(stats.centroid_norm2[partner]))
    if normalize == "pair_mean":
        scale = weights[0] * v[0] + weights[1] * v[1]
    elif normalize == "none":
        scale = 1.0
    else:
        raise ValueError(f"normalize = {normalize!r}: must be 'pair_mean' or 'none'")
    c = float(stats.cosine[SNEAKER, partner])
    if not math.isfinite(c):
        c = 0.0  # a zero centered centroid has no direction; its norm is 0 too, so the cosine is immaterial
    return Model(activation, t, psi_p, psi_n, weights, (v[0] / scale, v[1] / scale), (m[0] / scale, m[1] / scale),
                 ((1.0, c), (c, 1.0)))
