"""tpprof.snn."""
