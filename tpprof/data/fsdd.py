"""Free Spoken Digit Dataset (FSDD): WAV → log-mel features → T frames, splits and tasks.

Dataset: Z. Jackson et al., *Free Spoken Digit Dataset* (CC BY-SA 4.0): 3,000 mono 8 kHz
recordings, 6 speakers × 10 digits × 50 takes, files ``{digit}_{speaker}_{take}.wav``. It is
read in place from ``--data-dir``, else ``$TPPROF_FSDD``, else ``shared/data/fsdd`` inside the
source checkout or beside it (``<checkout>/../shared``; :func:`default_roots`), never from the
current folder or its ancestors; else a one-line error.

Features (tpprof's choice, computed with numpy/scipy only):

1. x[n] = int16 / 32768; short-time power spectrum |STFT|² with a 25 ms Hann window
   (200 samples) zero-padded to n_fft = 256, hop 10 ms (80 samples).
2. Mel filterbank: ``n_mels`` triangular filters equally spaced on the HTK mel scale
   mel(f) = 2595 log10(1 + f / 700) between 20 Hz and 4 kHz (Nyquist); E = |STFT|² · M.
3. Log energy in dB: 10 log10(E + 1e-10).
4. Time: the utterance's frames are linearly resampled to exactly ``steps`` frames (T), so
   every recording (0.14 s – 2.3 s) spans the same T steps (a time warp; duration is lost).
5. Normalisation per utterance, no dataset statistics (so no split leaks into another):
   dB values are clipped to the 60 dB below the utterance's loudest bin and mapped to
   [0, 1]: x = (dB − (max − 60)) / 60.

Encodings: ``current`` (default) feeds these values as input currents, (N, T, n_mels);
``delta`` turns each band into send-on-delta spikes with threshold θ = 0.1 on an up and a
down channel (one spike per step at most), (N, T, 2·n_mels), values 0/1.

Features are cached in ``$TPPROF_CACHE`` (default ``~/.cache/tpprof``) under a key made of
the feature parameters, a feature-code version and the recordings' names and sizes, so the
second load is a file read.

Splits: ``official`` — takes 0–4 of every speaker and digit are the test set, takes 5–49
training (the dataset's own split). ``new-user`` (leave one speaker out): pretraining on the
other 5 speakers (their takes 5–49 train, 0–4 test); for the held-out speaker a fixed query
set (takes 0–19, 200 samples) and a support set drawn from the disjoint takes 20–49: k takes
per digit chosen with a seeded generator (k = 1, 5) or all 30 per digit (``all``).

Order: rows are sorted by (take, speaker, digit), so the first N samples of a split cover
every digit and speaker evenly (``tpprof train --limit N``).

Tasks: ``digit`` (10 classes), ``speaker`` (6, speakers in alphabetical order) and
``digit-speaker`` (60 classes, label = digit · 6 + speaker index).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tpprof.data.arrays import ArrayDataset
from tpprof.errors import UserError
from tpprof.units import parse_ascii_int

SAMPLE_RATE = 8000
TASKS: dict[str, int] = {"digit": 10, "speaker": 6, "digit-speaker": 60}
ENCODINGS: tuple[str, ...] = ("current", "delta")
QUERY_TAKES = range(0, 20)  # held-out speaker's query set
SUPPORT_TAKES = range(20, 50)  # held-out speaker's support pool (disjoint from the query)
TEST_TAKES = range(0, 5)  # official test split
FEATURE_VERSION = 2  # bump when the feature code changes (invalidates caches)
_NAME_RE = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


@dataclass(frozen=True)
class FeatureParams:
    """What determines the cached features (and therefore the cache key)."""

    steps: int = 50
    n_mels: int = 40
    encoding: str = "current"
    n_fft: int = 256
    win: int = 200
    hop: int = 80
    fmin: float = 20.0
    fmax: float = 4000.0
    dynamic_range_db: float = 60.0
    delta_threshold: float = 0.1

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise UserError("encoding", f"{self.encoding!r} is not known", ", ".join(ENCODINGS))
        if not 1 <= int(self.steps) <= 10_000:
            raise UserError("steps", f"{self.steps} is out of range", "1..10000 frames")
        if not 1 <= int(self.n_mels) <= self.n_fft // 2:
            raise UserError("n_mels", f"{self.n_mels} is out of range", f"1..{self.n_fft // 2}")

    @property
    def n_features(self) -> int:
        return self.n_mels * (2 if self.encoding == "delta" else 1)

    def key(self) -> str:
        d = dict(self.__dict__, version=FEATURE_VERSION)
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------
# Locating and caching
# --------------------------------------------------------------------------------------


def _candidates(data_dir: str | os.PathLike | None) -> list[tuple[Path, str]]:
    if data_dir is not None:
        if not str(data_dir).strip():  # '' would silently mean the current folder
            raise UserError("data-dir", "is empty", "a folder with {digit}_{speaker}_{take}.wav files, e.g. --data-dir fsdd/")
        return [(Path(data_dir), "--data-dir")]
    if os.environ.get("TPPROF_FSDD"):
        return [(Path(os.environ["TPPROF_FSDD"]), "$TPPROF_FSDD")]
    return [(c, "default") for c in default_roots()]


def default_roots() -> list[Path]:
    """Where FSDD is looked for without --data-dir or $TPPROF_FSDD: ``shared/data/fsdd`` inside
    this source checkout or beside it (``<checkout>/../shared``, as CI lays it out), and only
    when the package runs from a checkout (a ``pyproject.toml`` above it). Never the current
    folder or any ancestor: on a shared machine that could be someone else's folder."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        return []
    return [root / "shared" / "data" / "fsdd", root.parent / "shared" / "data" / "fsdd"]


def _wav_dir(root: Path) -> Path | None:
    return next((d for d in (root / "recordings", root)
                 if d.is_dir() and any(_NAME_RE.match(p.name) for p in d.iterdir())), None)


def find_fsdd(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding the ``{digit}_{speaker}_{take}.wav`` files (see module docstring)."""
    tried = []
    for root, how in _candidates(data_dir):
        if how != "default":
            tried.append(f"{root} ({how})")
        if (found := _wav_dir(root)) is not None:  # None also when root is no folder
            return found
    if not tried:
        tried = [", ".join(str(r) for r in default_roots()) or "no default (not a source checkout)"]
    raise UserError("data", "FSDD recordings not found in " + "; ".join(tried),
                    "--data-dir DIR or TPPROF_FSDD=DIR, a folder with {digit}_{speaker}_{take}.wav files "
                    "(or a recordings/ subfolder)")


def cache_dir() -> Path:
    """``$TPPROF_CACHE`` or ``~/.cache/tpprof``."""
    return Path(os.environ.get("TPPROF_CACHE") or Path.home() / ".cache" / "tpprof")


# --------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------


def mel_filterbank(n_mels: int, n_fft: int, sr: int = SAMPLE_RATE, fmin: float = 20.0,
                   fmax: float | None = None) -> np.ndarray:
    """Triangular filters on the HTK mel scale mel(f) = 2595 log10(1 + f/700): (n_fft//2+1, n_mels).

    Filter m rises linearly from centre f_{m−1} to f_m and falls to f_{m+1}; the n_mels + 2
    edges are equally spaced in mel between fmin and fmax. Peak height 1 (no area norm).
    """
    fmax = sr / 2 if fmax is None else fmax
    mel = lambda f: 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)  # noqa: E731
    inv = lambda m: 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)  # noqa: E731
    edges = inv(np.linspace(mel(fmin), mel(fmax), n_mels + 2))  # (n_mels+2,) Hz
    freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)  # (n_bins,) Hz
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (n_mels, 1) each
    up = (freqs[None, :] - lo) / (mid - lo)  # (n_mels, n_bins)
    down = (hi - freqs[None, :]) / (hi - mid)  # (n_mels, n_bins)
    return np.maximum(0.0, np.minimum(up, down)).T.astype(np.float64)  # (n_bins, n_mels)


def log_mel(signal: np.ndarray, p: FeatureParams, fb: np.ndarray | None = None) -> np.ndarray:
    """Log-mel energies in dB of a float signal: (n_frames, n_mels)."""
    fb = mel_filterbank(p.n_mels, p.n_fft, SAMPLE_RATE, p.fmin, p.fmax) if fb is None else fb
    x = np.asarray(signal, dtype=np.float64)
    if x.size < p.win:
        x = np.pad(x, (0, p.win - x.size))
    n_frames = 1 + (x.size - p.win) // p.hop
    frames = np.lib.stride_tricks.sliding_window_view(x, p.win)[:: p.hop][:n_frames]  # (n_frames, win)
    spec = np.fft.rfft(frames * np.hanning(p.win)[None, :], n=p.n_fft, axis=1)  # (n_frames, n_bins)
    power = spec.real ** 2 + spec.imag ** 2  # (n_frames, n_bins)
    return 10.0 * np.log10(power @ fb + 1e-10)  # (n_frames, n_mels)


def resample_frames(feat: np.ndarray, steps: int) -> np.ndarray:
    """Linear interpolation along time: (n_frames, F) → (steps, F)."""
    n = feat.shape[0]
    if n == 1:
        return np.repeat(feat, steps, axis=0)
    pos = np.linspace(0.0, n - 1, steps)  # (steps,) fractional frame index
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (pos - i0)[:, None]  # (steps, 1)
    return (1.0 - w) * feat[i0] + w * feat[i1]  # (steps, F)


def normalise(db: np.ndarray, dynamic_range_db: float = 60.0) -> np.ndarray:
    """x = (clip(dB, max − R, max) − (max − R)) / R ∈ [0, 1], per utterance."""
    top = float(db.max())
    return (np.clip(db, top - dynamic_range_db, top) - (top - dynamic_range_db)) / dynamic_range_db


def delta_encode(x: np.ndarray, threshold: float) -> np.ndarray:
    """Send-on-delta spikes of (T, F) values in [0, 1] → (T, 2F) 0/1: [up channels, down channels].

    A reference r (starting at x[0]) follows the signal in steps of θ: an up spike when
    x_t − r ≥ θ (then r += θ), a down spike when r − x_t ≥ θ (then r −= θ).
    """
    ref = x[0].copy()  # (F,)
    out = np.zeros((x.shape[0], 2 * x.shape[1]), dtype=np.float32)  # (T, 2F)
    f = x.shape[1]
    for t in range(x.shape[0]):
        up = x[t] - ref >= threshold  # (F,)
        down = ref - x[t] >= threshold  # (F,)
        ref = ref + threshold * up - threshold * down
        out[t, :f] = up
        out[t, f:] = down
    return out


def features(signal: np.ndarray, p: FeatureParams, fb: np.ndarray | None = None) -> np.ndarray:
    """One recording's float signal → (steps, n_features) float32 (steps 1–5 of the docstring)."""
    x = normalise(resample_frames(log_mel(signal, p, fb), p.steps), p.dynamic_range_db)
    if p.encoding == "delta":
        return delta_encode(x, p.delta_threshold)
    return x.astype(np.float32)


# --------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------


@dataclass
class FsddData:
    """All recordings' features and metadata: x (N, T, F) float32; digit, speaker, take (N,)."""

    x: np.ndarray
    digit: np.ndarray
    speaker: np.ndarray  # index into ``speakers``
    take: np.ndarray
    speakers: tuple[str, ...]
    params: FeatureParams
    source: str = ""

    def __len__(self) -> int:
        return int(self.digit.shape[0])

    def labels(self, task: str) -> np.ndarray:
        """(N,) labels of ``task``: digit, speaker index, or digit · S + speaker index."""
        check_task(task)
        if task == "digit":
            return self.digit.astype(np.int64)
        if task == "speaker":
            return self.speaker.astype(np.int64)
        return (self.digit * len(self.speakers) + self.speaker).astype(np.int64)

    def dataset(self, mask: np.ndarray, task: str, name: str) -> ArrayDataset:
        """The rows where ``mask`` holds, labelled for ``task``."""
        idx = np.flatnonzero(mask)
        classes = 10 * len(self.speakers) if task == "digit-speaker" else (
            len(self.speakers) if task == "speaker" else 10)
        meta = {"dataset": "fsdd", "task": task, "features": dict(self.params.__dict__), "split": name}
        return ArrayDataset(self.x[idx], self.labels(task)[idx], classes, name, meta)

    def speaker_index(self, name: str) -> int:
        s = str(name).strip().lower()
        if s not in self.speakers:
            raise UserError("speaker", f"{name!r} is not an FSDD speaker", ", ".join(self.speakers))
        return self.speakers.index(s)


def check_task(task: str) -> str:
    if task not in TASKS:
        raise UserError("task", f"{task!r} is not known", ", ".join(TASKS))
    return task


def _listing(wav_dir: Path) -> list[tuple[Path, int, str, int]]:
    """(path, digit, speaker, take), ordered take-major — (take, speaker, digit) — so that the
    first N samples of any split (``--limit N``) cover every digit and speaker evenly."""
    rows = [(p, int(m.group(1)), m.group(2).lower(), int(m.group(3)))
            for p in wav_dir.iterdir() if (m := _NAME_RE.match(p.name))]
    return sorted(rows, key=lambda r: (r[3], r[2], r[1]))


def _compute(rows: list[tuple[Path, int, str, int]], p: FeatureParams, progress: bool) -> np.ndarray:
    from scipy.io import wavfile
    from tqdm import tqdm

    fb = mel_filterbank(p.n_mels, p.n_fft, SAMPLE_RATE, p.fmin, p.fmax)
    out = np.zeros((len(rows), p.steps, p.n_features), dtype=np.float32)  # (N, T, F)
    for i, (path, *_rest) in enumerate(tqdm(rows, desc="fsdd features", unit="wav", disable=not progress,
                                            mininterval=1.0)):
        try:
            sr, sig = wavfile.read(path)
        except Exception as e:  # noqa: BLE001 - a broken recording is a data problem, not a bug
            raise UserError("data", f"{path.name} is not a readable WAV ({type(e).__name__})",
                            "8 kHz mono WAV files") from None
        if sr != SAMPLE_RATE:
            raise UserError("data", f"{path.name} has sample rate {sr}", f"{SAMPLE_RATE} Hz recordings")
        sig = sig.astype(np.float64)
        if sig.ndim == 2:
            sig = sig.mean(axis=1)
        out[i] = features(sig / 32768.0, p, fb)
    return out


def load_fsdd(data_dir: str | os.PathLike | None = None, params: FeatureParams | None = None,
              use_cache: bool = True, progress: bool = False) -> FsddData:
    """Features and metadata of every FSDD recording (cached; see module docstring)."""
    p = params or FeatureParams()
    wav_dir = find_fsdd(data_dir)
    rows = _listing(wav_dir)
    listing = hashlib.sha1("\n".join(f"{r[0].name}:{r[0].stat().st_size}" for r in rows).encode()).hexdigest()[:12]
    cache = cache_dir() / f"fsdd-{p.key()}-{listing}.npz"
    speakers = tuple(sorted({r[2] for r in rows}))
    digit = np.array([r[1] for r in rows], dtype=np.int64)
    speaker = np.array([speakers.index(r[2]) for r in rows], dtype=np.int64)
    take = np.array([r[3] for r in rows], dtype=np.int64)
    x = None
    if use_cache and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if z["x"].shape == (len(rows), p.steps, p.n_features):
                    x = z["x"]
        except Exception:  # noqa: BLE001 - a corrupt cache is recomputed
            x = None
    if x is None:
        x = _compute(rows, p, progress)
        if use_cache:
            _write_cache(cache, x)
    return FsddData(x, digit, speaker, take, speakers, p, str(wav_dir))


def _write_cache(path: Path, x: np.ndarray) -> None:
    """Atomic write (tmp + rename), so concurrent or interrupted runs never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, x=x)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs time


# --------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------


def official_split(data: FsddData, task: str = "digit") -> tuple[ArrayDataset, ArrayDataset]:
    """(train, test): takes 5–49 / takes 0–4 of every speaker and digit."""
    test = np.isin(data.take, TEST_TAKES)
    return data.dataset(~test, task, "official-train"), data.dataset(test, task, "official-test")


def parse_shots(shots: str | int) -> int | None:
    """``'1'`` → 1, ``'5'`` → 5, ``'all'`` → None (every support take)."""
    s = str(shots).strip().lower()
    if s == "all":
        return None
    n = parse_ascii_int(s, 3)
    if n is None or not 1 <= n <= len(SUPPORT_TAKES):
        raise UserError("shots", f"{shots!r} is not a shot count", f"1, 5, any 1..{len(SUPPORT_TAKES)}, or all")
    return n


@dataclass
class NewUserSplit:
    """Leave-one-speaker-out: pretraining sets of the other speakers, support/query of the held-out one."""

    speaker: str
    pretrain: ArrayDataset
    pretest: ArrayDataset
    support: ArrayDataset
    query: ArrayDataset


def new_user_split(data: FsddData, speaker: str, shots: str | int = "all", seed: int = 0,
                   task: str = "digit") -> NewUserSplit:
    """Pretrain on the other speakers; k support takes per digit of ``speaker``; a disjoint query set."""
    check_task(task)
    if task != "digit":
        raise UserError("task", f"{task!r} cannot be learnt from a speaker left out", "digit (for new-user splits)")
    s = data.speaker_index(speaker)
    k = parse_shots(shots)
    own = data.speaker == s
    test = np.isin(data.take, TEST_TAKES)
    query = own & np.isin(data.take, QUERY_TAKES)
    pool = own & np.isin(data.take, SUPPORT_TAKES)
    support = np.zeros(len(data), dtype=bool)
    rng = np.random.default_rng(seed)
    for d in range(10):
        idx = np.flatnonzero(pool & (data.digit == d))
        chosen = idx if k is None else rng.choice(idx, size=min(k, idx.size), replace=False)
        support[chosen] = True
    name = data.speakers[s]
    return NewUserSplit(
        speaker=name,
        pretrain=data.dataset(~own & ~test, task, f"pretrain-without-{name}"),
        pretest=data.dataset(~own & test, task, f"pretest-without-{name}"),
        support=data.dataset(support, task, f"support-{name}-{'all' if k is None else k}"),
        query=data.dataset(query, task, f"query-{name}"),
    )
