"""FSDD features, location, caching, tasks and splits (on a small fake folder the test writes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from tpprof.data import fsdd
from tpprof.data.fsdd import FeatureParams, load_fsdd, new_user_split, official_split
from tpprof.errors import UserError

SPEAKERS = ("bob", "ann", "cy")


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory):
    """3 speakers × 10 digits × 50 takes of short tones (digit d → 300 + 200 d Hz)."""
    root = tmp_path_factory.mktemp("fsdd")
    rec = root / "recordings"
    rec.mkdir()
    t = np.arange(800) / fsdd.SAMPLE_RATE
    for s_i, s in enumerate(SPEAKERS):
        for d in range(10):
            for take in range(50):
                sig = 0.3 * np.sin(2 * np.pi * (300 + 200 * d + 5 * s_i) * t)
                wavfile.write(rec / f"{d}_{s}_{take}.wav", fsdd.SAMPLE_RATE, (sig * 32767).astype(np.int16))
    (rec / "README.txt").write_text("not a recording")
    return root


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TPPROF_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_mel_filterbank_shape_and_peaks():
    fb = fsdd.mel_filterbank(40, 256, 8000, 20.0, 4000.0)  # (129, 40)
    assert fb.shape == (129, 40)
    assert fb.min() >= 0 and fb.max() <= 1.0 + 1e-12
    assert (fb.max(axis=0) > 0.5).all()  # every filter catches at least one FFT bin
    centres = fb.argmax(axis=0)
    assert np.all(np.diff(centres) >= 0)  # centres rise with the band index


def test_log_mel_puts_a_tone_in_the_right_band():
    p = FeatureParams()
    fb = fsdd.mel_filterbank(p.n_mels, p.n_fft)
    freqs = np.linspace(0, 4000, 129)
    t = np.arange(4000) / 8000
    for f0 in (500.0, 1500.0, 3000.0):
        db = fsdd.log_mel(np.sin(2 * np.pi * f0 * t), p, fb)  # (n_frames, 40)
        assert db.shape == (1 + (4000 - 200) // 80, 40)
        band = int(db.mean(axis=0).argmax())
        centre = freqs[fb[:, band].argmax()]
        assert abs(centre - f0) < 0.12 * f0


def test_resample_normalise_and_delta():
    feat = np.arange(10.0)[:, None] * np.ones((1, 3))  # (10, 3)
    r = fsdd.resample_frames(feat, 19)
    assert r.shape == (19, 3) and r[0, 0] == 0 and r[-1, 0] == 9 and r[1, 0] == pytest.approx(0.5)
    n = fsdd.normalise(np.array([[-100.0, -30.0, 0.0]]), 60.0)
    assert np.allclose(n, [[0.0, 0.5, 1.0]])
    ramp = np.linspace(0, 1, 21)[:, None]  # (21, 1) rising 0.05 per step
    spikes = fsdd.delta_encode(ramp, 0.1)  # (21, 2)
    assert spikes[:, 0].sum() == 10 and spikes[:, 1].sum() == 0
    assert fsdd.delta_encode(ramp[::-1], 0.1)[:, 1].sum() == 10


def test_location_flag_env_and_error(fake_dir, cache, monkeypatch, tmp_path):
    assert fsdd.find_fsdd(fake_dir) == fake_dir / "recordings"
    monkeypatch.setenv("TPPROF_FSDD", str(fake_dir / "recordings"))
    assert fsdd.find_fsdd() == fake_dir / "recordings"
    with pytest.raises(UserError, match="not found.*--data-dir") as e:
        fsdd.find_fsdd(tmp_path / "nowhere")
    assert "\n" not in str(e.value)
    monkeypatch.setenv("TPPROF_FSDD", str(tmp_path / "empty"))
    with pytest.raises(UserError, match="TPPROF_FSDD"):
        load_fsdd()


def test_features_shapes_tasks_and_cache(fake_dir, cache, monkeypatch):
    data = load_fsdd(fake_dir, FeatureParams(steps=20, n_mels=16))
    assert data.x.shape == (1500, 20, 16) and data.x.dtype == np.float32
    assert data.speakers == ("ann", "bob", "cy")
    assert 0.0 <= data.x.min() and data.x.max() <= 1.0
    assert set(np.unique(data.labels("digit"))) == set(range(10))
    assert set(np.unique(data.labels("speaker"))) == {0, 1, 2}
    ds = data.labels("digit-speaker")
    assert np.array_equal(ds, data.digit * 3 + data.speaker) and len(np.unique(ds)) == 30
    with pytest.raises(UserError, match="task"):
        data.labels("vowel")
    # second load: read from the cache, never recomputed
    files = list(cache.glob("fsdd-*.npz"))
    assert len(files) == 1

    def boom(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(fsdd, "_compute", boom)
    again = load_fsdd(fake_dir, FeatureParams(steps=20, n_mels=16))
    assert np.array_equal(again.x, data.x)
    with pytest.raises(AssertionError, match="recomputed"):  # other parameters → another key
        load_fsdd(fake_dir, FeatureParams(steps=21, n_mels=16))


def test_delta_encoding_doubles_the_bands(fake_dir, cache):
    data = load_fsdd(fake_dir, FeatureParams(steps=12, n_mels=8, encoding="delta"))
    assert data.x.shape == (1500, 12, 16)
    assert set(np.unique(data.x)) <= {0.0, 1.0}
    with pytest.raises(UserError, match="encoding"):
        FeatureParams(encoding="rate")


def test_official_split(fake_dir, cache):
    data = load_fsdd(fake_dir, FeatureParams(steps=8, n_mels=8))
    train, test = official_split(data, "digit-speaker")
    assert len(test) == 3 * 10 * 5 and len(train) == 3 * 10 * 45
    assert train.classes == test.classes == 30
    assert test.meta["task"] == "digit-speaker"


def test_new_user_split_is_disjoint_and_sized(fake_dir, cache):
    data = load_fsdd(fake_dir, FeatureParams(steps=8, n_mels=8))
    sizes = {}
    for shots in ("1", "5", "all"):
        sp = new_user_split(data, "Bob", shots, seed=3)
        sizes[shots] = len(sp.support)
        assert len(sp.query) == 200
        assert np.bincount(sp.support.y, minlength=10).tolist() == [len(sp.support) // 10] * 10
        assert len(sp.pretrain) == 2 * 10 * 45 and len(sp.pretest) == 2 * 10 * 5
    assert sizes == {"1": 10, "5": 50, "all": 300}
    # disjointness by take numbers
    b = data.speaker_index("bob")
    own = data.speaker == b
    q = set(data.take[own & np.isin(data.take, fsdd.QUERY_TAKES)])
    s = set(data.take[own & np.isin(data.take, fsdd.SUPPORT_TAKES)])
    assert not q & s
    with pytest.raises(UserError, match="speaker"):
        new_user_split(data, "zed", "1")
    with pytest.raises(UserError, match="shots"):
        new_user_split(data, "bob", "0")
    with pytest.raises(UserError, match="task"):
        new_user_split(data, "bob", "1", task="speaker")


def test_support_draw_picks_distinct_takes(fake_dir, cache):
    data = load_fsdd(fake_dir, FeatureParams(steps=8, n_mels=8))
    # mark each row with its take number so the drawn takes can be read back
    marked = fsdd.FsddData(data.take[:, None, None].astype(np.float32) * np.ones((1, 8, 8), np.float32),
                           data.digit, data.speaker, data.take, data.speakers, data.params)
    sp = new_user_split(marked, "cy", "5", seed=0)
    takes = sp.support.x[:, 0, 0].astype(int)
    assert all(20 <= t < 50 for t in takes)
    for d in range(10):
        assert len(set(takes[sp.support.y == d])) == 5
    assert set(sp.query.x[:, 0, 0].astype(int)) == set(range(20))
    # the same seed draws the same takes; another seed other ones
    assert np.array_equal(new_user_split(marked, "cy", "5", seed=0).support.x, sp.support.x)
    assert not np.array_equal(new_user_split(marked, "cy", "5", seed=1).support.x, sp.support.x)


def _real_fsdd_present() -> bool:
    try:
        fsdd.find_fsdd()
        return True
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.skipif(not _real_fsdd_present(), reason="the real FSDD is not present")
def test_real_fsdd(cache):
    data = load_fsdd()
    assert data.x.shape == (3000, 50, 40)
    assert len(data.speakers) == 6
    train, test = official_split(data)
    assert (len(train), len(test)) == (2700, 300)


def test_first_rows_cover_every_digit_and_speaker(fake_dir, cache):
    data = load_fsdd(fake_dir, FeatureParams(steps=8, n_mels=8))
    train, _ = official_split(data)
    head = train.head(30)
    assert sorted(head.y.tolist()) == sorted(list(range(10)) * 3)


def test_default_search_is_the_checkouts_own_shared_only(fake_dir, monkeypatch, tmp_path):
    """Without --data-dir or $TPPROF_FSDD only <checkout>/shared and <checkout>/../shared are
    looked in (CI's layout), never the current folder or an ancestor's shared/."""
    monkeypatch.delenv("TPPROF_FSDD", raising=False)
    root = Path(fsdd.__file__).resolve().parents[2]
    assert fsdd.default_roots() == [root / "shared" / "data" / "fsdd", root.parent / "shared" / "data" / "fsdd"]
    other = tmp_path / "a" / "b"
    other.mkdir(parents=True)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "fsdd").symlink_to(fake_dir)  # someone else's, in an ancestor
    monkeypatch.chdir(other)
    assert all(tmp_path not in p.parents for p in fsdd.default_roots())
    monkeypatch.setattr(fsdd, "default_roots", lambda: [])
    with pytest.raises(UserError, match="not found"):
        fsdd.find_fsdd()


def test_spec_records_where_fsdd_was_found(fake_dir, cache, monkeypatch):
    from tpprof.data.select import load_train_test

    monkeypatch.setenv("TPPROF_FSDD", str(fake_dir))
    _, _, spec = load_train_test("fsdd", "digit", steps=10, n_mels=8)
    assert spec["data_dir"] == str(fake_dir / "recordings") and spec["data_dir_from"] == "$TPPROF_FSDD"
