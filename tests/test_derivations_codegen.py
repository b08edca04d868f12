"""Emission of kernel modules: deterministic, committed modules current, user cache keyed by hash."""
import re

import pytest
import sympy as sp

from diffmix.derivations import (BUILTIN_ACTIVATIONS, GENERATED_DIR, centered_coefficients,
                                 emit, load_kernels, module_texts, parse_activation,
                                 spectral_texts)
from diffmix.derivations._kernels import cache_dir


def test_emission_is_deterministic(tmp_path):
    first = [p.read_text() for p in emit("gelu", tmp_path / "a")]
    second = [p.read_text() for p in emit("gelu", tmp_path / "b")]
    assert first == second
    again = emit("gelu", tmp_path / "a")  # unchanged text: files are left alone
    assert [p.read_text() for p in again] == first


@pytest.mark.parametrize("name", BUILTIN_ACTIVATIONS)
def test_committed_modules_are_current(name):
    act = parse_activation(name)
    for target, text in module_texts(act).items():
        path = GENERATED_DIR / f"act_{act.key}_{target}.py"
        committed = path.read_text()
        version = re.search(r"# sympy (\S+),", committed).group(1)
        if version != sp.__version__:
            pytest.skip(f"committed with sympy {version}, running {sp.__version__}")
        assert committed == text, f"{path.name} is stale: run `diffmix emit --builtin`"


def test_committed_spectral_modules_are_current():
    for target, text in spectral_texts().items():
        committed = (GENERATED_DIR / f"spectral_{target}.py").read_text()
        version = re.search(r"# sympy (\S+),", committed).group(1)
        if version != sp.__version__:
            pytest.skip(f"committed with sympy {version}, running {sp.__version__}")
        assert committed == text


def test_header_names_source_version_and_hash():
    text = module_texts("tanh")["f64"]
    head = text.splitlines()[:4]
    assert head[1].startswith("# source: activation 'tanh' = tanh(x)")
    assert re.match(r"# sympy \S+, template v\d+, sha256 [0-9a-f]{64}$", head[3])
    assert "@njit(cache=True)" in text and "lambdify" not in text
    mp_text = module_texts("tanh")["mp"]
    assert "import mpmath" in mp_text and "numba" not in mp_text


def test_user_expression_goes_to_cache_keyed_by_hash(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFMIX_CACHE_DIR", str(tmp_path))
    act = parse_activation("x + 0.25*x**3")
    assert cache_dir() == tmp_path / "kernels"
    mod = load_kernels(act, "f64")
    path = tmp_path / "kernels" / f"act_user_{act.hash[:12]}_f64.py"
    assert path.exists() and mod.__file__ == str(path)
    assert mod.sigma(2.0) == 2.0 + 0.25 * 8
    assert not any(p.name.startswith("act_user") for p in GENERATED_DIR.iterdir())


def test_user_expression_matches_equivalent_builtin():
    """A user expression equal to a built-in gives the same coefficients (quadrature path)."""
    user = centered_coefficients("(exp(x) - exp(-x))/(exp(x) + exp(-x))", 0.05, 0.7)
    ref = centered_coefficients("tanh", 0.05, 0.7)
    for n in ("mu1", "kappa2", "v_t2", "s_t2"):
        assert getattr(user, n) == pytest.approx(getattr(ref, n), rel=1e-12)
