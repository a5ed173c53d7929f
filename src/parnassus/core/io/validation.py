"""Input checks shared by every reader and writer.

Readers hand each chunk's raw particle columns (any numeric dtype) to
:func:`build_particles`, which either raises an error that names the file, the
branch, the event and the value, or returns particle records in the dtypes of
:mod:`parnassus.core.events` (float32 kinematics, int8 class, int32 PDG id).

What is an error and what is corrected:

- NaN or infinite values, class codes outside 0-4, non-integer class codes or PDG
  ids, jagged branches of one collection with different lengths: errors.
- phi outside (-pi, pi]: wrapped into the range, counted and logged.
- pT <= 0: kept (the detector card's pT cut removes them), counted and logged.
- Events without particles: kept, counted and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)

#: Tolerance (rad) on the phi range: float32(pi) exceeds pi by 8.7e-8 rad, and a
#: float32 angle that was computed as exactly +-pi must not count as out of range.
PHI_TOLERANCE = 1e-6

ALLOWED_CLASSES = ", ".join(f"{c.value} ({c.label})" for c in ev.ParticleClass)


@dataclass
class ChunkContext:
    """The origin of a chunk of events, used to name an event in a message.

    Attributes:
        path: the file (or a description such as "events written to out.root").
        entry_offset: the entry number in the file of the chunk's first event.
        event_numbers: the event number of each event of the chunk, or None.
        tree: the ROOT tree, or None for other formats.
    """

    path: str
    entry_offset: int
    event_numbers: np.ndarray | None = None
    tree: str | None = None

    def event(self, index: int) -> str:
        """Describe event ``index`` of the chunk as ``entry E (event number N)``."""
        text = f"entry {self.entry_offset + int(index)}"
        if self.event_numbers is not None and len(self.event_numbers) > index:
            text += f" (event number {int(self.event_numbers[index])})"
        return text

    def location(self, branch: str) -> str:
        """Describe a branch (or field) of the file as ``branch B of tree T in F``."""
        if self.tree is not None:
            return f"branch {branch!r} of tree {self.tree!r} in {self.path}"
        return f"field {branch!r} in {self.path}"


@dataclass
class InputReport:
    """Counts of the corrections made while reading (or writing) one file.

    Attributes:
        path: the file.
        events: events read.
        phi_wrapped: per branch, particles whose phi was wrapped into (-pi, pi].
        nonpositive_pt: per branch, particles with pT <= 0 (kept).
        no_gen_events: events without a GEN particle (kept).
        empty_events: events with neither GEN particles nor PFCs (kept; only counted
            when the file has PFCs).
        invisible_dropped: invisible final-state particles (neutrinos) left out (HepMC3 only).
        zero_pt_dropped: final-state particles with pT = 0, along the beam, left out (HepMC3 only).
        first_example: per branch (and for "no gen", "empty"), the first event concerned.
    """

    path: str
    events: int = 0
    phi_wrapped: dict[str, int] = field(default_factory=dict)
    nonpositive_pt: dict[str, int] = field(default_factory=dict)
    no_gen_events: int = 0
    empty_events: int = 0
    invisible_dropped: int = 0
    zero_pt_dropped: int = 0
    first_example: dict[str, str] = field(default_factory=dict)

    def add(self, counter: dict[str, int], key: str, count: int, example: str | None = None) -> None:
        """Add ``count`` to ``counter[key]`` and remember the first example under ``key``."""
        if count <= 0:
            return
        counter[key] = counter.get(key, 0) + int(count)
        if example is not None:
            self.first_example.setdefault(key, example)

    @property
    def corrections(self) -> int:
        """Number of values that were changed (phi wraps)."""
        return sum(self.phi_wrapped.values())

    def log(self, include_empty: bool = True) -> None:
        """Log one warning per kind of correction, with its count and first event.

        Args:
            include_empty: also log the counts of events without particles.
        """
        for branch, count in self.phi_wrapped.items():
            log.warning(
                "%s: wrapped phi of %d particles in %s into (-pi, pi] (first: %s)",
                self.path, count, branch, self.first_example.get(branch, "?"),
            )
        for branch, count in self.nonpositive_pt.items():
            log.warning(
                "%s: %d particles in %s have pT <= 0 GeV; kept, the detector card's pT cut removes them (first: %s)",
                self.path, count, branch, self.first_example.get(branch, "?"),
            )
        if include_empty and self.no_gen_events:
            log.warning(
                "%s: %d of %d events have no GEN particle; kept (first: %s)",
                self.path, self.no_gen_events, self.events, self.first_example.get("no gen", "?"),
            )
        if include_empty and self.empty_events:
            log.warning(
                "%s: %d of %d events have neither GEN particles nor PFCs; kept (first: %s)",
                self.path, self.empty_events, self.events, self.first_example.get("empty", "?"),
            )
        if self.zero_pt_dropped:
            log.warning(
                "%s: left out %d final-state particles with pT = 0 (along the beam, infinite eta) (first: %s)",
                self.path, self.zero_pt_dropped, self.first_example.get("pt = 0", "?"),
            )
        if self.invisible_dropped:
            log.info("%s: left out %d invisible final-state particles (neutrinos)", self.path, self.invisible_dropped)


def _first_event(counts: np.ndarray, flat_index: int) -> int:
    """Return the event that contains flat particle ``flat_index``, given particles per event."""
    return int(np.searchsorted(np.cumsum(counts), flat_index, side="right"))


def _flat_numeric(values: ak.Array, name: str, context: ChunkContext) -> np.ndarray:
    """Return the flat numpy values of a jagged numeric column, or raise if it is not numeric."""
    flat = ak.to_numpy(ak.flatten(values, axis=None))
    if flat.dtype.kind not in "iuf":
        raise InvalidInputError(
            f"{context.location(name)} has dtype {flat.dtype}, expected numbers (float or int)"
        )
    return flat


def check_finite(flat: np.ndarray, counts: np.ndarray, name: str, context: ChunkContext) -> None:
    """Raise InvalidInputError naming the first event with a NaN or infinite value."""
    if flat.dtype.kind != "f":
        return
    bad = ~np.isfinite(flat)
    if not bad.any():
        return
    first = int(np.argmax(bad))
    event = _first_event(counts, first)
    kind = "NaN" if np.isnan(flat[first]) else "infinite"
    raise InvalidInputError(
        f"{context.location(name)} has a {kind} value ({flat[first]}) in {context.event(event)}, "
        f"{int(bad.sum())} such values in this chunk; remove or fix these events before using the file"
    )


def check_integers(flat: np.ndarray, counts: np.ndarray, name: str, context: ChunkContext) -> None:
    """Raise InvalidInputError unless every value of an id column is a whole number."""
    if flat.dtype.kind != "f":
        return
    check_finite(flat, counts, name, context)
    bad = flat != np.round(flat)
    if bad.any():
        first = int(np.argmax(bad))
        raise InvalidInputError(
            f"{context.location(name)} has the non-integer value {flat[first]} in "
            f"{context.event(_first_event(counts, first))}; expected integer codes"
        )


def check_class_codes(flat: np.ndarray, counts: np.ndarray, name: str, context: ChunkContext) -> None:
    """Raise InvalidInputError naming the first particle whose class code is not 0-4."""
    check_integers(flat, counts, name, context)
    bad = (flat < 0) | (flat >= ev.N_CLASSES)
    if bad.any():
        first = int(np.argmax(bad))
        value = flat[first].item()
        raise InvalidInputError(
            f"{context.location(name)} has the class code {value:g} in "
            f"{context.event(_first_event(counts, first))} ({int(bad.sum())} such particles in this chunk); "
            f"allowed codes are {ALLOWED_CLASSES}"
        )


def wrap_phi_counted(flat: np.ndarray, counts: np.ndarray, name: str, context: ChunkContext, report: InputReport) -> np.ndarray:
    """Return phi wrapped into (-pi, pi] where it lies outside, counting the wrapped values."""
    outside = (flat > np.pi + PHI_TOLERANCE) | (flat < -np.pi - PHI_TOLERANCE)
    n_outside = int(outside.sum())
    if n_outside == 0:
        return flat
    first = int(np.argmax(outside))
    example = f"{context.event(_first_event(counts, first))}, phi = {flat[first]:.6g} rad"
    report.add(report.phi_wrapped, name, n_outside, example)
    wrapped = flat.astype(np.float64, copy=True)
    wrapped[outside] = ev.wrap_phi(wrapped[outside])
    return wrapped


def build_particles(
    columns: dict[str, ak.Array],
    names: dict[str, str],
    context: ChunkContext,
    report: InputReport,
) -> ak.Array:
    """Check raw particle columns and build particle records.

    Args:
        columns: jagged arrays (events, particles) for the fields of
            :data:`parnassus.core.events.PARTICLE_FIELDS`, and optionally ``pdgid``;
            any numeric dtype.
        names: the branch or field name of each column in the file, for messages.
        context: where the chunk comes from.
        report: collects the corrections.

    Returns:
        Jagged particle records (see :func:`parnassus.core.events.make_particles`).

    Raises:
        InvalidInputError: a non-numeric column, columns of unequal jagged lengths,
            NaN or infinite values, class codes outside 0-4, non-integer ids.
    """
    reference = ev.PARTICLE_FIELDS[0]
    counts = ak.to_numpy(ak.num(columns[reference], axis=1))

    flat = {}
    for name, values in columns.items():
        these_counts = ak.to_numpy(ak.num(values, axis=1))
        if not np.array_equal(these_counts, counts):
            event = int(np.argmax(these_counts != counts))
            raise InvalidInputError(
                f"{context.location(names[name])} has {these_counts[event]} values in {context.event(event)} "
                f"but {names[reference]!r} has {counts[event]}; the branches of one collection must have equal lengths"
            )
        flat[name] = _flat_numeric(values, names[name], context)

    for name in ev.FLOAT_FIELDS:
        check_finite(flat[name], counts, names[name], context)
    check_class_codes(flat["class"], counts, names["class"], context)
    if ev.PDGID_FIELD in flat:
        check_integers(flat[ev.PDGID_FIELD], counts, names[ev.PDGID_FIELD], context)

    flat["phi"] = wrap_phi_counted(flat["phi"], counts, names["phi"], context, report)

    nonpositive = flat["pt"] <= 0
    if nonpositive.any():
        first = int(np.argmax(nonpositive))
        example = context.event(_first_event(counts, first))
        report.add(report.nonpositive_pt, names["pt"], int(nonpositive.sum()), example)

    jagged = {name: ak.unflatten(values, counts) for name, values in flat.items()}
    return ev.make_particles(
        jagged["pt"], jagged["eta"], jagged["phi"], jagged["vx"], jagged["vy"], jagged["vz"], jagged["class"],
        pdgid=jagged.get(ev.PDGID_FIELD),
    )


def particle_fields(collection: str, with_pdgid: bool) -> list[str]:
    """Return the fields of a particle collection: those of the data model, plus the PDG id for GEN when present."""
    return list(ev.PARTICLE_FIELDS) + ([ev.PDGID_FIELD] if collection == "gen" and with_pdgid else [])


def assemble_events(particles: dict[str, ak.Array], event_numbers, context: ChunkContext, report: InputReport) -> ak.Array:
    """Make the event batch of checked particle collections and count its empty events into ``report``.

    Args:
        particles: the ``gen`` records and, when present, the ``pfc`` records
            (the output of :func:`build_particles`).
        event_numbers: one int per event.
        context: the origin of the chunk, for the empty-event examples.
        report: collects the counts.

    Returns:
        ak.Array of events ``{gen, [pfc], event_number}``.
    """
    events = ev.make_events(particles["gen"], particles.get("pfc"), event_numbers)
    count_empty_events(events, context, report)
    return events


def empty_events() -> ak.Array:
    """Return a GEN-only event batch with no events, in the dtypes of the data model."""
    nothing = ak.unflatten(np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64))
    return ev.make_events(ev.make_particles(*([nothing] * len(ev.PARTICLE_FIELDS))))


def count_empty_events(events: ak.Array, context: ChunkContext, report: InputReport) -> None:
    """Count events without GEN particles, and without any particle, into ``report``."""
    n_gen = ak.to_numpy(ak.num(events.gen, axis=1))
    no_gen = n_gen == 0
    report.events += len(events)
    if no_gen.any():
        report.no_gen_events += int(no_gen.sum())
        report.first_example.setdefault("no gen", context.event(int(np.argmax(no_gen))))
    if ev.has_pfc(events):
        empty = no_gen & (ak.to_numpy(ak.num(events.pfc, axis=1)) == 0)
        if empty.any():
            report.empty_events += int(empty.sum())
            report.first_example.setdefault("empty", context.event(int(np.argmax(empty))))


def check_events(events: ak.Array, context: ChunkContext, report: InputReport) -> ak.Array:
    """Check an event batch of the data model (before writing) and normalise its dtypes.

    Applies :func:`build_particles` to ``gen`` and ``pfc`` with the field names
    ``gen.pt`` ... as branch names, and counts empty events.

    Raises:
        InvalidInputError: ``events`` lacks ``gen`` or a particle field, or contains invalid values.
    """
    fields = ak.fields(events)
    if "gen" not in fields:
        raise InvalidInputError(f"{context.path}: the events have no 'gen' field (fields: {', '.join(fields) or 'none'})")

    collections = {}
    for collection in ("gen", "pfc"):
        if collection not in fields:
            continue
        particles = events[collection]
        present = set(ak.fields(particles))
        expected = particle_fields(collection, ev.PDGID_FIELD in present)
        missing = [name for name in expected if name not in present]
        if missing:
            raise InvalidInputError(
                f"{context.path}: the {collection} particles lack the fields {', '.join(missing)} "
                f"(fields: {', '.join(sorted(present))})"
            )
        columns = {name: particles[name] for name in expected}
        names = {name: f"{collection}.{name}" for name in expected}
        collections[collection] = build_particles(columns, names, context, report)

    if "event_number" in fields:
        event_number = ak.to_numpy(events.event_number)
    else:
        event_number = context.entry_offset + np.arange(len(events), dtype=np.int64)
    return assemble_events(collections, event_number, context, report)
