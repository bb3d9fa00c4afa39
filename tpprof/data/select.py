"""``--data`` values → (train, test) datasets plus a JSON-able description for checkpoints.

``fsdd`` (features per :mod:`tpprof.data.fsdd`; official split, or leave-one-speaker-out
pretraining when ``holdout_speaker`` is set), ``PATH.npz`` (:mod:`tpprof.data.arrays`) or
``PATH.h5`` (SHD layout, :mod:`tpprof.data.shd`); ``test_path`` gives a separate test file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tpprof.data.arrays import ArrayDataset, holdout_split, load_npz, load_npz_split
from tpprof.errors import UserError

_ACCEPTED = "fsdd, a .npz file (x: [N, T, F], y: [N]) or an SHD-layout .h5 file"


def load_fsdd_features(spec: dict[str, Any]):
    """FSDD features as described by ``spec`` (data_dir, steps, n_mels, encoding)."""
    from tpprof.data.fsdd import FeatureParams, load_fsdd

    feats = spec.get("features") or {}
    params = FeatureParams(steps=int(feats.get("steps", 50)), n_mels=int(feats.get("n_mels", 40)),
                           encoding=str(feats.get("encoding", "current")))
    return load_fsdd(spec.get("data_dir"), params, progress=True)


def _file(path: str, steps: int | None) -> ArrayDataset:
    p = Path(path)
    if p.suffix.lower() == ".npz":
        return load_npz(p)
    if p.suffix.lower() in (".h5", ".hdf5"):
        from tpprof.data.shd import load_shd

        return load_shd(p, steps=steps or 100)
    raise UserError("data", f"{path!r} is neither fsdd nor a .npz/.h5 file", _ACCEPTED)


def load_train_test(data: str, task: str = "digit", *, data_dir: str | None = None, steps: int | None = None,
                    n_mels: int = 40, encoding: str = "current", test_path: str | None = None,
                    holdout_speaker: str | None = None, seed: int = 0) -> tuple[ArrayDataset, ArrayDataset, dict]:
    """(train, test, spec); ``spec`` records how to load the same data again (evaluate, finetune)."""
    if str(data).strip().lower() == "fsdd":
        from tpprof.data.fsdd import check_task, find_fsdd, new_user_split, official_split

        check_task(task)
        spec = {"kind": "fsdd", "task": task, "data_dir": data_dir,
                "features": {"steps": steps or 50, "n_mels": n_mels, "encoding": encoding},
                "holdout_speaker": holdout_speaker}
        fs = load_fsdd_features(spec)
        spec["data_dir"] = str(find_fsdd(data_dir))  # where it was found: --data-dir, $TPPROF_FSDD or default
        spec["data_dir_from"] = ("--data-dir" if data_dir is not None
                                 else "$TPPROF_FSDD" if os.environ.get("TPPROF_FSDD") else "default")
        if holdout_speaker:
            split = new_user_split(fs, holdout_speaker, "all", seed, task)
            spec["holdout_speaker"] = split.speaker
            spec["split"] = f"pretrain without {split.speaker} (takes 5-49 train, 0-4 test)"
            return split.pretrain, split.pretest, spec
        train, test = official_split(fs, task)
        spec["split"] = "official (takes 0-4 test, 5-49 train)"
        return train, test, spec
    if holdout_speaker:
        raise UserError("holdout-speaker", "only applies to --data fsdd", "--data fsdd")
    if test_path:
        train, test = _file(data, steps), _file(test_path, steps)
        if train.input_shape != test.input_shape or train.steps != test.steps:
            raise UserError("test-data", f"shape [T={test.steps}, {test.input_shape}] differs from the training "
                            f"data's [T={train.steps}, {train.input_shape}]", "the same T and features")
        train.classes = test.classes = max(train.classes, test.classes)
    elif Path(data).suffix.lower() == ".npz":
        train, test = load_npz_split(data, seed)
    else:  # the same seeded 20 % hold-out as a .npz without x_test
        train, test = holdout_split(_file(data, steps), seed)
    spec = {"kind": "file", "path": str(data), "test_path": test_path, "task": "labels", "steps": train.steps}
    return train, test, spec
