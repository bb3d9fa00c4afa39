"""Structural pre-check of an untrusted HDF5 file (a ``.nir``) before anything reads its data.

HDF5 can make a file read *other* files: a dataset may keep its raw data in external files
(``H5Pset_external``), be a virtual dataset mapping other files' datasets, or a link may be an
external link to another file. A reader (``nir.read``) follows all three when it loads an array,
so a crafted ``.nir`` reads any file on the machine. It can also declare arrays of any size
without storing them (unwritten chunks cost nothing on disk), nest groups thousands deep, or alias
one group from many places (hard links), so one small file expands into gigabytes or hours.

:func:`check_hdf5_tree` walks the group tree under one root with an explicit stack, opening each
child relative to its open parent (linear in the number of links; ``visititems`` re-resolves every
full path from the root, quadratic in depth), and refuses, before any dataset is read:

* external raw storage, virtual datasets, external / soft / user-defined links (a NIR file written
  by ``nir.write`` has none of them);
* filters other than deflate, shuffle, Fletcher-32, LZF, N-bit and scale-offset (an unknown filter
  makes HDF5 search its plugin path for a library to load);
* depth > ``max_depth``, links visited > ``max_objects`` (each visit counts, so hard-link aliasing
  and cycles are bounded), and the elements / bytes summed over every dataset visit above
  ``max_elements`` / ``max_bytes`` (what the reader would allocate, before it allocates it).

Datasets are opened with the external-file and virtual-dataset prefixes pointed at a path that
cannot exist, so even a dataset this check missed could not reach another file through them.
Every refusal is a :class:`ValueError` whose message is one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Limits", "check_hdf5_tree", "HostileHDF5"]

#: A prefix no file lives under: HDF5 prepends it to external / virtual source file names.
_NOWHERE = b"/nonexistent/tpprof-refuses-other-files/"


class HostileHDF5(ValueError):
    """The file's structure is refused (one-line message)."""


@dataclass(frozen=True)
class Limits:
    """Caps on what one file may make the reader do (see the module docstring)."""

    max_depth: int = 32
    max_objects: int = 20_000
    max_elements: int = 10**8
    max_bytes: int = 8 * 10**8


def _allowed_filters() -> frozenset[int]:
    from h5py import h5z

    return frozenset({h5z.FILTER_DEFLATE, h5z.FILTER_SHUFFLE, h5z.FILTER_FLETCHER32, h5z.FILTER_LZF,
                      h5z.FILTER_NBIT, h5z.FILTER_SCALEOFFSET})


def _link_kind(group_id: Any, name: bytes) -> int:
    """The link's type (hard / soft / external / user-defined) without following it."""
    return group_id.links.get_info(name).type


def _check_dataset(dset_id: Any, where: str, allowed: frozenset[int]) -> tuple[int, int]:
    """Refuse external / virtual storage and unknown filters; return (elements, bytes) declared."""
    import math

    from h5py import h5d, h5s

    dcpl = dset_id.get_create_plist()
    if dcpl.get_external_count() > 0:
        raise HostileHDF5(f"dataset {where!r} keeps its data in an external file")
    if dcpl.get_layout() == h5d.VIRTUAL:
        raise HostileHDF5(f"dataset {where!r} is a virtual dataset (it maps other files' data)")
    for i in range(dcpl.get_nfilters()):
        code = dcpl.get_filter(i)[0]
        if code not in allowed:
            raise HostileHDF5(f"dataset {where!r} uses HDF5 filter {code}")
    space = dset_id.get_space()
    if space.get_simple_extent_type() != h5s.SIMPLE:
        return 0, 0
    n = math.prod(space.shape)
    return n, n * max(1, dset_id.get_type().get_size())


def check_hdf5_tree(file: Any, root: str, limits: Limits = Limits()) -> None:
    """Walk ``file[root]`` (an open ``h5py.File``) and raise :class:`HostileHDF5` on the first
    structure refused (see the module docstring). Reads no dataset's data."""
    from h5py import h5d, h5g, h5l, h5o, h5p

    allowed = _allowed_filters()
    dapl = h5p.create(h5p.DATASET_ACCESS)
    dapl.set_efile_prefix(_NOWHERE)
    dapl.set_virtual_prefix(_NOWHERE)
    name = root.encode()
    if not file.id.links.exists(name):
        raise HostileHDF5(f"has no {root!r} group")
    if _link_kind(file.id, name) != h5l.TYPE_HARD:
        raise HostileHDF5(f"{root!r} is a link to elsewhere, not a group")
    objects = elements = nbytes = 0
    stack: list[tuple[Any, str, int]] = []
    top = h5o.open(file.id, name)
    if not isinstance(top, h5g.GroupID):
        raise HostileHDF5(f"{root!r} is not a group")
    stack.append((top, root, 1))
    while stack:
        gid, path, depth = stack.pop()
        if depth > limits.max_depth:
            raise HostileHDF5(f"groups nest deeper than {limits.max_depth} levels (at {path[:80]!r}…)")
        for child in _names(gid, limits.max_objects - objects + 1):
            where = f"{path}/{child.decode('utf8', 'replace')}"
            objects += 1
            if objects > limits.max_objects:
                raise HostileHDF5(f"holds more than {limits.max_objects} objects")
            kind = _link_kind(gid, child)
            if kind == h5l.TYPE_EXTERNAL:
                raise HostileHDF5(f"{where!r} is an external link to another file")
            if kind != h5l.TYPE_HARD:
                raise HostileHDF5(f"{where!r} is a soft or user-defined link (a NIR file has none)")
            info = h5o.get_info(gid, child)
            if info.type == h5o.TYPE_GROUP:
                stack.append((h5g.open(gid, child), where, depth + 1))
            elif info.type == h5o.TYPE_DATASET:
                n, b = _check_dataset(h5d.open(gid, child, dapl=dapl), where, allowed)
                elements += n
                nbytes += b
                if elements > limits.max_elements or nbytes > limits.max_bytes:
                    raise HostileHDF5(f"declares more than {limits.max_elements:.0e} elements / "
                                      f"{limits.max_bytes / 1e6:.0f} MB in all (at {where!r})")
            # a committed datatype holds no data and is not read


def _names(gid: Any, at_most: int) -> list[bytes]:
    """Up to ``at_most`` link names of one group (low level: no path is re-resolved from the root;
    the iteration stops early, so a group of 10^6 links costs no more than the cap)."""
    out: list[bytes] = []

    def add(name: bytes) -> bool | None:
        out.append(name)
        return True if len(out) >= at_most else None  # non-None stops H5Literate

    if at_most > 0:
        gid.links.iterate(add)
    return out
