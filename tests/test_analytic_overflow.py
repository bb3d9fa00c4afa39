"""Sizes past 2^63 (issue 23, T1): the analytic model never raises a traceback nor wraps silently.
One Config keeps exact Python ints where it can and refuses in one line where numpy would
overflow; a grid (int64 arrays, which wrap without a word) refuses a group that could pass 2^63."""

from __future__ import annotations

import pytest

from tpprof.analytic import estimate, estimate_grid
from tpprof.cli import main
from tpprof.config import Grid, make_config
from tpprof.errors import UserError

HUGE = "10000000x10000000x10000000-c1000000-10000000"  # the reported net: 10^27 neurons in its conv layer
BIG = "1x3000000x3000000-c100-10"  # 9·10^14 neurons: BPTT's peak at B = 128, T = 100 is 9.5·10^19 bytes


def test_reported_net_is_a_one_line_error(capsys):
    with pytest.raises(UserError) as ei:
        estimate(make_config(HUGE, "tp"))
    assert "\n" not in str(ei.value) and "2^63" in str(ei.value)
    assert main(["estimate", "--net", HUGE]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "2^63" in err


def test_one_config_past_2_63_stays_exact():
    """Python ints: the BPTT peak of BIG is 9.5·10^19 (> 2^63), computed exactly, as 2× the net's
    input costs 2× (a linear family: doubling T doubles the saved states)."""
    a = estimate(make_config(BIG, "bptt", batch=128, steps=100))
    b = estimate(make_config(BIG, "bptt", batch=128, steps=200))
    assert isinstance(a.peak_bytes, int) and a.peak_bytes > 2**63
    assert b.peak_bytes > a.peak_bytes and b.peak_bytes < 2 * a.peak_bytes + 2**40


def test_grid_refuses_a_group_int64_would_wrap():
    grid = Grid(make_config(BIG, "bptt", batch=128, steps=100), (("batch", (1, 128)),))
    with pytest.raises(UserError, match="2\\^63"):
        estimate_grid(grid)


def test_grid_of_ordinary_nets_is_unchanged():
    grid = Grid(make_config("shd", "tp"), (("batch", (1, 128)), ("steps", (10, 1000))))
    df = estimate_grid(grid)
    one = estimate(make_config("shd", "tp", batch=128, steps=1000))
    assert int(df["peak_bytes"].iloc[-1]) == one.peak_bytes
