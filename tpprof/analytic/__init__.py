"""tpprof.analytic."""
