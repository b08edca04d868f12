"""Emitting and loading the compiled coefficient kernels of an activation.

Built-in activations have their modules committed in ``derivations/_generated`` (imported as
``diffmix.derivations._generated.act_<name>_<target>``).  A user's expression is emitted into a
cache directory, keyed by the hash of its SymPy form, since an installed package may not be
writable: ``$DIFFMIX_CACHE_DIR/kernels`` if set, else ``$XDG_CACHE_HOME/diffmix/kernels``, else
``~/.cache/diffmix/kernels``.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from ._activations import Activation, parse_activation
from ._codegen import render_module, write_atomic
from ._gep import kernel_functions
from ._spectral import spectral_functions
from ._two_resolvent import two_resolvent_functions

__all__ = ["GENERATED_DIR", "cache_dir", "emit", "emit_spectral", "emit_two_resolvent", "load_kernels",
           "load_spectral", "load_two_resolvent", "module_texts", "spectral_texts", "two_resolvent_texts"]

GENERATED_DIR = Path(__file__).resolve().parent / "_generated"
TARGETS = ("f64", "mp")
_LOADED: dict[tuple[str, str], ModuleType] = {}


def cache_dir() -> Path:
    """Directory for kernels of user expressions (see module docstring)."""
    root = os.environ.get("DIFFMIX_CACHE_DIR")
    if root:
        return Path(root) / "kernels"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "diffmix" / "kernels"


def _as_activation(activation) -> Activation:
    return activation if isinstance(activation, Activation) else parse_activation(activation)


def module_texts(activation) -> dict[str, str]:
    """The text of the float64 (``"f64"``) and mpmath (``"mp"``) modules of an activation."""
    act = _as_activation(activation)
    fns, extra = kernel_functions(act)
    source = (f"activation {act.name!r} = {act.expr} (definition {act.definition}; "
              f"srepr sha256 {act.hash[:16]})")
    title = {
        "f64": f"GEP coefficient kernels for sigma(x) = {act.expr}: float64, Numba-compiled.",
        "mp": f"GEP coefficient kernels for sigma(x) = {act.expr}: mpmath, caller's precision.",
    }
    return {tgt: render_module(fns, target=tgt, title=title[tgt], source=source, extra=extra)
            for tgt in TARGETS}


def _module_path(act: Activation, target: str, directory: Path | None) -> Path:
    if directory is None:
        directory = GENERATED_DIR if act.builtin else cache_dir()
    return Path(directory) / f"act_{act.key}_{target}.py"


def emit(activation, directory: Path | None = None) -> list[Path]:
    """Write both kernel modules of ``activation``; return their paths.

    Files are written atomically and only when their text changes, so re-emitting is a no-op and
    compiled Numba caches stay valid.  ``directory`` defaults to ``_generated`` for built-ins and
    to :func:`cache_dir` for user expressions.
    """
    act = _as_activation(activation)
    paths = []
    for target, text in module_texts(act).items():
        path = _module_path(act, target, directory)
        write_atomic(path, text)
        paths.append(path)
    return paths


def load_kernels(activation, target: str = "f64") -> ModuleType:
    """Import (emitting first if needed) the kernel module of ``activation`` for ``target``."""
    if target not in TARGETS:
        raise ValueError(f"target = {target!r}: must be one of {TARGETS}")
    act = _as_activation(activation)
    key = (act.key, target)
    if key in _LOADED:
        return _LOADED[key]
    if act.builtin:
        name = f"diffmix.derivations._generated.act_{act.key}_{target}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            raise RuntimeError(f"kernel module {name} is missing: run `diffmix emit --builtin` "
                               "in a source checkout") from None
    else:
        path = _module_path(act, target, None)
        text = module_texts(act)[target]
        if not path.exists() or path.read_text() != text:
            write_atomic(path, text)
        name = f"diffmix_kernels_{act.key}_{target}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    _LOADED[key] = module
    return module


# The activation-independent systems, one committed module per target ("<name>_<target>.py"):
# name -> (SymPy builder returning (functions, extra source), title per target, source line).
_SYSTEMS = {
    "spectral": (spectral_functions,
                 {"f64": "Spectral equations F1, F2, Jacobian and fold system: float64, Numba.",
                  "mp": "Spectral equations F1, F2, Jacobian and fold system: mpmath."},
                 "spectral equations of a centered C-class mixture, shared/theory/spectrum.md "
                 "section 2 (paper eq. (114)), with the fold system of section 5"),
    "two_resolvent": (two_resolvent_functions,
                      {"f64": "Two-resolvent kernel S(z1, z2), its traces k0, k1, k2 and dm/dz: float64, Numba.",
                       "mp": "Two-resolvent kernel S(z1, z2), its traces k0, k1, k2 and dm/dz: mpmath."},
                      "two-resolvent deterministic equivalent S(z1, z2) of a centered C-class mixture, "
                      "shared/theory/test-error.md section 3, on the spectral equations of spectrum.md "
                      "section 2"),
}


def _system_texts(name: str) -> dict[str, str]:
    build, titles, source = _SYSTEMS[name]
    fns, extra = build()
    return {tgt: render_module(fns, target=tgt, title=titles[tgt], source=source, extra=extra)
            for tgt in TARGETS}


def _emit_system(name: str, directory: Path | None) -> list[Path]:
    paths = []
    for target, text in _system_texts(name).items():
        path = Path(directory or GENERATED_DIR) / f"{name}_{target}.py"
        write_atomic(path, text)
        paths.append(path)
    return paths


def _load_system(name: str, target: str) -> ModuleType:
    if target not in TARGETS:
        raise ValueError(f"target = {target!r}: must be one of {TARGETS}")
    return importlib.import_module(f"diffmix.derivations._generated.{name}_{target}")


def spectral_texts() -> dict[str, str]:
    """The text of the spectral-equation modules (``spectral_f64.py``, ``spectral_mp.py``)."""
    return _system_texts("spectral")


def emit_spectral(directory: Path | None = None) -> list[Path]:
    """Write the spectral-equation modules (default: ``_generated``); return their paths."""
    return _emit_system("spectral", directory)


def load_spectral(target: str = "f64") -> ModuleType:
    """Import the committed spectral-equation module for ``target`` ("f64" or "mp")."""
    return _load_system("spectral", target)


def two_resolvent_texts() -> dict[str, str]:
    """The text of the two-resolvent modules (``two_resolvent_f64.py``, ``two_resolvent_mp.py``)."""
    return _system_texts("two_resolvent")


def emit_two_resolvent(directory: Path | None = None) -> list[Path]:
    """Write the two-resolvent modules (default: ``_generated``); return their paths."""
    return _emit_system("two_resolvent", directory)


def load_two_resolvent(target: str = "f64") -> ModuleType:
    """Import the committed two-resolvent module for ``target`` ("f64" or "mp")."""
    return _load_system("two_resolvent", target)
