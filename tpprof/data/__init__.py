"""Data for the learners: FSDD speech, a user's .npz, SHD-layout .h5 files, synthetic spikes.

Every loader returns :class:`ArrayDataset` (x (N, T, *input_shape), y (N,)).
"""

from tpprof.data.arrays import ArrayDataset, from_arrays, load_npz, load_npz_split
from tpprof.data.fsdd import (FeatureParams, FsddData, NewUserSplit, find_fsdd, load_fsdd, new_user_split,
                              official_split)
from tpprof.data.shd import load_shd
from tpprof.data.synthetic import synthetic_batch, synthetic_spikes

__all__ = ["ArrayDataset", "FeatureParams", "FsddData", "NewUserSplit", "find_fsdd", "from_arrays", "load_fsdd",
           "load_npz", "load_npz_split", "load_shd", "new_user_split", "official_split", "synthetic_batch",
           "synthetic_spikes"]
