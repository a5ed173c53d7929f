"""HepMC3 ASCII files (plain or gzip): GEN particles in, GEN particles out (for DELPHES).

Reading keeps the final-state particles (status 1) and maps their PDG ids to
classes with :func:`parnassus.core.events.pdgid_to_class`; invisible particles
(neutrinos) and particles with pT = 0 (along the beam) are left out and counted.
pT, eta and phi come from the momentum, the vertex is the particle's production
vertex converted to cm, and the event number is HepMC's.

Writing needs what the event data model does not store, so it approximates:

- mass: from the PDG id when GEN has ``pdgid`` (table below, PDG Review of
  Particle Physics 2024). Otherwise it comes from the class: pi+- for charged
  hadrons, K0L for neutral hadrons, e, mu, photon;
- PDG id when GEN has none: 211, 11, 13, 130, 22 by class, with the charge sign
  alternating between the particles of a class in an event (the sign is not stored);
- production time: 0.

Each distinct production vertex (vx, vy, vz) of an event becomes one vertex
whose only incoming particle is a generator-specific pseudo-particle (PDG id 90,
status 11, the sum of the outgoing four-momenta, no production vertex). HepMC3's
ASCII reader rejects vertices without incoming particles, and this structure
needs no beam particles; readers that keep status-1 particles ignore the
pseudo-particles.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.core.io import validation
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)

MM_PER_CM = 10.0

#: gzip compression level of .gz outputs.
GZIP_LEVEL = 3

#: Masses (GeV) of particles that are stable at generator level, by |PDG id|,
#: from the PDG Review of Particle Physics (2024).
STABLE_MASSES_GEV = {
    11: 0.51099895e-3,  # e
    13: 0.1056583755,  # mu
    22: 0.0,  # photon
    111: 0.1349768,  # pi0 (when not decayed)
    130: 0.497611,  # K0L
    211: 0.13957039,  # pi+-
    310: 0.497611,  # K0S
    321: 0.493677,  # K+-
    2112: 0.93956542052,  # n
    2212: 0.93827208816,  # p
    3112: 1.197449,  # Sigma-
    3122: 1.115683,  # Lambda
    3222: 1.18937,  # Sigma+
    3312: 1.32171,  # Xi-
    3322: 1.31486,  # Xi0
    3334: 1.67245,  # Omega-
}

#: PDG id written for each class when GEN has no pdgid, before the charge sign.
CLASS_PDGID = np.array([211, 11, 13, 130, 22], dtype=np.int64)

#: PDG id and status of the pseudo-particle entering each vertex. PDG ids 81-100
#: are reserved for generator-specific pseudo-particles, HepMC3 statuses 11-200
#: for generator-specific use.
PSEUDO_PDGID = 90
PSEUDO_STATUS = 11

_NAMES = {
    "pt": "pT from the particle momentum",
    "eta": "eta from the particle momentum",
    "phi": "phi from the particle momentum",
    "vx": "production vertex x",
    "vy": "production vertex y",
    "vz": "production vertex z",
    "class": "class from the PDG id",
    ev.PDGID_FIELD: "PDG id",
}


def _open_stream(path: Path):
    with open(path, "rb") as stream:
        gzipped = stream.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _event_lines(path: Path) -> Iterator[bytes]:
    """Yield the event header lines ("E number vertices particles") of a HepMC3 ASCII file."""
    with _open_stream(path) as stream:
        for line in stream:
            if line.startswith(b"E "):
                yield line


def count_hepmc(path: str | os.PathLike) -> int:
    """Return the number of events, counting the event header lines (no parsing)."""
    return sum(1 for _ in _event_lines(Path(path)))


def _unreadable_event(path: Path, index: int) -> InvalidInputError:
    """Build the error for an event that HepMC3 could not read, from its header line."""
    for i, line in enumerate(_event_lines(path)):
        if i == index:
            fields = line.split()
            number = fields[1].decode(errors="replace") if len(fields) > 1 else "?"
            if len(fields) > 3 and fields[3] == b"0":
                return InvalidInputError(
                    f"HepMC3 event {number} (entry {index}) of {path} has no particles, so no final-state "
                    "particles; remove the event"
                )
            return InvalidInputError(
                f"HepMC3 event {number} (entry {index}) of {path} could not be parsed; the file is truncated or corrupt"
            )
    return InvalidInputError(f"{path}: HepMC3 event at entry {index} could not be read")


#: Buffer between a Python gzip stream and HepMC3's reader.
_STREAM_BUFFER_BYTES = 1 << 20


class _Reader:
    """A HepMC3 ASCII reader that tells a failed event from the end of the file.

    NOTE: HepMC3's parser reads every entry of the record. Files with the whole
    Pythia8 record (about 1,100 entries per 7 TeV ttbar event) read at about 50
    events/s on one CPU core, and files with final-state particles only read 10 times faster.
    """

    def __init__(self, path: Path):
        import pyhepmc
        from pyhepmc.io import ReaderAscii, pyiostream

        self.path = path
        self._stream = _open_stream(path)
        if isinstance(self._stream, gzip.GzipFile):
            self._reader = ReaderAscii(pyiostream(self._stream, _STREAM_BUFFER_BYTES))
        else:
            # HepMC3's own file input is about 20% faster than a Python stream.
            self._stream.close()
            self._reader = ReaderAscii(str(path))
        self._new_event = pyhepmc.GenEvent
        self.n_events = count_hepmc(path)
        self.index = 0

    def next_event(self):
        """Return the next GenEvent, or None at the end of the file."""
        if self.index >= self.n_events:
            return None
        event = self._new_event()
        ok = self._reader.read_event(event)
        if not ok or self._reader.failed() or len(event.particles) == 0:
            raise _unreadable_event(self.path, self.index)
        self.index += 1
        return event

    def close(self):
        self._reader.close()
        self._stream.close()


def _production_vertices(event, n_particles: int) -> np.ndarray:
    """Return the production vertex position (x, y, z) of every particle, shape (particles, 3).

    Uses HepMC3's serialised links (pairs vertex id < 0 -> particle id > 0 mark the
    outgoing particles of a vertex), so no Python loop runs over particles. A
    particle without production vertex, or a vertex without a set position, is at
    the event position (HepMC3's convention).
    """
    import pyhepmc

    data = pyhepmc.GenEventData()
    event.write_data(data)
    origin_four = event.event_pos()
    origin = np.array([origin_four.x, origin_four.y, origin_four.z])

    vertices = event.numpy.vertices
    vertex_position = np.stack([np.asarray(vertices.x), np.asarray(vertices.y), np.asarray(vertices.z)], axis=1)
    vertex_position = np.where(np.asarray(vertices.has_set_position)[:, None], vertex_position, origin)

    # Vertex ids are -1, -2, ..., but the vertex list need not be in id order.
    vertex_id = np.asarray(vertices.id)
    position_of_id = np.tile(origin, (len(vertex_id) + 1, 1))
    position_of_id[-vertex_id] = vertex_position

    links_from, links_to = np.asarray(data.links1), np.asarray(data.links2)
    outgoing = (links_from < 0) & (links_to > 0)
    position = np.tile(origin, (n_particles, 1))
    position[links_to[outgoing] - 1] = position_of_id[-links_from[outgoing]]
    return position


def _final_state(event, path: Path, entry: int, report: validation.InputReport) -> dict[str, np.ndarray]:
    """Return the visible final-state particles of one GenEvent as flat arrays (GeV, rad, cm)."""
    import pyhepmc

    particles = event.numpy.particles
    status = np.asarray(particles.status)
    final = np.flatnonzero(status == 1)
    if len(final) == 0:
        raise InvalidInputError(
            f"HepMC3 event {event.event_number} (entry {entry}) of {path} has no final-state (status 1) particles; "
            "parnassus needs the stable particles of each event"
        )

    to_gev = 1e-3 if event.momentum_unit == pyhepmc.Units.MEV else 1.0
    to_cm = 1.0 if event.length_unit == pyhepmc.Units.CM else 1.0 / MM_PER_CM

    pid = np.asarray(particles.pid)[final]
    px = np.asarray(particles.px)[final] * to_gev
    py = np.asarray(particles.py)[final] * to_gev
    pz = np.asarray(particles.pz)[final] * to_gev
    cls = ev.pdgid_to_class(pid)
    pt = np.hypot(px, py)
    position = _production_vertices(event, len(status))[final] * to_cm

    visible = cls != ev.NOT_VISIBLE
    report.invisible_dropped += int((~visible).sum())
    along_beam = visible & (pt == 0)
    if along_beam.any() and report.zero_pt_dropped == 0:
        report.first_example.setdefault("pt = 0", f"entry {entry} (event number {event.event_number})")
    report.zero_pt_dropped += int(along_beam.sum())
    keep = visible & ~along_beam

    pt, pz = pt[keep], pz[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = np.arcsinh(pz / pt)
    return {
        "pt": pt,
        "eta": eta,
        "phi": np.arctan2(py[keep], px[keep]),
        "vx": position[keep, 0],
        "vy": position[keep, 1],
        "vz": position[keep, 2],
        "class": cls[keep],
        ev.PDGID_FIELD: pid[keep],
    }


def _build_chunk(rows: list[dict], numbers: list[int], first: int, path: Path, report) -> ak.Array:
    counts = np.array([len(row["pt"]) for row in rows], dtype=np.int64)
    columns = {}
    for name in _NAMES:
        flat = np.concatenate([row[name] for row in rows]) if rows else np.zeros(0)
        columns[name] = ak.unflatten(flat, counts)
    context = validation.ChunkContext(str(path), first, np.asarray(numbers, dtype=np.int64))
    gen = validation.build_particles(columns, _NAMES, context, report)
    return validation.assemble_events({"gen": gen}, context.event_numbers, context, report)


def iter_hepmc(
    path: str | os.PathLike,
    step_size: int,
    entry_start: int | None,
    entry_stop: int | None,
    require_pfc: bool,
    report: validation.InputReport,
) -> Iterator[ak.Array]:
    """Yield GEN-only event batches of ``step_size`` events (the last may be shorter).

    Raises:
        InvalidInputError: ``require_pfc`` (HepMC3 files contain no PFCs), an event without
            final-state particles, an event HepMC3 cannot parse.
    """
    path = Path(path)
    if require_pfc:
        raise InvalidInputError(
            f"{path} is a HepMC3 file, which contains GEN particles only, but PFCs are required here; "
            "use a ROOT or Parquet file with PFCs"
        )

    reader = _Reader(path)
    start = 0 if entry_start is None else max(0, int(entry_start))
    stop = reader.n_events if entry_stop is None else min(int(entry_stop), reader.n_events)
    try:
        rows, numbers, first = [], [], start
        while reader.index < stop:
            entry = reader.index
            event = reader.next_event()
            if entry < start:
                continue
            rows.append(_final_state(event, path, entry, report))
            numbers.append(int(event.event_number))
            if len(rows) == step_size:
                yield _build_chunk(rows, numbers, first, path, report)
                rows, numbers, first = [], [], entry + 1
        if rows:
            yield _build_chunk(rows, numbers, first, path, report)
    finally:
        reader.close()


_KNOWN_IDS = np.array(sorted(STABLE_MASSES_GEV), dtype=np.int64)
_KNOWN_MASSES = np.array([STABLE_MASSES_GEV[i] for i in _KNOWN_IDS])
_CLASS_MASSES = np.array([STABLE_MASSES_GEV[int(i)] for i in CLASS_PDGID])


def _masses(pdgid: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Return the mass (GeV) of each particle: from the PDG id when known, else from the class."""
    aid = np.abs(pdgid)
    where = np.clip(np.searchsorted(_KNOWN_IDS, aid), 0, len(_KNOWN_IDS) - 1)
    known = _KNOWN_IDS[where] == aid
    return np.where(known, _KNOWN_MASSES[where], _CLASS_MASSES[cls])


def _default_pdgids(cls: np.ndarray) -> np.ndarray:
    """Return PDG ids by class, alternating the charge sign within each class."""
    rank = np.zeros(len(cls), dtype=np.int64)
    for code in range(ev.N_CLASSES):
        members = cls == code
        rank[members] = np.arange(int(members.sum()))
    sign = np.where(rank % 2 == 0, 1, -1)
    base = CLASS_PDGID[cls]
    charged = ev.three_charge(base) != 0
    return np.where(charged, sign * base, base)


def _event_record(gen: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Build the HEPEVT-like arrays of one event: one pseudo-particle per vertex, then the particles.

    Args:
        gen: flat arrays of one event's GEN particles (pt, eta, phi, vx, vy, vz, class, optional pdgid).
    """
    pt, eta, phi = gen["pt"], gen["eta"], gen["phi"]
    cls = gen["class"]
    pdgid = gen[ev.PDGID_FIELD] if ev.PDGID_FIELD in gen else _default_pdgids(cls)
    mass = _masses(pdgid, cls)

    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + mass**2)

    position = np.stack([gen["vx"], gen["vy"], gen["vz"]], axis=1) * MM_PER_CM
    vertices, vertex_of = np.unique(position, axis=0, return_inverse=True)
    vertex_of = vertex_of.reshape(-1)
    n_vertices = len(vertices)

    def per_vertex(values):
        return np.bincount(vertex_of, weights=values, minlength=n_vertices)

    pseudo_p = np.stack([per_vertex(px), per_vertex(py), per_vertex(pz), per_vertex(energy)], axis=1)
    pseudo_mass = np.sqrt(np.maximum(pseudo_p[:, 3] ** 2 - (pseudo_p[:, :3] ** 2).sum(axis=1), 0.0))

    parents = np.concatenate([np.full((n_vertices, 2), -1), np.stack([vertex_of, vertex_of], axis=1)])
    zeros = np.zeros(n_vertices)
    return {
        "px": np.concatenate([pseudo_p[:, 0], px]),
        "py": np.concatenate([pseudo_p[:, 1], py]),
        "pz": np.concatenate([pseudo_p[:, 2], pz]),
        "en": np.concatenate([pseudo_p[:, 3], energy]),
        "m": np.concatenate([pseudo_mass, mass]),
        "pid": np.concatenate([np.full(n_vertices, PSEUDO_PDGID), pdgid]).astype(np.int32),
        "status": np.concatenate([np.full(n_vertices, PSEUDO_STATUS), np.ones(len(pt))]).astype(np.int32),
        "parents": parents.astype(np.int64),
        "vx": np.concatenate([zeros, position[:, 0]]),
        "vy": np.concatenate([zeros, position[:, 1]]),
        "vz": np.concatenate([zeros, position[:, 2]]),
        "vt": np.zeros(n_vertices + len(pt)),
    }


class HepMCWriter:
    """Write the GEN particles of event batches as HepMC3 ASCII (gzip when the name ends in .gz).

    Units in the file: GeV and mm. PFCs are not written (HepMC3 output is DELPHES
    input, so only GEN makes sense there), and a warning is logged once.
    """

    def __init__(self, path: str | os.PathLike, name: str | None = None):
        import pyhepmc

        self.path = str(path)
        self.name = name or self.path
        self._pyhepmc = pyhepmc
        # pyhepmc would compress at gzip level 9, which takes 4.5 times longer than
        # level 3 for files only 8% smaller (measured on ttbar-sized events).
        self._stream = gzip.open(self.path, "wb", compresslevel=GZIP_LEVEL) if self.path.endswith(".gz") else open(self.path, "wb")
        self._file = pyhepmc.open(self._stream, "w")
        self._warned_pfc = False
        self.skipped_empty = 0

    def write(self, events: ak.Array) -> None:
        """Append a checked event batch, one GenEvent per event."""
        if ev.has_pfc(events) and not self._warned_pfc:
            log.warning("%s: HepMC3 files contain GEN particles only, so the PFCs are not written", self.name)
            self._warned_pfc = True

        pyhepmc = self._pyhepmc
        numbers = ak.to_numpy(events.event_number)
        counts = ak.to_numpy(ak.num(events.gen, axis=1))
        offsets = np.concatenate([[0], np.cumsum(counts)])
        fields = [name for name in _NAMES if name in ak.fields(events.gen)]
        flat = {name: ak.to_numpy(ak.flatten(events.gen[name])).astype(np.float64) for name in fields}
        flat["class"] = flat["class"].astype(np.int64)
        if ev.PDGID_FIELD in flat:
            flat[ev.PDGID_FIELD] = flat[ev.PDGID_FIELD].astype(np.int64)

        for i, number in enumerate(numbers):
            if counts[i] == 0:
                # HepMC3 readers stop at an event without particles, so such an event cannot be written.
                self.skipped_empty += 1
                continue
            gen = {name: values[offsets[i] : offsets[i + 1]] for name, values in flat.items()}
            event = pyhepmc.GenEvent(pyhepmc.Units.GEV, pyhepmc.Units.MM)
            event.from_hepevt(int(number), fortran=False, **_event_record(gen))
            event.event_number = int(number)
            self._file.write(event)

    def close(self) -> None:
        self._file.close()
        self._stream.close()
        if self.skipped_empty:
            log.warning(
                "%s: left out %d events without GEN particles, because a HepMC3 event needs final-state particles",
                self.name, self.skipped_empty,
            )

    def abort(self) -> None:
        self._file.close()
        self._stream.close()
