"""Random spike data of any shape, for memory and speed measurement (only shapes matter there).

x[n, t, ...] ~ Bernoulli(rate) i.i.d. (0/1 float32); y[n] ~ uniform over C classes. Seeded:
the same arguments give the same arrays. The labels carry no information about x.
"""

from __future__ import annotations

import numpy as np

from tpprof.data.arrays import ArrayDataset
from tpprof.errors import UserError


def synthetic_spikes(n: int, steps: int, input_shape: tuple[int, ...] | int, classes: int = 10,
                     rate: float = 0.05, seed: int = 0) -> ArrayDataset:
    """``n`` random spike trains: x (n, steps, *input_shape) 0/1 float32, y (n,) in 0..classes−1."""
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    if n < 1 or steps < 1 or classes < 1 or not shape or min(shape) < 1:
        raise UserError("synthetic", f"n={n}, steps={steps}, shape={shape}, classes={classes}",
                        "positive sizes")
    if not 0.0 <= rate <= 1.0:
        raise UserError("rate", f"{rate} is out of range", "a probability in [0, 1]")
    rng = np.random.default_rng(seed)
    x = (rng.random((n, steps, *shape), dtype=np.float32) < rate).astype(np.float32)  # (n, T, *shape)
    y = rng.integers(0, classes, size=n).astype(np.int64)  # (n,)
    return ArrayDataset(x, y, classes, "synthetic", {"dataset": "synthetic", "rate": rate, "seed": seed})


def synthetic_batch(batch: int, steps: int, input_shape: tuple[int, ...] | int, classes: int = 10,
                    rate: float = 0.05, seed: int = 0):
    """One torch mini-batch (x (B, T, *shape) float32, y (B,) int64) of random spikes."""
    import torch

    ds = synthetic_spikes(batch, steps, input_shape, classes, rate, seed)
    return torch.from_numpy(ds.x), torch.from_numpy(ds.y)
