"""The activation table and the restricted expression parser."""
import pytest
import sympy as sp

from diffmix.derivations import BUILTIN_ACTIVATIONS, parse_activation
from diffmix.derivations._activations import X


@pytest.mark.parametrize("name", BUILTIN_ACTIVATIONS)
def test_builtin_printed_form_equals_definition(name):
    act = parse_activation(name)
    assert act.builtin
    assert sp.simplify((act.expr - act.definition).rewrite(sp.exp)) == 0
    for v in (-3.7, -0.4, 0.0, 0.9, 12.0):
        assert float(act.expr.subs(X, v)) == pytest.approx(float(act.definition.subs(X, v)),
                                                             abs=1e-15)


def test_builtin_properties():
    assert {n for n in BUILTIN_ACTIVATIONS if parse_activation(n).odd} == {
        "tanh", "erf", "sigmoid-centered", "linear", "sign"}
    assert {n for n in BUILTIN_ACTIVATIONS if not parse_activation(n).smooth} == {"relu", "sign"}


def test_user_expressions():
    act = parse_activation(" x + 0.1*x**3 ")
    assert act.expr == X + X**3 / 10 and not act.builtin and act.odd and act.smooth
    assert parse_activation("Phi(x) - 1/2").odd
    assert not parse_activation("max(0, x) - 0.3").smooth
    assert parse_activation("tanh(2*x)/2").key.startswith("user_")
    assert parse_activation("x**2").key != parse_activation("x**3").key


@pytest.mark.parametrize("text, message", [
    ("", "non-empty string"),
    ("   ", "non-empty string"),
    ("foo", "unknown activation 'foo'"),
    ("foo(x)", "unknown function 'foo'"),
    ("x +", "cannot parse"),
    ("__import__('os').system('true')", "unknown function '__import__"),
    ("__import__('os')", "unknown function '__import__'"),
    ("x.real", "is not allowed"),
    ("y + x", "unknown name 'y'"),
    ("lambda: x", "is not allowed"),
    ("[x]", "is not allowed"),
    ("x if x else 0", "is not allowed"),
    ("'x'", "not a real number"),
    ("1 + 2j*x", "not a real number"),
    ("True*x", "not a real number"),
    ("3", "does not depend on x"),
    ("tanh(x, 2)", "takes one argument"),
    ("tanh(x=1)", "keyword arguments"),
    ("max(x)", "at least two arguments"),
    ("sqrt(x)", "not real and finite"),
    ("log(x)", "not real and finite"),
    ("x/0", "not real and finite"),
    ("x" + "+x" * 300, "longer than"),
])
def test_malformed_activation_messages(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_activation(text)


def test_non_string_rejected():
    with pytest.raises(ValueError, match="non-empty string"):
        parse_activation(None)
    with pytest.raises(ValueError, match="non-empty string"):
        parse_activation(["tanh"])
