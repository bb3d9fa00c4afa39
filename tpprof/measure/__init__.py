"""tpprof.measure."""
