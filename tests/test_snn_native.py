"""The sparse input path's native kernels (tpprof.snn.native) against torch and numpy: the same
index lists, entry for entry; the same products up to summation order; and the fallback when no
compiler is there or the kernels are switched off."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from tpprof.snn import native  # noqa: E402
from tpprof.snn.sparse import SpikeFrames, _entries_native, _entries_numpy  # noqa: E402

torch.set_num_threads(1)
needs_native = pytest.mark.skipif(native.library() is None, reason=f"native kernels: {native.status()}")


def _x(B: int, T: int, n: int, density: float, dtype: torch.dtype, graded: bool, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand((B, T, n), generator=g) < density).to(dtype)
    if graded:
        x = x * torch.rand((B, T, n), generator=g, dtype=dtype) * 3 - x  # values of either sign, none 1
    return x


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("graded", [False, True])
@pytest.mark.parametrize("grad", [True, False])
def test_lists_equal_numpy(dtype: torch.dtype, graded: bool, grad: bool) -> None:
    x = _x(7, 5, 33, 0.2, dtype, graded)
    x[3] = 0  # a sample without entries
    x[:, 2] = 0  # a step without entries
    a, b = _entries_native(x, grad), _entries_numpy(x, grad)
    for name, u, v in zip(a._fields, a, b):
        assert (u is None) == (v is None), name
        if u is not None:
            assert u.dtype == v.dtype and torch.equal(u, v), name


@needs_native
def test_lists_of_an_empty_batch() -> None:
    e = _entries_native(torch.zeros(3, 4, 5), True)
    assert e.cols.numel() == 0 and e.grows.numel() == 0 and int(e.fcount.sum()) == 0 and e.vals is None


@needs_native
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("graded", [False, True])
def test_products_equal_dense(dtype: torch.dtype, tol: float, graded: bool) -> None:
    B, T, n, H = 9, 4, 40, 37  # H not a multiple of any vector width
    x = _x(B, T, n, 0.15, dtype, graded, seed=1)
    x[0, 1] = 0  # an empty bag by sample
    fr = SpikeFrames(x, dtype, torch.device("cpu"))
    assert fr._native(torch.empty(2, 3, dtype=dtype))
    w = torch.randn(n, H, dtype=dtype).t()  # column-major, as layer 1 holds it
    d = torch.randn(B, H, dtype=dtype)
    for t in range(T):
        assert torch.allclose(fr.linear(t, w), x[:, t] @ w.t(), atol=tol, rtol=0)
        assert torch.allclose(fr.wgrad(t, d), d.t() @ x[:, t], atol=tol, rtol=0)
        for beta in (0.0, 1.0, 0.5):
            g = torch.randn(n, H, dtype=dtype).t()
            want = beta * g + d.t() @ x[:, t]
            ptr = g.data_ptr()
            assert fr.in_place(g, d)
            fr.add_wgrad(t, g, d, beta=beta)
            assert g.data_ptr() == ptr and torch.allclose(g, want, atol=tol, rtol=0), beta


@needs_native
def test_more_threads_or_other_layouts_take_torchs_path(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _x(4, 2, 10, 0.3, torch.float64, False)
    fr = SpikeFrames(x, torch.float64, torch.device("cpu"))
    g = torch.zeros(10, 6, dtype=torch.float64).t()
    d = torch.randn(4, 6, dtype=torch.float64)
    assert fr.in_place(g, d)
    assert not fr.in_place(torch.zeros(6, 10, dtype=torch.float64), d)  # row-major gradient
    assert not fr.in_place(g.float(), d)  # mixed dtypes
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert not fr.in_place(g, d)
    fr.add_wgrad(0, g, d, beta=0.0)  # embedding_bag's path, same result
    assert torch.allclose(g, d.t() @ x[:, 0], atol=1e-12)


def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native.ENV, "0")
    assert native.library() is None and not native.enabled(torch.float32, torch.device("cpu"))
    assert native.status() == f"off ({native.ENV}=0)"
    x = _x(5, 3, 12, 0.3, torch.float64, True)
    fr = SpikeFrames(x, torch.float64, torch.device("cpu"))  # numpy's lists, embedding_bag's products
    w = torch.randn(12, 4, dtype=torch.float64).t()
    assert not fr._native(w.t())
    assert torch.allclose(fr.linear(1, w), x[:, 1] @ w.t(), atol=1e-12)


def test_no_compiler_falls_back(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    """A compiler that fails (or none at all): library() is None, status says why, nothing is cached."""
    monkeypatch.delenv(native.ENV, raising=False)
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CC", "false")  # exits 1 without output
    assert native.library() is None
    assert native.status().startswith("unavailable: false failed")
    assert not list(tmp_path.rglob("*.so")) and not list(tmp_path.rglob("*.tmp"))
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.delenv("CC")
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    assert native.library() is None and native.status() == "unavailable: no C compiler (cc) on PATH"


@needs_native
def test_compiles_into_the_cache_once(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    lib = native.library()
    assert lib is not None and native.library() is lib
    built = list((tmp_path / "tpprof").glob("sparse-*.so"))
    assert len(built) == 1 and native.status() == f"loaded from {built[0]}"


@needs_native
def test_a_cached_library_others_may_write_is_not_loaded(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert native.library() is not None
    (built,) = (tmp_path / "tpprof").glob("sparse-*.so")
    built.chmod(0o666)  # group- and world-writable: anyone could have replaced it
    monkeypatch.setattr(native, "_tried", False)
    monkeypatch.setattr(native, "_lib", None)
    assert native.library() is not None
    loaded = native.status().removeprefix("loaded from ")
    assert loaded != str(built) and loaded.endswith(built.name)  # compiled afresh in a private folder
