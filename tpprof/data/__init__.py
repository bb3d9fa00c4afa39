"""tpprof.data."""
