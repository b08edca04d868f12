"""What produced a result: parameters, versions, git revision; written beside every output."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

__all__ = ["provenance", "write_json_atomic"]

_PACKAGES = ("diffmix", "numpy", "scipy", "sympy", "mpmath", "numba", "torch", "matplotlib")


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


def write_json_atomic(path, data) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
