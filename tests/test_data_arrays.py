"""User .npz files, SHD-layout .h5 files and synthetic spikes: parsing and one-line errors."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tpprof.data import from_arrays, load_npz, load_npz_split, load_shd, synthetic_spikes
from tpprof.data.select import load_train_test
from tpprof.data.shd import bin_spikes
from tpprof.errors import UserError


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def test_npz_roundtrip_and_batches(tmp_path):
    x = np.random.default_rng(0).random((10, 4, 3)).astype(np.float32)
    y = np.arange(10) % 3
    ds = load_npz(_npz(tmp_path / "d.npz", x=x, y=y))
    assert ds.classes == 3 and ds.steps == 4 and ds.input_shape == (3,) and len(ds) == 10
    assert np.array_equal(ds.x, x)
    sizes = [len(yb) for _, yb in ds.batches(4, drop_last=True)]
    assert sizes == [4, 4]
    sizes = [len(yb) for _, yb in ds.batches(4)]
    assert sizes == [4, 4, 2]
    seen = np.concatenate([yb for _, yb in ds.batches(3, shuffle=True, rng=np.random.default_rng(1))])
    assert sorted(seen.tolist()) == sorted(y.tolist())


@pytest.mark.parametrize("arrays, match", [
    ({"x": np.zeros((4, 3)), "y": np.zeros(4, int)}, r"x: has shape \(4, 3\).*\[N, T, F\]"),
    ({"x": np.zeros((4, 2, 3)), "y": np.zeros(5, int)}, r"y: has 5 labels but x has 4 samples"),
    ({"x": np.zeros((4, 2, 3)), "y": np.array([0, 1, 2, -1])}, r"negative label"),
    ({"x": np.zeros((4, 2, 3)), "y": np.array([0, 1.5, 2, 1])}, r"non-integer labels"),
    ({"x": np.full((4, 2, 3), np.nan), "y": np.zeros(4, int)}, r"NaN"),
    ({"x": np.array([["a"]] * 4), "y": np.zeros(4, int)}, r"dtype"),
    ({"inputs": np.zeros((4, 2, 3)), "y": np.zeros(4, int)}, r"has no array 'x'"),
])
def test_npz_errors_are_one_line(tmp_path, arrays, match):
    p = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserError, match=match) as e:
        load_npz(p)
    assert "\n" not in str(e.value) and "accepted:" in str(e.value)


@pytest.mark.parametrize("load, suffix, unreadable", [(load_npz, "npz", "not a readable"),
                                                       (load_shd, "h5", "not an HDF5")])
def test_missing_and_unreadable_files(tmp_path, load, suffix, unreadable):
    with pytest.raises(UserError, match="does not exist"):
        load(tmp_path / f"none.{suffix}")
    (tmp_path / f"junk.{suffix}").write_bytes(b"junk")
    with pytest.raises(UserError, match=unreadable):
        load(tmp_path / f"junk.{suffix}")


def test_npz_split_with_and_without_test_arrays(tmp_path):
    x = np.zeros((20, 3, 2), np.float32)
    y = np.arange(20) % 4
    train, test = load_npz_split(_npz(tmp_path / "a.npz", x=x, y=y), seed=0)
    assert (len(train), len(test)) == (16, 4)
    assert train.classes == test.classes == 4
    p = _npz(tmp_path / "b.npz", x=x, y=y, x_test=x[:5], y_test=np.array([0, 1, 2, 3, 5]))
    train, test = load_npz_split(p)
    assert (len(train), len(test), train.classes) == (20, 5, 6)
    p = _npz(tmp_path / "c.npz", x=x, y=y, x_test=np.zeros((5, 4, 2)), y_test=np.zeros(5, int))
    with pytest.raises(UserError, match="x_test"):
        load_npz_split(p)


def test_five_dim_frames_and_from_arrays():
    ds = from_arrays(np.zeros((3, 2, 2, 4, 4)), [0, 1, 1])
    assert ds.input_shape == (2, 4, 4) and ds.classes == 2
    with pytest.raises(UserError, match="only 2 classes"):
        from_arrays(np.zeros((3, 2, 4)), [0, 1, 2], classes=2)


def _write_shd(path, samples, labels):
    with h5py.File(path, "w") as f:
        vf = h5py.vlen_dtype(np.float32)
        vu = h5py.vlen_dtype(np.uint16)
        t = f.create_dataset("spikes/times", (len(samples),), dtype=vf)
        u = f.create_dataset("spikes/units", (len(samples),), dtype=vu)
        for i, (times, units) in enumerate(samples):
            t[i] = np.asarray(times, np.float32)
            u[i] = np.asarray(units, np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))


def test_shd_layout_is_binned(tmp_path):
    samples = [([0.0, 0.05, 0.06, 0.95, 2.0], [0, 3, 3, 699, 5]),  # the 2.0 s spike is past max_time
               ([0.5], [10])]
    p = tmp_path / "shd_small.h5"
    _write_shd(p, samples, [4, 19])
    ds = load_shd(p, steps=10, max_time=1.0)
    assert ds.x.shape == (2, 10, 700) and ds.x.dtype == np.uint8
    assert ds.classes == 20 and ds.y.tolist() == [4, 19]
    assert ds.x[0, 0, 0] == 1 and ds.x[0, 0, 3] == 2 and ds.x[0, 9, 699] == 1
    assert int(ds.x[0].sum()) == 4  # the late spike is dropped
    assert ds.x[1, 5, 10] == 1
    xb, _ = next(ds.batches(2))
    assert xb.dtype == np.float32
    # the generic --data loader takes the .h5 too (seeded hold-out)
    train, test, spec = load_train_test(str(p), steps=10)
    assert len(train) + len(test) == 2 and spec["kind"] == "file"


def test_shd_without_labels(tmp_path):
    with h5py.File(tmp_path / "nolabels.h5", "w") as f:
        f.create_dataset("spikes/times", data=np.zeros(1))
        f.create_dataset("spikes/units", data=np.zeros(1))
    with pytest.raises(UserError, match="'labels'"):
        load_shd(tmp_path / "nolabels.h5")


def test_bin_spikes_counts_saturate():
    x = bin_spikes(np.zeros(300), np.zeros(300, int), 4, 2, 1.0)
    assert x[0, 0] == 255 and x.sum() == 255


def test_synthetic_is_seeded_and_shaped():
    a = synthetic_spikes(6, 5, (2, 3, 3), classes=4, rate=0.3, seed=7)
    b = synthetic_spikes(6, 5, (2, 3, 3), classes=4, rate=0.3, seed=7)
    assert a.x.shape == (6, 5, 2, 3, 3) and np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert set(np.unique(a.x)) <= {0.0, 1.0} and a.y.max() < 4
    assert not np.array_equal(a.x, synthetic_spikes(6, 5, (2, 3, 3), classes=4, rate=0.3, seed=8).x)
    big = synthetic_spikes(50, 20, 100, rate=0.1, seed=0)
    assert abs(big.x.mean() - 0.1) < 0.01
    with pytest.raises(UserError, match="rate"):
        synthetic_spikes(2, 2, 2, rate=1.5)


def test_unknown_data_kind(tmp_path):
    with pytest.raises(UserError, match="neither fsdd"):
        load_train_test(str(tmp_path / "x.csv"))
