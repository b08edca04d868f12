import pytest


@pytest.fixture(autouse=True)
def _kernel_cache(tmp_path_factory, monkeypatch):
    """User-expression kernels go to a per-session temporary cache, never to the home directory."""
    monkeypatch.setenv("DIFFMIX_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "diffmix-cache"))


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (deterministic reductions, no oversubscription on 2 cores)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
