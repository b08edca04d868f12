"""Run the docstring examples of every public module (each runs well under a second)."""
import doctest
import importlib
import pkgutil

import pytest

import diffmix

PACKAGES = ["diffmix.derivations", "diffmix.theory", "diffmix.solvers", "diffmix.gpu",
            "diffmix.validation"]


def _modules():
    for pkg_name in PACKAGES:
        pkg = importlib.import_module(pkg_name)
        yield pkg_name
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("act_"):
                yield f"{pkg_name}.{info.name}"


@pytest.mark.parametrize("name", sorted(set(_modules())))
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest failures in {name}"
