"""What produced a result: parameters, versions, git revision; written beside every output."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

__all__ = ["provenance", "write_json_atomic"]

_PACKAGES = ("diffmix", "numpy", "scipy", "sympy", "mpmath", "numba", "torch", "matplotlib", "diffusers")


def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True,
                               text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def provenance(command: str, parameters: dict) -> dict:
    """A JSON-ready record: the command, its parameters, package versions, git revision, time."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"command": command, "parameters": parameters, "versions": versions,
            "python": sys.version.split()[0], "platform": platform.platform(),
            "git_revision": _git_revision(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def write_file_atomic(path, write) -> Path:
    """Create ``path`` atomically: ``write(binary_file)`` fills a temporary file beside it, then
    ``os.replace`` puts it in place (a reader never sees a partial file; on error nothing is left)."""
    import tempfile
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path, data) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (temp file + rename)."""
    from diffmix.derivations._codegen import write_atomic
    path = Path(path)
    write_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
    return path
