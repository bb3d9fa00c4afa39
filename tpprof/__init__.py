"""tpprof: can this spiking network learn on this device, with this rule, at what cost?

Analytic memory/compute models (``tpprof.analytic``, no torch), torch learners for Traces
Propagation, TESS and BPTT (``tpprof.snn``), measurement (``tpprof.measure``) and reports.
"""

from tpprof._version import __version__
from tpprof.config import register_net_reader as _register_net_reader

__all__ = ["__version__"]


def _read_nir_net(path: str, neuron: object = None) -> object:
    """``--net model.nir``: :func:`tpprof.nir_io.net_for_parse` (imported on first use: numpy, h5py)."""
    from tpprof.nir_io import net_for_parse

    return net_for_parse(path, neuron)  # type: ignore[arg-type]


# The vocabulary knows no file format and nir_io builds on the vocabulary: the package joins them.
_register_net_reader(".nir", _read_nir_net)
