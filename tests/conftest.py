import pytest


@pytest.fixture(autouse=True)
def _kernel_cache(tmp_path_factory, monkeypatch):
    """User-expression kernels go to a per-session temporary cache, never to the home directory."""
    monkeypatch.setenv("DIFFMIX_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "diffmix-cache"))
