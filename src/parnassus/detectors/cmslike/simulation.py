"""The ``cmslike`` reference simulation: GEN particles in, particle-flow candidates out.

Steps, each in its own module:

1. :mod:`.pileup`: overlay Poisson(6.35) minimum-bias interactions (PFC only, never GEN);
2. :mod:`.material`: K0S, Lambda and hyperon decays, photon conversions, electron bremsstrahlung,
   pion and kaon decays in flight, nuclear interactions of hadrons;
3. :mod:`.tracking`: helix propagation to the calorimeters, track efficiency and smearing;
4. :mod:`.showers` and :mod:`.calorimeter`: ECAL and HCAL deposits, cells, noise, clusters;
5. :mod:`.particle_flow`: links and the five PFC classes.

All steps work on flat arrays of a whole chunk of events at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.detectors.cmslike import calorimeter as calo
from parnassus.detectors.cmslike import constants as c
from parnassus.detectors.cmslike import material, particle_flow, showers, tracking
from parnassus.detectors.cmslike.particles import ORIGIN_CONVERSION, ORIGIN_PROMPT, ParticleTable, from_events
from parnassus.detectors.cmslike.pileup import PileupLibrary
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)


@dataclass
class ChunkResult:
    """Everything one chunk produced: the particles after material effects, tracks and PFCs."""

    particles: ParticleTable
    impacts: showers.Impacts
    tracks: particle_flow.Tracks
    candidates: particle_flow.Candidates
    n_pileup: np.ndarray


def check_gen(gen_events: ak.Array, source: str = "GEN input") -> ak.Array:
    """Return the GEN particles of an event batch, or raise if fields are missing."""
    if "gen" not in ak.fields(gen_events):
        raise InvalidInputError(f"{source}: the events have no 'gen' field (fields: {ak.fields(gen_events)})")
    gen = gen_events.gen
    missing = [name for name in ev.PARTICLE_FIELDS if name not in ak.fields(gen)]
    if missing:
        raise InvalidInputError(
            f"{source}: the GEN particles lack the fields {missing}; a GEN record needs {list(ev.PARTICLE_FIELDS)} "
            "(and optionally 'pdgid' to decay K0S and hyperons)"
        )
    return gen


def _propagate_all(table: ParticleTable) -> showers.Impacts:
    args = (table.pt, table.eta, table.phi, table.vx, table.vy, table.vz, table.charge)
    ecal = tracking.propagate(*args, c.ECAL_RADIUS_CM, c.ECAL_ENDCAP_Z_CM)
    hcal = tracking.propagate(*args, c.HCAL_RADIUS_CM, c.HCAL_ENDCAP_Z_CM)
    return showers.Impacts(*ecal, *hcal)


def reconstruct_tracks(table: ParticleTable, rng) -> particle_flow.Tracks:
    """Decide which charged particles are tracked and smear their parameters.

    Efficiency: muons 0.995 above 1 GeV, prompt electrons the DELPHES CMS table, and hadrons the
    pattern-recognition turn-on times survival of nuclear interactions. Secondaries (conversion
    legs, V0 and decay daughters) get the displaced-track efficiency of their production radius.
    Tracked conversion legs are dropped with the probability ``CONVERSION_RECOVERY`` (paired by the
    conversion finder; their energy comes back as a photon from the ECAL).
    """
    aid = np.abs(table.pdgid)
    accepted = (table.charge != 0) & (np.abs(table.eta) < c.TRACK_ABS_ETA_MAX) & (table.pt > c.TRACK_PT_MIN)
    algo = tracking.algorithmic_efficiency(table.pt)
    efficiency = np.where(aid == 13, np.where(table.pt > 1.0, c.MUON_TRACK_EFFICIENCY, algo), algo)
    prompt = table.origin == ORIGIN_PROMPT
    efficiency = np.where((aid == 11) & prompt, tracking.electron_efficiency(table.pt, table.eta), efficiency)
    radius = np.hypot(table.vx, table.vy)
    # Decay muons from pion and kaon decays inside 30 cm are found like prompt tracks.
    displaced = ~prompt & ~((aid == 13) & (radius < c.DECAY_TRACK_RADIUS_CM))
    efficiency = np.where(displaced, efficiency * tracking.displaced_efficiency(radius), efficiency)
    tracked = accepted & ~table.track_lost & (rng.random(len(table)) < efficiency)
    # Conversion pairs found by the conversion finder are given back to their photon.
    recovered = (table.origin == ORIGIN_CONVERSION) & (rng.random(len(table)) < c.CONVERSION_RECOVERY)
    tracked &= ~recovered

    row = np.flatnonzero(tracked)
    t = table.subset(row)
    smeared = tracking.smear_tracks(t.pt, t.eta, t.phi, t.vx, t.vy, t.vz, t.charge, np.abs(t.pdgid) == 13, t.res_scale, rng)
    return particle_flow.Tracks(row, *smeared)


def simulate_chunk(gen: ak.Array, rng: np.random.Generator, library: PileupLibrary | None, mean_pileup: float) -> ChunkResult:
    """Simulate one chunk of events (jagged GEN particles, already inside the card's cuts)."""
    n_events = len(gen)
    parts = [from_events(gen, rng)]
    n_pileup = np.zeros(n_events, dtype=np.int64)
    if library is not None and mean_pileup > 0:
        pileup, n_pileup = library.overlay(n_events, mean_pileup, rng)
        parts.append(pileup)
    table = ParticleTable.concatenate(parts)

    # Material and decays, in the order a particle meets them.
    table = material.decay_long_lived(table, rng)
    table = material.convert_photons(table, rng)
    n_before_brem = len(table)
    table, radiating = material.bremsstrahlung(table, rng)
    brem_parent = np.full(len(table), -1, dtype=np.int64)
    brem_parent[n_before_brem:] = radiating
    table = material.decay_in_flight(table, rng)
    table = material.nuclear_interactions(table, rng)

    impacts = _propagate_all(table)
    tracks = reconstruct_tracks(table, rng)

    ecal_deposits, hcal_deposits, ecal_share = showers.deposit_showers(table, impacts, rng)
    ecal_cells = calo.build_cells(calo.ECAL, ecal_deposits.event, ecal_deposits.cell, ecal_deposits.energy, n_events, rng)
    hcal_cells = calo.build_cells(calo.HCAL, hcal_deposits.event, hcal_deposits.cell, hcal_deposits.energy, n_events, rng)
    calorimetry = particle_flow.Calorimetry(
        ecal_cells, calo.cluster_cells(calo.ECAL, ecal_cells), hcal_cells, calo.cluster_cells(calo.HCAL, hcal_cells)
    )
    candidates = particle_flow.reconstruct(table, impacts, tracks, calorimetry, ecal_share, brem_parent, rng)
    return ChunkResult(table, impacts, tracks, candidates, n_pileup)


def candidates_to_events(candidates: particle_flow.Candidates, n_events: int) -> ak.Array:
    """Turn flat candidates into jagged PFC records, sorted by decreasing pT within each event."""
    order = np.lexsort((-candidates.pt, candidates.event))
    counts = np.bincount(candidates.event, minlength=n_events)

    def jag(values):
        return ak.unflatten(values[order], counts)

    phi = ev.wrap_phi(candidates.phi)
    return ev.make_particles(jag(candidates.pt), jag(candidates.eta), jag(phi), jag(candidates.vx),
                             jag(candidates.vy), jag(candidates.vz), jag(candidates.cls))
