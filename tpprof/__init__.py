"""tpprof: can this spiking network learn on this device, with this rule, at what cost?

Analytic memory/compute models (``tpprof.analytic``, no torch), torch learners for Traces
Propagation, TESS and BPTT (``tpprof.snn``), measurement (``tpprof.measure``) and reports.
"""

__version__ = "0.1.0"
