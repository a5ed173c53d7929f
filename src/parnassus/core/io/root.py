"""ROOT files in the CMS Open Simulation layout: the TTree ``evt_tree``.

Branches (one entry per event):

- ``ntruth`` (int32), ``truth_pt``, ``truth_eta``, ``truth_phi``, ``truth_vx``,
  ``truth_vy``, ``truth_vz`` (float32 arrays), ``truth_class`` (int32 array),
  optional ``truth_pdgid`` (int32 array): the GEN particles;
- ``npflow`` and ``pflow_*``: the same for the PFCs, absent in GEN-only files;
- ``eventNumber`` (int64).

Files are written jagged, with real particles only. Reading accepts any numeric
dtype (the CMS files store int64 classes, some files store doubles) and checks
that the counters agree with the jagged lengths.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import awkward as ak
import numpy as np
import uproot

from parnassus.core import events as ev
from parnassus.core.io import validation
from parnassus.exceptions import InvalidInputError, MissingBranchError, MissingTreeError

log = logging.getLogger(__name__)

TREE = "evt_tree"
EVENT_NUMBER = "eventNumber"

#: Branch prefix and counter of each collection of the event data model.
PREFIX = {"gen": "truth", "pfc": "pflow"}
COUNTER = {"gen": "ntruth", "pfc": "npflow"}

#: dtype of the class branches when parnassus writes them.
CLASS_DTYPE = np.int32

#: Compression of written files. ZSTD level 1 writes about 6 times faster than
#: uproot's default ZLIB level 1 and makes slightly smaller files (measured on
#: ttbar-sized events); ROOT reads it from version 6.20 on.
COMPRESSION = uproot.ZSTD(1)


def branch_name(collection: str, field: str) -> str:
    """Return the branch of a particle field, e.g. ("gen", "pt") -> "truth_pt"."""
    return f"{PREFIX[collection]}_{field}"


def _open(path: str | os.PathLike):
    try:
        return uproot.open(path)
    except (OSError, ValueError, uproot.deserialization.DeserializationError) as error:
        raise InvalidInputError(f"cannot read the ROOT file {path}: {error}") from error


def _tree(file, path) -> uproot.TTree:
    """Return ``evt_tree`` of an open file, or raise MissingTreeError listing what exists."""
    classnames = file.classnames(cycle=False)
    if TREE not in classnames:
        raise MissingTreeError(path, TREE, [f"{name} ({cls})" for name, cls in classnames.items()])
    if classnames[TREE] != "TTree":
        raise InvalidInputError(
            f"{TREE!r} in {path} is a {classnames[TREE]}, expected a TTree; write the file with "
            "parnassus (uproot's mktree), not by assigning a dict, which makes an RNTuple"
        )
    return file[TREE]


def _layout(tree, path, require_pfc: bool) -> dict:
    """Find which collections and optional branches a tree has, and check the required ones."""
    available = set(tree.keys())

    def require(branch):
        if branch not in available:
            raise MissingBranchError(path, TREE, branch, available)

    for field in ev.PARTICLE_FIELDS:
        require(branch_name("gen", field))

    collections = ["gen"]
    pfc_branches = [branch_name("pfc", field) for field in ev.PARTICLE_FIELDS]
    if require_pfc or any(branch in available for branch in pfc_branches):
        for branch in pfc_branches:
            require(branch)
        collections.append("pfc")

    return {
        "collections": collections,
        "pdgid": branch_name("gen", ev.PDGID_FIELD) in available,
        "counters": {c: COUNTER[c] for c in collections if COUNTER[c] in available},
        "event_number": EVENT_NUMBER in available,
    }


def _branches(layout: dict) -> list[str]:
    names = []
    for collection in layout["collections"]:
        names += [branch_name(collection, field) for field in ev.PARTICLE_FIELDS]
    if layout["pdgid"]:
        names.append(branch_name("gen", ev.PDGID_FIELD))
    names += list(layout["counters"].values())
    if layout["event_number"]:
        names.append(EVENT_NUMBER)
    return names


def _event_numbers(arrays, layout, entry_start: int, n_events: int, path) -> np.ndarray:
    if not layout["event_number"]:
        return entry_start + np.arange(n_events, dtype=np.int64)
    values = ak.to_numpy(arrays[EVENT_NUMBER])
    if values.ndim != 1 or values.dtype.kind not in "iuf":
        raise InvalidInputError(f"branch {EVENT_NUMBER!r} of tree {TREE!r} in {path} must hold one number per event")
    if values.dtype.kind == "f" and not np.all(values == np.round(values)):
        raise InvalidInputError(f"branch {EVENT_NUMBER!r} of tree {TREE!r} in {path} contains non-integer values; event numbers must be integers")
    return values.astype(np.int64)


def _check_counter(arrays, collection: str, layout: dict, context: validation.ChunkContext) -> None:
    """Raise InvalidInputError when ntruth/npflow disagree with the jagged lengths."""
    counter = layout["counters"].get(collection)
    if counter is None:
        return
    pt_branch = branch_name(collection, "pt")
    lengths = ak.to_numpy(ak.num(arrays[pt_branch], axis=1))
    declared = ak.to_numpy(arrays[counter])
    bad = lengths != declared
    if bad.any():
        first = int(np.argmax(bad))
        raise InvalidInputError(
            f"counter {counter!r} of tree {TREE!r} in {context.path} is {int(declared[first])} in "
            f"{context.event(first)} but branch {pt_branch!r} has {int(lengths[first])} values "
            f"({int(bad.sum())} such events in this chunk); the file is inconsistent, write it again"
        )


def _check_jagged(arrays, branch: str, context: validation.ChunkContext) -> None:
    if arrays[branch].ndim != 2:
        raise InvalidInputError(
            f"{context.location(branch)} has the type {arrays[branch].type}, expected one list of numbers per event"
        )


def _events_from_arrays(arrays, layout, context: validation.ChunkContext, report) -> ak.Array:
    """Check one chunk of branches and build the event batch."""
    collections = {}
    for collection in layout["collections"]:
        fields = validation.particle_fields(collection, layout["pdgid"])
        names = {field: branch_name(collection, field) for field in fields}
        for name in names.values():
            _check_jagged(arrays, name, context)
        _check_counter(arrays, collection, layout, context)
        columns = {field: arrays[name] for field, name in names.items()}
        collections[collection] = validation.build_particles(columns, names, context, report)

    return validation.assemble_events(collections, context.event_numbers, context, report)


def iter_root(
    path: str | os.PathLike,
    step_size: int,
    entry_start: int | None,
    entry_stop: int | None,
    require_pfc: bool,
    report: validation.InputReport,
) -> Iterator[ak.Array]:
    """Yield event batches of at most ``step_size`` events from ``evt_tree``.

    Args:
        path: the ROOT file.
        step_size: events per chunk.
        entry_start, entry_stop: the range of entries to read (None: all).
        require_pfc: raise MissingBranchError when the tree has no ``pflow_*`` branches.
        report: collects the corrections.

    Yields:
        ak.Array of events ``{gen, [pfc], event_number}``.
    """
    with _open(path) as file:
        tree = _tree(file, path)
        layout = _layout(tree, path, require_pfc)
        if not layout["event_number"]:
            log.warning("%s: tree %r has no %r branch; numbering events by entry", path, TREE, EVENT_NUMBER)

        chunks = tree.iterate(
            _branches(layout), step_size=step_size, entry_start=entry_start, entry_stop=entry_stop,
            library="ak", report=True,
        )
        while True:
            try:
                arrays, chunk_report = next(chunks)
            except StopIteration:
                return
            except (OSError, uproot.deserialization.DeserializationError) as error:
                raise InvalidInputError(f"cannot read tree {TREE!r} of {path}; the file is truncated or corrupt: {error}") from error
            start = int(chunk_report.tree_entry_start)
            numbers = _event_numbers(arrays, layout, start, len(arrays), path)
            context = validation.ChunkContext(str(path), start, numbers, tree=TREE)
            yield _events_from_arrays(arrays, layout, context, report)


def count_root(path: str | os.PathLike) -> int:
    """Return the number of entries of ``evt_tree`` (reads only the tree header)."""
    with _open(path) as file:
        return int(_tree(file, path).num_entries)


class RootWriter:
    """Write event batches to ``evt_tree`` of a new ROOT file, one ``extend`` per batch.

    The first batch fixes the layout (GEN-only or GEN and PFC, with or without
    ``truth_pdgid``); later batches must have the same one.
    """

    def __init__(self, path: str | os.PathLike, name: str | None = None):
        self.path = str(path)
        self.name = name or self.path
        self._file = uproot.recreate(path, compression=COMPRESSION)
        self._tree = None
        self._layout: tuple[bool, bool] | None = None

    @staticmethod
    def _collection(particles: ak.Array, with_pdgid: bool) -> ak.Array:
        columns = {field: particles[field] for field in ev.PARTICLE_FIELDS}
        columns["class"] = ak.values_astype(particles["class"], CLASS_DTYPE)
        if with_pdgid:
            columns[ev.PDGID_FIELD] = ak.values_astype(particles[ev.PDGID_FIELD], np.int32)
        return ak.zip(columns, depth_limit=2)

    def _data(self, events: ak.Array) -> dict:
        with_pfc = ev.has_pfc(events)
        with_pdgid = ev.PDGID_FIELD in ak.fields(events.gen)
        if self._layout is None:
            self._layout = (with_pfc, with_pdgid)
        elif self._layout != (with_pfc, with_pdgid):
            raise InvalidInputError(
                f"{self.name}: a batch with (PFCs, GEN pdgid) = {(with_pfc, with_pdgid)} cannot follow "
                f"batches with {self._layout}; every batch written to one file needs the same fields"
            )

        data = {PREFIX["gen"]: self._collection(events.gen, with_pdgid)}
        if with_pfc:
            data[PREFIX["pfc"]] = self._collection(events.pfc, False)
        data[EVENT_NUMBER] = ak.to_numpy(events.event_number).astype(np.int64)
        return data

    def write(self, events: ak.Array) -> None:
        """Append a checked event batch (see :func:`validation.check_events`)."""
        data = self._data(events)
        if self._tree is None:
            types = {name: (value.type.content if isinstance(value, ak.Array) else value.dtype) for name, value in data.items()}
            self._tree = self._file.mktree(
                TREE, types,
                field_name=lambda outer, inner: f"{outer}_{inner}",
                counter_name=lambda counted: f"n{counted}",
            )
        self._tree.extend(data)

    def close(self) -> None:
        """Close the file; a file without any batch gets an empty GEN-only tree."""
        if self._tree is None:
            self.write(validation.empty_events())
        self._file.close()

    def abort(self) -> None:
        self._file.close()
