"""Flat particle tables: the struct-of-arrays form every stage of the simulation works on.

A jagged event batch is flattened once into one numpy array per field plus an
``event`` index, so each detector effect is a handful of array operations over
all particles of a chunk of events (no per-particle Python loop).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.detectors.cmslike import constants as c

#: Origin flags of a simulated particle.
ORIGIN_PROMPT = 0
ORIGIN_CONVERSION = 1
ORIGIN_DECAY = 2
ORIGIN_BREM = 3


@dataclass
class ParticleTable:
    """One row per particle; all arrays have the same length.

    Fields: ``event`` (int64 index in the chunk), ``pt`` (GeV), ``eta``, ``phi`` (rad),
    ``vx``, ``vy``, ``vz`` (production vertex, cm), ``charge`` (-1, 0, +1), ``pdgid``
    (signed PDG id; inferred from the class when GEN has none), ``mass`` (GeV),
    ``pileup`` (bool), ``origin`` (ORIGIN_*), ``res_scale`` (factor on the track pT
    resolution), ``calo_fraction`` (share of the energy that reaches the calorimeter, below 1
    after bremsstrahlung), ``calo_as_muon`` (a hadron that decayed to a muon before the
    calorimeter), ``track_lost`` (killed by a nuclear interaction in the inner tracker).
    """

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    charge: np.ndarray
    pdgid: np.ndarray
    mass: np.ndarray
    pileup: np.ndarray
    origin: np.ndarray
    res_scale: np.ndarray
    calo_fraction: np.ndarray
    calo_as_muon: np.ndarray
    track_lost: np.ndarray

    def __len__(self) -> int:
        return len(self.pt)

    def subset(self, mask_or_index) -> "ParticleTable":
        return ParticleTable(**{f.name: getattr(self, f.name)[mask_or_index] for f in fields(self)})

    @staticmethod
    def concatenate(tables: list["ParticleTable"]) -> "ParticleTable":
        return ParticleTable(**{f.name: np.concatenate([getattr(t, f.name) for t in tables]) for f in fields(ParticleTable)})

    @property
    def p(self) -> np.ndarray:
        """Momentum magnitude (GeV): pT cosh(eta)."""
        return self.pt * np.cosh(self.eta)

    @property
    def energy(self) -> np.ndarray:
        return np.sqrt(self.p**2 + self.mass**2)

    @property
    def class_code(self) -> np.ndarray:
        return ev.pdgid_to_class(self.pdgid)


def mass_of(pdgid: np.ndarray) -> np.ndarray:
    """Return the mass (GeV) of each PDG id; ids not in the table get the pion mass (charged) or 0."""
    aid = np.abs(pdgid)
    mass = np.where(ev.three_charge(pdgid) != 0, c.MASS[211], 0.0)
    for key, value in c.MASS.items():
        mass = np.where(aid == key, value, mass)
    return mass


def infer_pdgid(cls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Assign a representative PDG id to GEN particles that carry only a class.

    Charged hadrons become pi+- and neutral hadrons K0L (mesons, so no baryon-number
    correction of the calorimeter energy); leptons get a random charge sign.
    NOTE: without GEN pdgid, K0S and hyperons cannot be recognised and are not decayed.
    """
    sign = np.where(rng.random(len(cls)) < 0.5, 1, -1)
    table = np.array([211, 11, 13, 130, 22], dtype=np.int32)
    pdgid = table[cls.astype(np.int64)]
    # Leptons: negative PDG id for the positive antilepton.
    charged = cls <= ev.ParticleClass.MUON
    lepton = (cls == ev.ParticleClass.ELECTRON) | (cls == ev.ParticleClass.MUON)
    return np.where(charged, np.where(lepton, -sign, sign) * pdgid, pdgid).astype(np.int32)


def from_events(particles: ak.Array, rng: np.random.Generator, pileup: bool = False) -> ParticleTable:
    """Flatten jagged GEN particle records into a :class:`ParticleTable`.

    Args:
        particles: jagged particle records (fields of :data:`parnassus.core.events.PARTICLE_FIELDS`,
            optional ``pdgid``).
        rng: the random generator, used only when the PDG id must be inferred from the class.
        pileup: flag stored for every row.
    """
    counts = ak.to_numpy(ak.num(particles, axis=1))
    event = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    flat = {name: ak.to_numpy(ak.flatten(particles[name])).astype(np.float64) for name in ("pt", "eta", "phi", "vx", "vy", "vz")}
    if ev.PDGID_FIELD in ak.fields(particles):
        pdgid = ak.to_numpy(ak.flatten(particles[ev.PDGID_FIELD])).astype(np.int32)
    else:
        pdgid = infer_pdgid(ak.to_numpy(ak.flatten(particles["class"])), rng)
    return new_table(event=event, pdgid=pdgid, pileup=np.full(len(event), pileup), **flat)


def new_table(event, pt, eta, phi, vx, vy, vz, pdgid, pileup, origin=ORIGIN_PROMPT) -> ParticleTable:
    """Build a :class:`ParticleTable`, deriving charge and mass from the PDG id and filling defaults."""
    n = len(pt)
    pdgid = np.asarray(pdgid, dtype=np.int32)
    return ParticleTable(
        event=np.asarray(event, dtype=np.int64),
        pt=np.asarray(pt, dtype=np.float64),
        eta=np.asarray(eta, dtype=np.float64),
        phi=np.asarray(phi, dtype=np.float64),
        vx=np.asarray(vx, dtype=np.float64),
        vy=np.asarray(vy, dtype=np.float64),
        vz=np.asarray(vz, dtype=np.float64),
        charge=np.sign(ev.three_charge(pdgid)).astype(np.int8),
        pdgid=pdgid,
        mass=mass_of(pdgid),
        pileup=np.broadcast_to(np.asarray(pileup, dtype=bool), (n,)).copy(),
        origin=np.full(n, origin, dtype=np.int8),
        res_scale=np.ones(n),
        calo_fraction=np.ones(n),
        calo_as_muon=np.zeros(n, dtype=bool),
        track_lost=np.zeros(n, dtype=bool),
    )


def momentum_components(pt, eta, phi):
    """Return (px, py, pz) in GeV."""
    return pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)


def from_components(px, py, pz):
    """Return (pT, eta, phi) from momentum components (GeV)."""
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-12))
    phi = np.arctan2(py, px)
    return pt, eta, phi
