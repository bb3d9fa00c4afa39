"""estimate_grid turns numpy's huge-page advice off while it fills its columns, and back after."""

from __future__ import annotations

import numpy as np
import pytest

from tpprof.analytic import estimate_grid
from tpprof.config import Grid, make_config

switch = getattr(getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None)


@pytest.mark.skipif(switch is None, reason="this numpy has no huge-page switch")
@pytest.mark.parametrize("before", [True, False])
def test_the_advice_is_restored_after_a_grid(before: bool) -> None:
    old = switch(before)
    try:
        estimate_grid(Grid(make_config("shd"), (("rule", ("tp", "bptt")), ("batch", (1, 2)))))
        assert switch(old) is before  # the setting found after the call is the one set before it
    finally:
        switch(old)
