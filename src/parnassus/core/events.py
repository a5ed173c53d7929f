"""The event data model: particles, classes and event quantities.

An event batch is an awkward Array of records with the fields

- ``gen``: a jagged list of GEN particles,
- ``pfc``: a jagged list of particle-flow candidates (absent for GEN-only input),
- ``event_number``: int64.

Each particle is a record with ``pt`` (GeV), ``eta``, ``phi`` (rad, in (-pi, pi]),
``vx``, ``vy``, ``vz`` (production vertex, cm, as in the CMS Open Simulation files)
and ``class`` (int8, a :class:`ParticleClass`). GEN particles may carry an optional
``pdgid`` (int32) that a reference detector simulation uses to decay long-lived
hadrons; nothing else depends on it.

Sign convention for the missing transverse momentum: parnassus uses the physical
definition, MET = -(sum of the visible pT vectors), so

    MET_x = -sum_i pT_i cos(phi_i),    MET_y = -sum_i pT_i sin(phi_i).

The authors' code of arXiv:2503.19981 uses +sum instead. Event quantities (HT, MET,
N, N per class) are always computed from the particles and never stored, so they
cannot disagree with them.
"""

from __future__ import annotations

from enum import IntEnum

import awkward as ak
import numpy as np

#: Fields of every particle record, in the order of the evt_tree branches.
PARTICLE_FIELDS = ("pt", "eta", "phi", "vx", "vy", "vz", "class")

#: Optional GEN field with the PDG Monte Carlo id.
PDGID_FIELD = "pdgid"

FLOAT_FIELDS = ("pt", "eta", "phi", "vx", "vy", "vz")


class ParticleClass(IntEnum):
    """Particle-flow classes, with the codes of the CMS Open Simulation files."""

    CHARGED_HADRON = 0
    ELECTRON = 1
    MUON = 2
    NEUTRAL_HADRON = 3
    PHOTON = 4

    @property
    def is_charged(self) -> bool:
        return self <= ParticleClass.MUON

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    ParticleClass.CHARGED_HADRON: "charged hadron",
    ParticleClass.ELECTRON: "electron",
    ParticleClass.MUON: "muon",
    ParticleClass.NEUTRAL_HADRON: "neutral hadron",
    ParticleClass.PHOTON: "photon",
}

N_CLASSES = len(ParticleClass)

#: Returned by :func:`pdgid_to_class` for particles that are not part of GEN.
NOT_VISIBLE = -1

# Three times the electric charge of the quarks d, u, s, c, b, t (PDG ids 1-6).
_QUARK_THREE_CHARGE = np.array([0, -1, 2, -1, 2, -1, 2], dtype=np.int64)

# Three times the charge of the elementary particles with PDG id below 100 that
# can be final-state or long-lived (leptons, gauge bosons, Higgs); 0 otherwise.
_ELEMENTARY_THREE_CHARGE = np.zeros(100, dtype=np.int64)
_ELEMENTARY_THREE_CHARGE[1:7] = _QUARK_THREE_CHARGE[1:7]
_ELEMENTARY_THREE_CHARGE[[11, 13, 15, 17]] = -3
_ELEMENTARY_THREE_CHARGE[[24, 34, 37]] = 3

#: PDG ids of invisible particles: neutrinos and the lightest neutralino and gravitino.
INVISIBLE_PDGIDS = (12, 14, 16, 18, 1000022, 1000039)


def three_charge(pdgid) -> np.ndarray:
    """Return three times the electric charge of each PDG id.

    Follows the PDG Monte Carlo numbering scheme: elementary particles from a
    table, mesons from their quark and antiquark (digits n_q2 and n_q3), baryons
    from their three quarks (n_q1, n_q2, n_q3), nuclei (10LZZZAAAI) from Z.

    >>> three_charge([211, -321, 2212, 3122, 11, 22]).tolist()
    [3, -3, 3, 0, -3, 0]
    """
    pdgid = np.asarray(pdgid, dtype=np.int64)
    sign = np.sign(pdgid)
    aid = np.abs(pdgid)

    nq3 = (aid // 10) % 10
    nq2 = (aid // 100) % 10
    nq1 = (aid // 1000) % 10
    ch = _QUARK_THREE_CHARGE[np.clip(nq3, 0, 6)], _QUARK_THREE_CHARGE[np.clip(nq2, 0, 6)], _QUARK_THREE_CHARGE[np.clip(nq1, 0, 6)]
    ch3, ch2, ch1 = ch

    # Mesons: the quark with the heavier, down-type flavour (s, b) is the antiquark
    # in the PDG convention (K+ = 321 is u sbar), otherwise n_q3 is the antiquark.
    down_type_first = (nq2 == 3) | (nq2 == 5)
    meson = np.where(down_type_first, ch3 - ch2, ch2 - ch3)
    baryon = ch1 + ch2 + ch3
    hadron = np.where(nq1 == 0, meson, baryon)

    elementary = _ELEMENTARY_THREE_CHARGE[np.where(aid < 100, aid, 0)]
    is_nucleus = aid >= 1000000000
    nucleus = 3 * ((aid // 10000) % 1000)
    # SUSY and other non-standard ids (7 digits) are treated as neutral unless a
    # lepton or quark partner, which never reaches GEN as a stable particle.
    is_bsm = (aid >= 1000000) & ~is_nucleus

    result = np.where(aid < 100, elementary, np.where(is_nucleus, nucleus, np.where(is_bsm, 0, hadron)))
    return sign * result


def pdgid_to_class(pdgid) -> np.ndarray:
    """Map PDG ids of final-state particles to :class:`ParticleClass` codes.

    Electrons, muons and photons get their own class; other charged particles
    are charged hadrons; other neutral particles (n, K0L, K0S, Lambda and the
    other long-lived neutral hadrons) are neutral hadrons. Neutrinos and other
    invisible particles return :data:`NOT_VISIBLE` (-1), meaning "drop".

    >>> pdgid_to_class([211, 11, -13, 2112, 310, 3122, 22, 12]).tolist()
    [0, 1, 2, 3, 3, 3, 4, -1]
    """
    pdgid = np.asarray(pdgid, dtype=np.int64)
    aid = np.abs(pdgid)
    charged = three_charge(pdgid) != 0
    cls = np.where(charged, ParticleClass.CHARGED_HADRON, ParticleClass.NEUTRAL_HADRON)
    cls = np.where(aid == 11, ParticleClass.ELECTRON, cls)
    cls = np.where(aid == 13, ParticleClass.MUON, cls)
    cls = np.where(aid == 22, ParticleClass.PHOTON, cls)
    cls = np.where(np.isin(aid, INVISIBLE_PDGIDS), NOT_VISIBLE, cls)
    return cls.astype(np.int8)


def wrap_phi(phi):
    """Wrap angles (rad) into (-pi, pi]. Works on numpy and awkward arrays."""
    wrapped = np.mod(np.asarray(phi) if not isinstance(phi, ak.Array) else phi, 2 * np.pi)
    wrapped = wrapped - 2 * np.pi * (wrapped > np.pi)
    return wrapped


def make_particles(pt, eta, phi, vx, vy, vz, cls, pdgid=None) -> ak.Array:
    """Build a jagged array of particle records from jagged arrays of equal structure.

    Floats are stored as float32 and the class as int8, as in the CMS files.
    """
    fields = {
        "pt": ak.values_astype(pt, np.float32),
        "eta": ak.values_astype(eta, np.float32),
        "phi": ak.values_astype(phi, np.float32),
        "vx": ak.values_astype(vx, np.float32),
        "vy": ak.values_astype(vy, np.float32),
        "vz": ak.values_astype(vz, np.float32),
        "class": ak.values_astype(cls, np.int8),
    }
    if pdgid is not None:
        fields[PDGID_FIELD] = ak.values_astype(pdgid, np.int32)
    return ak.zip(fields, depth_limit=2)


def make_events(gen, pfc=None, event_number=None) -> ak.Array:
    """Assemble an event batch from jagged particle records.

    Args:
        gen: jagged particle records (see :func:`make_particles`).
        pfc: jagged particle records of the same length, or None for GEN-only events.
        event_number: int array, one per event; ``0 .. n-1`` when None.

    Returns:
        ak.Array of records ``{gen, [pfc], event_number}``.
    """
    n_events = len(gen)
    if event_number is None:
        event_number = np.arange(n_events, dtype=np.int64)
    event_number = np.asarray(event_number, dtype=np.int64)
    if len(event_number) != n_events:
        raise ValueError(f"{len(event_number)} event numbers for {n_events} events")

    fields = {"gen": gen}
    if pfc is not None:
        if len(pfc) != n_events:
            raise ValueError(f"{len(pfc)} PFC lists for {n_events} GEN events")
        fields["pfc"] = pfc
    fields["event_number"] = event_number
    return ak.zip(fields, depth_limit=1)


def has_pfc(events: ak.Array) -> bool:
    return "pfc" in ak.fields(events)


def sort_by_pt(particles: ak.Array) -> ak.Array:
    """Sort the particles of each event by decreasing pT."""
    return particles[ak.argsort(particles.pt, axis=1, ascending=False)]


def ht(particles: ak.Array) -> np.ndarray:
    """Scalar sum of pT per event (GeV)."""
    return ak.to_numpy(ak.sum(particles.pt, axis=1)).astype(np.float64)


def met_xy(particles: ak.Array) -> tuple[np.ndarray, np.ndarray]:
    """Missing transverse momentum components per event (GeV), MET = -sum of pT vectors."""
    met_x = -ak.sum(particles.pt * np.cos(particles.phi), axis=1)
    met_y = -ak.sum(particles.pt * np.sin(particles.phi), axis=1)
    return ak.to_numpy(met_x).astype(np.float64), ak.to_numpy(met_y).astype(np.float64)


def multiplicity(particles: ak.Array) -> np.ndarray:
    """Number of particles per event."""
    return ak.to_numpy(ak.num(particles, axis=1)).astype(np.int64)


def multiplicity_per_class(particles: ak.Array) -> np.ndarray:
    """Number of particles of each class per event, shape (events, 5)."""
    cls = particles["class"]
    counts = [ak.to_numpy(ak.sum(cls == int(c), axis=1)) for c in ParticleClass]
    return np.stack(counts, axis=1).astype(np.int64)


def event_quantities(particles: ak.Array) -> dict[str, np.ndarray]:
    """HT, MET_x, MET_y, N and N per class of each event, as numpy arrays.

    Returns:
        dict with keys ``ht``, ``met_x``, ``met_y``, ``n`` (shape (events,)) and
        ``n_per_class`` (shape (events, 5)).
    """
    met_x, met_y = met_xy(particles)
    return {
        "ht": ht(particles),
        "met_x": met_x,
        "met_y": met_y,
        "n": multiplicity(particles),
        "n_per_class": multiplicity_per_class(particles),
    }


def select(particles: ak.Array, pt_min: float, abs_eta_max: float) -> ak.Array:
    """Keep particles with pT > pt_min (GeV) and |eta| < abs_eta_max."""
    keep = (particles.pt > pt_min) & (np.abs(particles.eta) < abs_eta_max)
    return particles[keep]
