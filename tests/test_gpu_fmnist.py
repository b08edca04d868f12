"""Fashion-MNIST loader, class statistics, pair subsets and pair models (diffmix.gpu._fmnist; issue 8 item 1).

Unit tests write tiny IDX files (raw and gzipped) and .npz files in tmp_path; one test reads the real
files of the Debian package ``dataset-fashion-mnist`` and is skipped when they are absent. Reference
numbers of the real-data test are those of ``shared/data-sources.md`` §1 ("Verification").
"""
import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest

from diffmix.gpu._fmnist import (CLASS_NAMES, DEFAULT_DIR, SNEAKER, FashionMNISTError, class_statistics,
                                 load_fashion_mnist, pair_model, pair_subset)
from diffmix.gpu._fmnist_cli import fmnist_main

#: Floating-point agreement of two float64 computations of the same statistic: relative.
STATS_RTOL = 1e-12

STEMS = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
         "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def idx_bytes(array, magic_dtype=0x08):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes((0, 0, magic_dtype, array.ndim)) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def tiny_arrays(seed=0, per_class_train=3, per_class_test=1):
    rng = np.random.default_rng(seed)
    y_train = np.tile(np.arange(10, dtype=np.uint8), per_class_train)
    y_test = np.tile(np.arange(10, dtype=np.uint8), per_class_test)
    return {"x_train": rng.integers(0, 256, (y_train.size, 28, 28), dtype=np.uint8), "y_train": y_train,
            "x_test": rng.integers(0, 256, (y_test.size, 28, 28), dtype=np.uint8), "y_test": y_test}


def write_folder(folder, arrays, *, gz=False, dotted=False, override=None):
    """Write the four IDX files; ``override`` maps a key to raw bytes written instead of the array."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    override = override or {}
    for key, stem in STEMS.items():
        if dotted:
            stem = stem.replace("-idx", ".idx")
        data = override.get(key, idx_bytes(arrays[key]) if key in arrays else None)
        path = folder / (stem + (".gz" if gz else ""))
        if gz:
            with gzip.open(path, "wb") as f:
                f.write(data)
        else:
            path.write_bytes(data)
    return folder


def assert_same(data, arrays):
    for key in STEMS:
        got = getattr(data, key)
        assert got.dtype == np.uint8 and got.flags.writeable
        np.testing.assert_array_equal(got, arrays[key])


# ---------------------------------------------------------------------- loading


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dotted", [False, True])
def test_load_idx_folder(tmp_path, gz, dotted):
    arrays = tiny_arrays()
    data = load_fashion_mnist(write_folder(tmp_path / "d", arrays, gz=gz, dotted=dotted))
    assert_same(data, arrays)
    assert data.class_names == CLASS_NAMES and data.source == tmp_path / "d"
    assert data.verified is False  # tiny files cannot be checked against the genuine SHA-256


def test_load_npz_keras_and_flat(tmp_path):
    arrays = tiny_arrays()
    np.savez_compressed(tmp_path / "a.npz", **arrays)
    assert_same(load_fashion_mnist(tmp_path / "a.npz"), arrays)
    flat = dict(arrays, x_train=arrays["x_train"].reshape(-1, 784), x_test=arrays["x_test"].astype(np.int64))
    np.savez(tmp_path / "b.npz", **flat)
    assert_same(load_fashion_mnist(tmp_path / "b.npz"), arrays)


def test_search_order(tmp_path, monkeypatch):
    a, b = tiny_arrays(seed=1), tiny_arrays(seed=2)
    write_folder(tmp_path / "env", a)
    write_folder(tmp_path / "explicit", b)
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "env"))
    assert_same(load_fashion_mnist(), a)
    assert_same(load_fashion_mnist(tmp_path / "explicit"), b)  # an explicit path wins over the variable
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tmp_path / "missing"))
    with pytest.raises(FashionMNISTError, match=r"missing \(\$FASHION_MNIST_DIR\): no such file"):
        load_fashion_mnist()


def test_missing_data_names_the_remedy(tmp_path):
    with pytest.raises(FashionMNISTError) as info:
        load_fashion_mnist(tmp_path / "nowhere")
    message = str(info.value)
    assert "apt-get install -y dataset-fashion-mnist" in message and "FASHION_MNIST_DIR" in message
    folder = write_folder(tmp_path / "d", tiny_arrays())
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FashionMNISTError, match="missing t10k-labels-idx1-ubyte.*apt-get"):
        load_fashion_mnist(folder)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(FashionMNISTError, match="not a folder of IDX files nor an .npz"):
        load_fashion_mnist(tmp_path / "x.txt")


def _corrupt_cases():
    a = tiny_arrays()
    good_images = idx_bytes(a["x_train"])
    bad_labels = a["y_train"].copy()
    bad_labels[4] = 10
    return {
        "bad magic (dtype byte)": ({"x_train": idx_bytes(a["x_train"], magic_dtype=0x09)}, "bad IDX magic number"),
        "bad magic (ndim)": ({"y_train": idx_bytes(a["y_train"][:, None])}, "bad IDX magic number 00000802"),
        "truncated body": ({"x_train": good_images[:-5]}, "truncated: body has"),
        "trailing bytes": ({"x_test": idx_bytes(a["x_test"]) + b"\0"}, "trailing bytes"),
        "truncated header": ({"y_test": b"\0\0\x08\x01\0\0"}, "truncated IDX header"),
        "empty file": ({"y_test": b""}, "only 0 bytes"),
        "label out of range": ({"y_train": idx_bytes(bad_labels)}, "label 10 at index 4 is outside 0..9"),
        "label count mismatch": ({"y_train": idx_bytes(a["y_train"][:-1])}, "do not match the 30 images"),
        "images not 28x28": ({"x_test": idx_bytes(np.zeros((10, 27, 28), np.uint8))},
                             r"images of shape \(10, 27, 28\), expected \(n, 28, 28\)"),
    }


@pytest.mark.parametrize("case", sorted(_corrupt_cases()))
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_idx_raises(tmp_path, case, gz):
    override, pattern = _corrupt_cases()[case]
    folder = write_folder(tmp_path / "d", tiny_arrays(), gz=gz, override=override)
    with pytest.raises(FashionMNISTError, match=pattern) as info:
        load_fashion_mnist(folder)
    message = str(info.value)
    bad_key = next(iter(override))
    assert STEMS[bad_key] in message, "the error names the bad file"
    assert "apt-get install -y dataset-fashion-mnist" in message and "FASHION_MNIST_DIR" in message


def test_corrupt_gzip_raises(tmp_path):
    folder = write_folder(tmp_path / "d", tiny_arrays(), gz=True)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(FashionMNISTError, match="train-images-idx3-ubyte.gz: cannot read"):
        load_fashion_mnist(folder)


def test_bad_checksum_of_a_full_size_file(tmp_path):
    """A file of the genuine size (60000 train images) with the wrong bytes fails verify=True."""
    a = tiny_arrays()
    y_train = np.tile(np.arange(10, dtype=np.uint8), 6000)
    arrays = dict(a, x_train=np.zeros((60000, 28, 28), np.uint8), y_train=y_train)
    folder = write_folder(tmp_path / "d", arrays)
    with pytest.raises(FashionMNISTError, match="train-images-idx3-ubyte: SHA-256 of the decompressed IDX bytes is"):
        load_fashion_mnist(folder)
    data = load_fashion_mnist(folder, verify=False)
    assert data.x_train.shape == (60000, 28, 28) and data.verified is False
    np.savez(tmp_path / "f.npz", **arrays)  # an .npz is hashed as the IDX bytes it stands for
    with pytest.raises(FashionMNISTError, match=r"f.npz\[x_train\]: SHA-256"):
        load_fashion_mnist(tmp_path / "f.npz")


def test_corrupt_npz_raises(tmp_path):
    a = tiny_arrays()
    np.savez(tmp_path / "missing.npz", x_train=a["x_train"], y_train=a["y_train"])
    with pytest.raises(FashionMNISTError, match=r"missing key\(s\) x_test, y_test"):
        load_fashion_mnist(tmp_path / "missing.npz")
    np.savez(tmp_path / "float.npz", **dict(a, x_train=a["x_train"] / 255.0))
    with pytest.raises(FashionMNISTError, match=r"float.npz\[x_train\]: dtype float64"):
        load_fashion_mnist(tmp_path / "float.npz")
    np.savez(tmp_path / "range.npz", **dict(a, y_test=a["y_test"] + 5))
    with pytest.raises(FashionMNISTError, match=r"range.npz\[y_test\]: label 10"):
        load_fashion_mnist(tmp_path / "range.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(FashionMNISTError, match="junk.npz: cannot read as .npz"):
        load_fashion_mnist(tmp_path / "junk.npz")


# ---------------------------------------------------------------------- class statistics


def test_class_statistics_constant_classes():
    """Class c has every pixel equal to a_c: variance 0, centroid_norm2 = (a_c - abar)^2, cosine = sign."""
    values = np.array([0, 10, 20, 30, 40, 50, 60, 90, 200, 255], np.uint8)
    counts = np.arange(1, 11)
    y = np.repeat(np.arange(10), counts)
    x = np.broadcast_to(values[y][:, None, None], (y.size, 28, 28)).copy()
    s = class_statistics(x, y)
    a = values / 255.0
    abar = np.sum(counts * a) / counts.sum()
    np.testing.assert_array_equal(s.counts, counts)
    np.testing.assert_allclose(s.variance, 0.0, atol=1e-30)
    np.testing.assert_allclose(s.centroid_norm2, (a - abar) ** 2, rtol=STATS_RTOL)
    np.testing.assert_allclose(s.cosine_to_sneaker, np.sign(a - abar) * np.sign(a[SNEAKER] - abar), rtol=1e-13)
    assert s.names == CLASS_NAMES and s.reference == SNEAKER


def test_class_statistics_against_numpy():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 10, 500)
    y[:10] = np.arange(10)
    x = rng.integers(0, 256, (500, 28, 28), dtype=np.uint8)
    s = class_statistics(x, y)
    flat = x.reshape(500, -1) / 255.0
    mu = flat.mean(axis=0)
    ref = flat[y == SNEAKER].mean(axis=0) - mu
    for c in range(10):
        members = flat[y == c]
        assert s.variance[c] == pytest.approx(np.var(members, axis=0).mean(), rel=STATS_RTOL)
        centered = members.mean(axis=0) - mu
        assert s.centroid_norm2[c] == pytest.approx(centered @ centered / 784, rel=STATS_RTOL)
        cos = centered @ ref / np.linalg.norm(centered) / np.linalg.norm(ref)
        assert s.cosine_to_sneaker[c] == pytest.approx(cos, rel=STATS_RTOL, abs=1e-14)
    floats = class_statistics(x / 255.0, y)  # floats are taken as already scaled to [0, 1]
    np.testing.assert_allclose(floats.variance, s.variance, rtol=STATS_RTOL)
    assert s.to_dict()["classes"][7] == {"label": 7, "name": "Sneaker", "variance": float(s.variance[7]),
                                         "centroid_norm2": float(s.centroid_norm2[7]), "cosine_to_sneaker": 1.0}


def test_class_statistics_errors():
    x = np.zeros((4, 28, 28), np.uint8)
    with pytest.raises(ValueError, match="no images"):
        class_statistics(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"labels must lie in 0..9"):
        class_statistics(x, np.array([0, 1, 2, 10]))
    with pytest.raises(ValueError, match="one label per image"):
        class_statistics(x, np.array([0, 1, 2]))


# ---------------------------------------------------------------------- pair subsets and models


def pair_data(per_class=40, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), per_class)
    return rng.integers(0, 256, (y.size, 28, 28), dtype=np.uint8), y


@pytest.mark.parametrize("fraction, counts", [(0.25, (10, 30)), (0.5, (20, 20)), (0.75, (30, 10))])
def test_pair_subset(fraction, counts):
    x, y = pair_data()
    s = pair_subset(x, y, 8, sneaker_fraction=fraction, size=40, seed=5)
    assert s.counts == counts and s.images.shape == (40, 1, 32, 32) and s.images.dtype == np.float32
    np.testing.assert_array_equal(y[s.indices], np.where(s.labels == 1, 8, SNEAKER))
    assert np.all(np.diff(s.indices) > 0) and int((s.labels == 0).sum()) == counts[0]
    np.testing.assert_array_equal(s.pixels, x[s.indices])
    inner = s.images[:, 0, 2:30, 2:30].astype(np.float64)
    assert inner.mean() == pytest.approx(0.0, abs=1e-6) and inner.std() == pytest.approx(1.0, rel=1e-6)
    unit = x[s.indices] / 255.0
    assert s.mean == pytest.approx(unit.mean(), rel=STATS_RTOL) and s.std == pytest.approx(unit.std(), rel=STATS_RTOL)
    frame = np.ones((32, 32), bool)
    frame[2:30, 2:30] = False
    np.testing.assert_allclose(s.images[:, 0][:, frame], np.float32(-s.mean / s.std))
    np.testing.assert_allclose(s.to_unit(s.images[:, 0]), unit, atol=1e-6)
    again = pair_subset(x, y, 8, sneaker_fraction=fraction, size=40, seed=5)
    np.testing.assert_array_equal(again.indices, s.indices)
    other = pair_subset(x, y, 8, sneaker_fraction=fraction, size=40, seed=6)
    assert not np.array_equal(other.indices, s.indices)
    unpadded = pair_subset(x, y, 8, sneaker_fraction=fraction, size=40, seed=5, pad_to=None)
    np.testing.assert_array_equal(unpadded.images[:, 0], s.images[:, 0, 2:30, 2:30])


def test_pair_subset_errors():
    x, y = pair_data()
    with pytest.raises(ValueError, match="other than Sneaker"):
        pair_subset(x, y, SNEAKER, sneaker_fraction=0.5, size=40, seed=0)
    with pytest.raises(ValueError, match=r"class 7 \(Sneaker\): 60 images requested, only 40"):
        pair_subset(x, y, 0, sneaker_fraction=0.75, size=80, seed=0)
    with pytest.raises(ValueError, match="sneaker_fraction"):
        pair_subset(x, y, 0, sneaker_fraction=1.0, size=40, seed=0)
    with pytest.raises(ValueError, match="pad_to"):
        pair_subset(x, y, 0, sneaker_fraction=0.5, size=40, seed=0, pad_to=31)


def test_pair_model():
    x, y = pair_data(per_class=30, seed=4)
    stats = class_statistics(x, y)
    m = pair_model(stats, 8, 0.25, t=0.1, psi_p=4.0, psi_n=2.0)
    v, n2 = stats.variance[[SNEAKER, 8]], stats.centroid_norm2[[SNEAKER, 8]]
    scale = 0.25 * v[0] + 0.75 * v[1]
    assert m.weights == (0.25, 0.75) and m.activation == "tanh" and m.mean_variance == pytest.approx(1.0)
    np.testing.assert_allclose(m.variances, v / scale, rtol=STATS_RTOL)
    np.testing.assert_allclose(m.centroid_norm2, n2 / scale, rtol=STATS_RTOL)
    assert m.cosine[0][1] == m.cosine[1][0] == pytest.approx(stats.cosine_to_sneaker[8], rel=STATS_RTOL)
    raw = pair_model(stats, 8, 0.25, t=0.1, psi_p=4.0, psi_n=2.0, normalize="none")
    np.testing.assert_allclose(raw.variances, v, rtol=STATS_RTOL)
    with pytest.raises(ValueError, match="other than Sneaker"):
        pair_model(stats, SNEAKER, 0.5, t=0.1, psi_p=4.0, psi_n=2.0)
    with pytest.raises(ValueError, match="normalize"):
        pair_model(stats, 8, 0.5, t=0.1, psi_p=4.0, psi_n=2.0, normalize="z")


# ---------------------------------------------------------------------- command line


def test_cli_stats(tmp_path, capsys):
    arrays = tiny_arrays()
    np.savez(tmp_path / "f.npz", **arrays)
    assert fmnist_main(["stats", "--data", str(tmp_path / "f.npz"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = class_statistics(arrays["x_train"], arrays["y_train"]).to_dict()
    assert out == expected and list(out) == ["classes"]
    assert [list(row) for row in out["classes"]] == [["label", "name", "variance", "centroid_norm2",
                                                      "cosine_to_sneaker"]] * 10
    assert fmnist_main(["stats", "--data", str(tmp_path / "f.npz")]) == 0
    text = capsys.readouterr().out
    assert "Ankle boot" in text and "cosine_to_sneaker" in text


def test_cli_exit_2_on_missing_or_corrupt(tmp_path, capsys):
    assert fmnist_main(["stats", "--data", str(tmp_path / "none")]) == 2
    assert "apt-get install -y dataset-fashion-mnist" in capsys.readouterr().err
    folder = write_folder(tmp_path / "d", tiny_arrays(), override={"y_train": b"\0\0\x08\x01\0\0\0\x1e" + b"\0" * 3})
    assert fmnist_main(["stats", "--data", str(folder), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "train-labels-idx1-ubyte: truncated" in captured.err


# ---------------------------------------------------------------------- the real data


def _real_dir():
    env = os.environ.get("FASHION_MNIST_DIR")
    return Path(env) if env else DEFAULT_DIR


@pytest.mark.skipif(not _real_dir().exists(), reason="real Fashion-MNIST absent: "
                    "apt-get update && apt-get install -y dataset-fashion-mnist")
def test_real_fashion_mnist(capsys):
    data = load_fashion_mnist(_real_dir())
    assert data.verified
    assert data.x_train.shape == (60000, 28, 28) and data.x_test.shape == (10000, 28, 28)
    assert data.y_train.shape == (60000,) and data.y_test.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(data.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(data.y_test), [1000] * 10)
    assert data.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert data.y_test[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    class_means = [(data.x_train[data.y_train == c] / 255.0).mean() for c in range(10)]
    np.testing.assert_allclose(class_means, [0.3256, 0.2229, 0.3767, 0.2589, 0.3853, 0.1367, 0.3318, 0.1677,
                                             0.3536, 0.3012], atol=5e-5)  # printed to 4 decimals
    stats = class_statistics(data.x_train, data.y_train)
    assert int(np.argmin(stats.variance)) == SNEAKER  # the paper's reference: lowest pixel variance
    subset = pair_subset(data.x_train, data.y_train, 8, sneaker_fraction=0.75, size=8000, seed=0)
    assert subset.counts == (6000, 2000) and subset.images.shape == (8000, 1, 32, 32)
    assert fmnist_main(["stats", "--data", str(_real_dir())]) == 0
    table = capsys.readouterr().out
    with capsys.disabled():
        print("\n" + table)
    assert table.count("\n") == 12
