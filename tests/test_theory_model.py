"""Tests for diffmix.theory._model: the Model dataclass, its validation, files and content hash."""

import dataclasses
import doctest
import hashlib
import json
import math
import os
import tomllib
from pathlib import Path

import numpy as np
import pytest

import diffmix.theory._model as model_module
from diffmix.theory import Model, ModelError, load_model, save_model

EXAMPLES = Path(__file__).parent.parent / "examples"

BASE = dict(activation="tanh", t=0.01, psi_p=60.0, psi_n=30.0, weights=[0.5, 0.5], variances=[0.5, 0.25])


def make(**changes):
    return Model(**{**BASE, **changes})


def base_dict(**changes):
    d = {
        "activation": "tanh",
        "t": 0.01,
        "psi_p": 60.0,
        "psi_n": 30.0,
        "classes": [{"weight": 0.5, "variance": 0.5}, {"weight": 0.5, "variance": 0.25}],
    }
    d.update(changes)
    return d


AWKWARD = Model(
    activation="x*tanh(x)",
    t=1e-8,
    psi_p=0.1 + 0.2,
    psi_n=123456789.123456789,
    weights=[0.1 + 0.2, 1 - (0.1 + 0.2)],
    variances=[1e-300, 1e300],
    centroid_norm2=[5e-324, 1 / 3],
    cosine=[[1.0, 1 / 3], [1 / 3, 1.0]],
)


# ---------------------------------------------------------------------- examples and construction


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_loads(path):
    model = load_model(path)
    with path.open("rb") as f:
        data = tomllib.load(f)
    assert model.activation == data["activation"]
    assert model.n_classes == len(data["classes"])
    assert model.weights == tuple(float(c["weight"]) for c in data["classes"])
    expected = {**data, "cosine": data.get("cosine", np.eye(model.n_classes).tolist())}
    assert model.to_dict() == expected


def test_examples_directory_is_not_empty():
    assert len(list(EXAMPLES.glob("*.toml"))) >= 3


def test_constructor_converts_to_tuples_of_python_floats():
    m = Model("erf", 1, np.float32(2.0), np.int64(3), np.array([0.25, 0.75]), (1, 2), np.zeros(2), np.eye(2))
    assert m.weights == (0.25, 0.75) and m.variances == (1.0, 2.0)
    assert m.cosine == ((1.0, 0.0), (0.0, 1.0))
    for x in (m.t, m.psi_p, m.psi_n, *m.weights, *m.variances, *m.centroid_norm2, *m.cosine[0], *m.cosine[1]):
        assert type(x) is float
    assert isinstance(m.cosine, tuple) and all(isinstance(row, tuple) for row in m.cosine)


def test_defaults_are_centered_and_identity():
    m = Model("linear", 0.1, 1.0, 1.0, [0.2, 0.3, 0.5], [1.0, 1.0, 1.0])
    assert m.centroid_norm2 == (0.0, 0.0, 0.0)
    assert m.cosine == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


def test_single_class():
    m = Model("tanh", 0.1, 2.0, 1.0, [1.0], [1.0])
    assert m.n_classes == 1 and m.cosine == ((1.0,),)


def test_from_classes_matches_constructor():
    classes = [{"weight": 0.5, "variance": 0.5, "centroid_norm2": 1.0}, {"weight": 0.5, "variance": 0.25}]
    m = Model.from_classes("tanh", 0.01, 60.0, 30.0, classes, cosine=[[1.0, 0.5], [0.5, 1.0]])
    assert m == make(centroid_norm2=[1.0, 0.0], cosine=[[1.0, 0.5], [0.5, 1.0]])


def test_frozen_and_hashable():
    m = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.t = 1.0
    assert hash(m) == hash(make(weights=np.array([0.5, 0.5])))
    assert len({m, make(), make(t=0.02)}) == 2


@pytest.mark.parametrize("name", ["tanh", "erf", "relu", "gelu", "sigmoid-centered", "linear", "sign"])
def test_named_activations_are_accepted(name):
    assert make(activation=name).activation == name


def test_replace_validates_and_leaves_original():
    m = make()
    m2 = m.replace(t=0.5, psi_n=10)
    assert (m2.t, m2.psi_n, m.t, m.psi_n) == (0.5, 10.0, 0.01, 30.0)
    assert type(m2.psi_n) is float
    with pytest.raises(ModelError, match=r"t = -1: must be a finite number > 0"):
        m.replace(t=-1)
    three = m.replace(weights=[0.2, 0.3, 0.5], variances=[1, 1, 1], centroid_norm2=None, cosine=None)
    assert three.n_classes == 3


def test_doctests():
    result = doctest.testmod(model_module)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------------- derived properties


def test_delta_t_small_t_is_accurate():
    m = make(t=1e-8)
    exact = 2e-8 - 2e-16 + (4 / 3) * 1e-24
    assert abs(m.delta_t - exact) <= 1e-15 * exact
    assert abs(m.delta_t - (2e-8 - 2e-16)) <= 1e-15 * exact


def test_delta_t_and_gamma2():
    m = make(t=1.0)
    e = math.exp(-2.0)
    assert m.delta_t == pytest.approx(1 - e, rel=1e-15)
    assert isinstance(m.gamma2, np.ndarray) and m.gamma2.shape == (2,)
    np.testing.assert_allclose(m.gamma2, [0.5 * e + 1 - e, 0.25 * e + 1 - e], rtol=1e-15)
    small = make(t=1e-8)
    np.testing.assert_allclose(small.gamma2, [0.5 + 0.5 * 2e-8, 0.25 + 0.75 * 2e-8], rtol=1e-15)


def test_other_properties():
    m = load_model(EXAMPLES / "three-class.toml")
    assert m.n_classes == 3
    assert m.mean_variance == pytest.approx(0.6 * 1.0 + 0.3 * 0.4 + 0.1 * 0.1, rel=1e-15)
    assert m.ratio_pn == 8.0 / 3.0
    assert m.is_centered
    assert make().mean_variance == 0.375
    assert not make(centroid_norm2=[0.0, 1e-9]).is_centered
    assert not load_model(EXAMPLES / "fig3-baseline.toml").is_centered


# ---------------------------------------------------------------------- validation


INVALID = [
    ({"weights": [1.2, -0.2]}, r"weights\[1\] = -0\.2: must be a finite number > 0"),
    ({"weights": [1.0, 0.0]}, r"weights\[1\] = 0\.0: must be a finite number > 0"),
    ({"weights": [0.5, float("nan")]}, r"weights\[1\] = nan: must be a finite number > 0"),
    ({"weights": [0.5, "0.5"]}, r"weights\[1\] = '0\.5': must be a finite number > 0"),
    ({"weights": [0.5, 0.4]}, r"weights: must sum to 1 within 1e-12 \(sum = 0\.9\)"),
    ({"weights": [0.5, 0.5 + 1e-11]}, r"weights: must sum to 1 within 1e-12"),
    ({"weights": "ab"}, r"weights: must be a sequence of numbers \(one per class\), got str"),
    ({"weights": 1.0, "variances": 1.0}, r"weights: must be a sequence of numbers"),
    ({"weights": [], "variances": []}, r"weights: must have at least one entry"),
    ({"variances": [0, 1]}, r"variances\[0\] = 0: must be a finite number > 0"),
    ({"variances": [1, float("inf")]}, r"variances\[1\] = inf: must be a finite number > 0"),
    ({"variances": [1, True]}, r"variances\[1\] = True: must be a finite number > 0"),
    ({"t": -1}, r"t = -1: must be a finite number > 0"),
    ({"t": 0.0}, r"t = 0\.0: must be a finite number > 0"),
    ({"t": float("nan")}, r"t = nan: must be a finite number > 0"),
    ({"t": "1"}, r"t = '1': must be a finite number > 0"),
    ({"t": None}, r"t = None: must be a finite number > 0"),
    ({"t": 10**400}, r"t = 1000+: must be a finite number > 0"),
    ({"psi_p": 0}, r"psi_p = 0: must be a finite number > 0"),
    ({"psi_p": np.float64(-2.5)}, r"psi_p = -2\.5: must be a finite number > 0"),
    ({"psi_n": float("-inf")}, r"psi_n = -inf: must be a finite number > 0"),
    ({"psi_n": False}, r"psi_n = False: must be a finite number > 0"),
    ({"centroid_norm2": [-1, 0]}, r"centroid_norm2\[0\] = -1: must be a finite number >= 0"),
    ({"centroid_norm2": [0, float("nan")]}, r"centroid_norm2\[1\] = nan: must be a finite number >= 0"),
    ({"variances": [1, 1, 1]}, r"weights, variances, centroid_norm2: must have one entry per class \(got 2, 3, 2\)"),
    ({"centroid_norm2": [0.0]}, r"must have one entry per class \(got 2, 2, 1\)"),
    ({"cosine": np.eye(3)}, r"cosine: must be a 2 x 2 matrix \(one row and column per class\)"),
    ({"cosine": [[1.0, 0.0], [0.0]]}, r"cosine: must be a 2 x 2 matrix"),
    ({"cosine": [1.0, 1.0]}, r"cosine: must be a 2 x 2 matrix"),
    ({"cosine": "identity"}, r"cosine: must be a 2 x 2 matrix"),
    ({"cosine": [[1.0, float("nan")], [0.0, 1.0]]}, r"cosine\[0\]\[1\] = nan: must be a finite number$"),
    (
        {"cosine": [[1.0, 0.5], [0.3, 1.0]]},
        r"cosine: must be symmetric \(cosine\[1\]\[0\] = 0\.3, cosine\[0\]\[1\] = 0\.5\)",
    ),
    ({"cosine": [[1.0, 0.0], [0.0, 0.9]]}, r"cosine: diagonal must be 1 \(cosine\[1\]\[1\] = 0\.9\)"),
    ({"cosine": [[1.0, 1.3], [1.3, 1.0]]}, r"cosine: must be positive semi-definite \(smallest eigenvalue -0\.3\)"),
    ({"activation": ""}, r"activation = '': must be a non-empty string"),
    ({"activation": "  "}, r"activation = '  ': must be a non-empty string"),
    ({"activation": 3}, r"activation = 3: must be a non-empty string"),
    ({"activation": "foo(x)"}, r"activation = 'foo\(x\)': .*foo"),
    ({"activation": "x +"}, r"activation = 'x \+': "),
]


@pytest.mark.parametrize("changes, message", INVALID, ids=[m for _, m in INVALID])
def test_invalid_field_raises_model_error(changes, message):
    with pytest.raises(ModelError, match=message):
        make(**changes)


def test_model_error_is_value_error():
    assert issubclass(ModelError, ValueError)


def test_psd_tolerance_is_relative():
    # All-ones cosine (identical centroid directions) is semi-definite: eigenvalues 0 up to rounding, and 3.
    m = Model("tanh", 0.1, 1.0, 1.0, [0.2, 0.3, 0.5], [1.0, 1.0, 1.0], cosine=np.ones((3, 3)))
    assert m.cosine == ((1.0, 1.0, 1.0),) * 3
    with pytest.raises(ModelError, match=r"positive semi-definite \(smallest eigenvalue -1e-09\)"):
        Model("tanh", 0.1, 1.0, 1.0, [0.5, 0.5], [1.0, 1.0], cosine=[[1.0, 1.0 + 1e-9], [1.0 + 1e-9, 1.0]])


HALF = {"weight": 0.5, "variance": 1.0}
DICT_INVALID = [
    (base_dict(foo=1), r"model: unknown key 'foo' \(allowed: activation, t, psi_p, psi_n, cosine, classes\)"),
    ({k: v for k, v in base_dict().items() if k != "psi_n"}, r"model: missing required key 'psi_n'"),
    ({k: v for k, v in base_dict().items() if k != "classes"}, r"model: missing required key 'classes'"),
    (base_dict(classes=[{"weight": 1.0, "variance": 1.0, "mean": 0.0}]), r"classes\[0\]: unknown key 'mean'"),
    (base_dict(classes=[HALF, {"weight": 0.5}]), r"classes\[1\]: missing required key 'variance'"),
    (base_dict(classes=[HALF, {"weight": "half", "variance": 1.0}]), r"classes\[1\]\.weight = 'half'"),
    (base_dict(classes=[HALF, {**HALF, "variance": -1.0}]), r"classes\[1\]\.variance = -1\.0: must be a finite .* > 0"),
    (base_dict(classes=[{**HALF, "centroid_norm2": -0.5}, HALF]), r"classes\[0\]\.centroid_norm2 = -0\.5: .* >= 0"),
    (base_dict(classes=HALF), r"classes: must be a list of tables \(one per class\), got dict"),
    (base_dict(classes="two"), r"classes: must be a list of tables"),
    (base_dict(classes=[]), r"classes: must have at least one class"),
    (base_dict(classes=[1.0]), r"classes\[0\]: must be a table with keys weight, variance, centroid_norm2, got float"),
    (base_dict(t="0.01"), r"t = '0\.01': must be a finite number > 0"),
    (base_dict(activation=["tanh"]), r"activation = \['tanh'\]: must be a non-empty string"),
    (base_dict(cosine=1.0), r"cosine: must be a 2 x 2 matrix"),
    ([1, 2], r"model: must be a table with keys .*, got list"),
]


@pytest.mark.parametrize("data, message", DICT_INVALID, ids=[m for _, m in DICT_INVALID])
def test_invalid_dict_raises_model_error(data, message):
    with pytest.raises(ModelError, match=message):
        Model.from_dict(data)


def test_from_dict_defaults_and_to_dict_schema():
    m = Model.from_dict(base_dict())
    assert m == make()
    assert m.to_dict() == {
        **base_dict(),
        "cosine": [[1.0, 0.0], [0.0, 1.0]],
        "classes": [
            {"weight": 0.5, "variance": 0.5, "centroid_norm2": 0.0},
            {"weight": 0.5, "variance": 0.25, "centroid_norm2": 0.0},
        ],
    }
    assert Model.from_dict(AWKWARD.to_dict()) == AWKWARD


# ---------------------------------------------------------------------- files


@pytest.mark.parametrize("suffix", [".toml", ".json"])
@pytest.mark.parametrize(
    "model",
    [AWKWARD, make(), Model("sigmoid-centered", 2.5, 1, 1, [0.2, 0.3, 0.5], [1, 2, 3], [0, 1, 2])],
    ids=["awkward", "base", "three-class"],
)
def test_round_trip_is_exact(tmp_path, model, suffix):
    path = tmp_path / f"model{suffix}"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded == model
    assert loaded.content_hash() == model.content_hash()
    for a, b in zip(loaded.to_dict()["classes"], model.to_dict()["classes"]):
        assert all(a[k].hex() == b[k].hex() for k in a)


def test_saved_toml_layout(tmp_path):
    path = tmp_path / "m.toml"
    save_model(load_model(EXAMPLES / "fig3-baseline.toml"), path)
    text = path.read_text()
    assert "cosine = [[1.0, 0.0], [0.0, 1.0]]" in text
    assert text.count("[[classes]]") == 2
    with path.open("rb") as f:
        assert tomllib.load(f) == load_model(EXAMPLES / "fig3-baseline.toml").to_dict()


def test_save_is_atomic_and_overwrites(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("old")
    save_model(make(), path)
    assert json.loads(path.read_text()) == make().to_dict()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_save_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        save_model(make(), tmp_path / "m.toml")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "text", ["plain", 'quote " and \\ backslash', "tab\tnewline\ncontrol\x01del\x7f", "ünï ✓ 😀"]
)
def test_toml_string_escaping_round_trips(text):
    assert tomllib.loads(f"a = {model_module._toml_string(text)}")["a"] == text


@pytest.mark.parametrize("name", ["m.yaml", "m", "m.toml.bak"])
def test_wrong_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_text("")
    with pytest.raises(ModelError, match=rf"{name}: unsupported model file suffix .*\(allowed: \.toml, \.json\)"):
        load_model(path)
    with pytest.raises(ModelError, match=r"allowed: \.toml, \.json"):
        save_model(make(), path)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ModelError, match=r"absent\.toml: cannot read model file: No such file or directory$"):
        load_model(path)


def test_directory_instead_of_file(tmp_path):
    path = tmp_path / "dir.json"
    path.mkdir()
    with pytest.raises(ModelError, match=r"dir\.json: cannot read model file"):
        load_model(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "m.toml"
    path.write_bytes(b'activation = "\xff"\n')
    with pytest.raises(ModelError, match=r"m\.toml: not UTF-8 text"):
        load_model(path)


def _single_line(message):
    return "\n" not in message


def test_bad_toml_syntax(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('activation = "tanh"\nt 0.01\n')
    with pytest.raises(ModelError, match=r"bad\.toml: invalid TOML: .*line 2") as info:
        load_model(path)
    assert _single_line(str(info.value))


def test_bad_json_syntax(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"activation": "tanh",}')
    with pytest.raises(ModelError, match=r"bad\.json: invalid JSON: .*line 1") as info:
        load_model(path)
    assert _single_line(str(info.value))


def _example_text_with(old, new):
    text = (EXAMPLES / "fig2-variance.toml").read_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("psi_n = 30.0", "psi_n = 30.0\nseed = 3", r"model: unknown key 'seed'"),
        ("variance = 0.25", "variance = 0.25\nsigma = 1.0", r"classes\[1\]: unknown key 'sigma'"),
        ("t = 0.001", "", r"model: missing required key 't'"),
        ("weight = 0.5       #", "#", r"classes\[0\]: missing required key 'weight'"),
        ("psi_p = 60.0", 'psi_p = "60"', r"psi_p = '60': must be a finite number > 0"),
    ],
    ids=["unknown-top", "unknown-class", "missing-top", "missing-class", "wrong-type"],
)
def test_invalid_model_file(tmp_path, old, new, message):
    path = tmp_path / "m.toml"
    path.write_text(_example_text_with(old, new))
    with pytest.raises(ModelError, match=rf"m\.toml: {message}") as info:
        load_model(path)
    assert _single_line(str(info.value))


def test_classes_table_instead_of_array_of_tables(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('activation = "tanh"\nt = 0.1\npsi_p = 2.0\npsi_n = 1.0\n[classes]\nweight = 1.0\nvariance = 1.0\n')
    with pytest.raises(ModelError, match=r"m\.toml: classes: must be a list of tables \(one per class\), got dict"):
        load_model(path)


# ---------------------------------------------------------------------- content hash

HASH_MODEL = Model("tanh", 0.01, 60.0, 30.0, [0.5, 0.5], [0.5, 0.25], [1.0, 0.0], [[1.0, 0.25], [0.25, 1.0]])
HASH_JSON = (
    '{"activation":"tanh","classes":[{"centroid_norm2":1.0,"variance":0.5,"weight":0.5},'
    '{"centroid_norm2":0.0,"variance":0.25,"weight":0.5}],"cosine":[[1.0,0.25],[0.25,1.0]],'
    '"psi_n":30.0,"psi_p":60.0,"t":0.01}'
)
HASH = "03ee92d5974a819116d465e1eae4fe1ddfa6017df23fa79773b9357decb7efec"


def test_content_hash_is_stable():
    assert hashlib.sha256(HASH_JSON.encode()).hexdigest() == HASH
    assert HASH_MODEL.content_hash() == HASH


def test_content_hash_equal_for_equal_models():
    same = [
        Model(
            "tanh", 0.01, 60, 30, np.array([0.5, 0.5]), (0.5, 0.25), np.array([1.0, -0.0]),
            np.array([[1, 0.25], [0.25, 1]]),
        ),
        Model.from_classes(
            "tanh", 0.01, 60.0, 30.0,
            [{"weight": 0.5, "variance": 0.5, "centroid_norm2": 1}, {"weight": 0.5, "variance": 0.25}],
            cosine=[[1.0, 0.25], [0.25, 1.0]],
        ),
        Model.from_dict(json.loads(HASH_JSON)),
    ]
    for m in same:
        assert m == HASH_MODEL and m.content_hash() == HASH


@pytest.mark.parametrize(
    "changes",
    [
        {"activation": "erf"},
        {"t": 0.01 + 1e-17},
        {"psi_p": 61.0},
        {"psi_n": 29.0},
        {"weights": [0.4, 0.6]},
        {"variances": [0.5, 0.26]},
        {"centroid_norm2": [1.0, 1e-300]},
        {"cosine": [[1.0, 0.0], [0.0, 1.0]]},
        {"weights": [0.5, 0.5], "variances": [0.25, 0.5], "centroid_norm2": [0.0, 1.0]},
    ],
    ids=lambda c: ",".join(c),
)
def test_content_hash_changes_with_any_field(changes):
    changed = HASH_MODEL.replace(**changes)
    assert changed != HASH_MODEL
    assert changed.content_hash() != HASH
