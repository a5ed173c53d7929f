"""Simplified particle flow: links tracks and calorimeter clusters and makes the five PFC classes.

Order of the steps, after the CMS particle-flow algorithm (arXiv:1706.04965):

1. links: each track to the ECAL and HCAL clusters at its impact points (the impact cell or one
   of its 8 neighbours), each ECAL cluster to the HCAL cluster at its position;
2. muons: true muons with a track that reach the muon system are identified with an
   efficiency, plus decay-in-flight muons and hadron punch-through. Their MIP deposits are removed;
3. electrons: true electrons (including conversion legs) with a track and a linked ECAL cluster,
   identified with an efficiency, plus rare hadron fakes; their ECAL energy is removed;
4. charged hadrons: every other track, with the track momentum;
5. photons: ECAL clusters linked to no charged-hadron track;
6. neutral excess: per block (an HCAL cluster, or an ECAL cluster with no HCAL link) the
   calibrated calorimeter energy linked to tracks minus the sum of track momenta; an excess above
   max(sigma_calo, 0.5 GeV) becomes a photon when smaller than the linked ECAL energy, otherwise a
   photon with the ECAL energy plus a neutral hadron with the rest;
7. HCAL clusters with no track become neutral hadrons.

Neutral PFCs are massless, with vertex (0, 0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from parnassus.core.events import ParticleClass
from parnassus.detectors.cmslike import calorimeter as calo
from parnassus.detectors.cmslike import constants as c
from parnassus.detectors.cmslike.showers import calibrate_hadron, ecal_resolution
from parnassus.detectors.cmslike.tracking import relative_pt_resolution


@dataclass
class Tracks:
    """Reconstructed tracks: the particle row they come from and their smeared parameters."""

    particle: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray


@dataclass
class Candidates:
    """Particle-flow candidates of a chunk, one row each; ``pileup`` is True for PU tracks."""

    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    vz: np.ndarray
    cls: np.ndarray
    pileup: np.ndarray


@dataclass
class Calorimetry:
    """Cells and clusters of both calorimeters."""

    ecal_cells: calo.Cells
    ecal: calo.Clusters
    hcal_cells: calo.Cells
    hcal: calo.Clusters


def _neutrals(event, energy, eta, phi, cls):
    n = len(energy)
    return Candidates(event, energy / np.cosh(eta), eta, phi, np.zeros(n), np.zeros(n), np.zeros(n),
                      np.full(n, cls, dtype=np.int8), np.zeros(n, dtype=bool))


def _identify_muons(table, tracks, rng):
    row = tracks.particle
    p = tracks.pt * np.cosh(tracks.eta)
    abs_eta = np.abs(tracks.eta)
    reaches = (abs_eta < c.MUON_ABS_ETA_MAX) & ((p > 3.0) | ((abs_eta > 1.0) & (p > 2.0)))
    true_muon = np.abs(table.pdgid[row]) == 13
    prompt_id = np.where(tracks.pt > 5.0, c.MUON_ID_EFFICIENCY[1], c.MUON_ID_EFFICIENCY[0])
    from_decay = (table.origin[row] == 2) & true_muon
    probability = np.where(true_muon, np.where(from_decay, np.where(p > 3.0, c.DECAY_MUON_ID, 0.0), prompt_id), 0.0)
    # Hadrons that decayed to a muon after 30 cm: the muon carries calo_fraction of the momentum.
    late = table.calo_as_muon[row] & (p * table.calo_fraction[row] > 3.0)
    probability = np.where(late, c.DECAY_MUON_ID, probability)
    hadron = ~true_muon & ~table.calo_as_muon[row] & (np.abs(table.pdgid[row]) != 11)
    probability = np.where(hadron & (p > 3.0), c.PUNCH_THROUGH_PROBABILITY, probability)
    return reaches & (rng.random(len(row)) < probability)


def _identify_electrons(table, tracks, ecal_link, ecal_share, rng):
    row = tracks.particle
    endcap = np.abs(tracks.eta) > c.ECAL_BARREL_ABS_ETA
    low = np.where(endcap, c.ELECTRON_ID_EFFICIENCY[0][1], c.ELECTRON_ID_EFFICIENCY[0][0])
    high = np.where(endcap, c.ELECTRON_ID_EFFICIENCY[1][1], c.ELECTRON_ID_EFFICIENCY[1][0])
    prompt = np.where(tracks.pt > 10.0, high, np.where(tracks.pt > 2.0, low, 0.0))
    true_electron = np.abs(table.pdgid[row]) == 11
    conversion = table.origin[row] == 1
    probability = np.where(true_electron, np.where(conversion, c.CONVERSION_LEG_ELECTRON_ID, prompt), 0.0)
    fake = ~true_electron & (np.abs(table.pdgid[row]) != 13) & (tracks.pt > 2.0) & (ecal_share[row] > 0.8)
    probability = np.where(fake, c.HADRON_ELECTRON_FAKE, probability)
    return (ecal_link >= 0) & (rng.random(len(row)) < probability)


def _electron_pt(table, tracks, rng):
    """Combine the track pT with an ECAL measurement of the electron energy (inverse-variance weights).

    The ECAL measurement is the energy reaching the calorimeter with the electron (share z after
    bremsstrahlung) plus the radiated energy when the supercluster recovers it
    (``BREM_RECOVERY`` of the cases), smeared with the ECAL resolution.
    """
    row = tracks.particle
    true_energy = table.energy[row]
    kept = table.calo_fraction[row]
    recovered = rng.random(len(row)) < c.BREM_RECOVERY
    measured = true_energy * np.where(recovered, 1.0, kept)
    sigma_ecal = ecal_resolution(measured, tracks.eta)
    ecal_pt = measured * (1.0 + sigma_ecal * rng.standard_normal(len(row))) / np.cosh(tracks.eta)
    sigma_track = relative_pt_resolution(tracks.pt, tracks.eta, False) * table.res_scale[row]
    w_track = 1.0 / np.maximum(sigma_track, 1e-6) ** 2
    w_ecal = 1.0 / np.maximum(sigma_ecal, 1e-6) ** 2
    combined = (w_track * tracks.pt + w_ecal * ecal_pt) / (w_track + w_ecal)
    # When E and p disagree by more than 3 sigma (brem not collected), the track alone is used.
    compatible = np.abs(ecal_pt / tracks.pt - 1.0) < 3.0 * np.hypot(sigma_track, sigma_ecal)
    return np.maximum(np.where(compatible, combined, tracks.pt), 1e-3)


def reconstruct(table, impacts, tracks: Tracks, calorimetry: Calorimetry, ecal_share, brem_parent, rng) -> Candidates:
    """Run the particle flow on one chunk.

    Args:
        table: all simulated particles (hard scatter, pileup, secondaries).
        impacts: their ECAL and HCAL impact points.
        tracks: reconstructed tracks.
        calorimetry: cells and clusters.
        ecal_share: per particle, the share of its visible energy deposited in the ECAL.
        brem_parent: for each particle row, the row of the electron that radiated it, or -1.

    Returns:
        all particle-flow candidates of the chunk (no pT or eta selection yet).
    """
    ecal, hcal = calorimetry.ecal, calorimetry.hcal
    row = tracks.particle
    event = table.event[row]

    # 1. Links.
    reach_e = impacts.ecal_reached[row]
    reach_h = impacts.hcal_reached[row]
    ecal_link = np.where(reach_e, calo.find_cluster(calo.ECAL, calorimetry.ecal_cells, ecal, event,
                                                     impacts.ecal_eta[row], impacts.ecal_phi[row]), -1)
    hcal_link = np.where(reach_h, calo.find_cluster(calo.HCAL, calorimetry.hcal_cells, hcal, event,
                                                     impacts.hcal_eta[row], impacts.hcal_phi[row]), -1)
    ecal_to_hcal = calo.find_cluster(calo.HCAL, calorimetry.hcal_cells, hcal, ecal.event, ecal.eta, ecal.phi)

    available_e = ecal.energy.astype(np.float64)
    available_h = hcal.energy.astype(np.float64)

    # 2. Muons.
    muon = _identify_muons(table, tracks, rng)
    np.subtract.at(available_e, ecal_link[muon & (ecal_link >= 0)], c.ECAL_MIP_GEV)
    np.subtract.at(available_h, hcal_link[muon & (hcal_link >= 0)], c.HCAL_MIP_GEV)

    # 3. Electrons (and the bremsstrahlung photons they collect).
    electron = ~muon & _identify_electrons(table, tracks, ecal_link, ecal_share, rng)
    electron_pt = _electron_pt(table, tracks, rng)
    electron_energy = electron_pt * np.cosh(tracks.eta)
    np.subtract.at(available_e, ecal_link[electron], electron_energy[electron])
    identified = np.zeros(len(table), dtype=bool)
    identified[row[electron]] = True
    brem = np.flatnonzero((brem_parent >= 0) & impacts.ecal_reached)
    brem = brem[identified[brem_parent[brem]]]
    brem_link = calo.find_cluster(calo.ECAL, calorimetry.ecal_cells, ecal, table.event[brem],
                                  impacts.ecal_eta[brem], impacts.ecal_phi[brem])
    np.subtract.at(available_e, brem_link[brem_link >= 0], table.energy[brem][brem_link >= 0])
    np.maximum(available_e, 0.0, out=available_e)
    np.maximum(available_h, 0.0, out=available_h)

    # 4. Charged hadrons.
    hadron = ~muon & ~electron
    cls = np.where(muon, ParticleClass.MUON, np.where(electron, ParticleClass.ELECTRON, ParticleClass.CHARGED_HADRON))
    charged = Candidates(event, np.where(electron, electron_pt, tracks.pt), tracks.eta, tracks.phi,
                         tracks.vx, tracks.vy, tracks.vz, cls.astype(np.int8), table.pileup[row])

    # 5. Photons from ECAL clusters with no charged-hadron track.
    n_e, n_h = len(ecal), len(hcal)
    linked_e = np.zeros(n_e, dtype=bool)
    linked_e[ecal_link[hadron & (ecal_link >= 0)]] = True
    free = ~linked_e & (available_e > 0.3)
    photons = _neutrals(ecal.event[free], available_e[free], ecal.eta[free], ecal.phi[free], ParticleClass.PHOTON)

    # 6. Blocks: an HCAL cluster, or an ECAL cluster without HCAL link (block id n_h + index).
    ecal_block = np.where(ecal_to_hcal >= 0, ecal_to_hcal, n_h + np.arange(n_e))
    track_block = np.where(hcal_link >= 0, hcal_link, np.where(ecal_link >= 0, ecal_block[np.maximum(ecal_link, 0)], -1))
    n_blocks = n_h + n_e
    in_block = hadron & (track_block >= 0)
    p_track = tracks.pt * np.cosh(tracks.eta)
    block_p = np.bincount(track_block[in_block], weights=p_track[in_block], minlength=n_blocks)
    has_track = np.bincount(track_block[in_block], minlength=n_blocks) > 0
    e_link = np.bincount(ecal_block[linked_e], weights=available_e[linked_e], minlength=n_blocks)
    w = available_e[linked_e]
    cos_sum = np.bincount(ecal_block[linked_e], weights=w * np.cos(ecal.phi[linked_e]), minlength=n_blocks)
    sin_sum = np.bincount(ecal_block[linked_e], weights=w * np.sin(ecal.phi[linked_e]), minlength=n_blocks)
    eta_sum = np.bincount(ecal_block[linked_e], weights=w * ecal.eta[linked_e], minlength=n_blocks)
    e_hcal = np.concatenate([available_h, np.zeros(n_e)])

    block_event = np.concatenate([hcal.event, ecal.event])
    safe = np.maximum(e_link, 1e-12)
    ecal_eta = eta_sum / safe
    ecal_phi = np.arctan2(sin_sum, cos_sum)
    block_eta = np.concatenate([hcal.eta, ecal_eta[n_h:]])
    block_phi = np.concatenate([hcal.phi, ecal_phi[n_h:]])

    raw = e_link + e_hcal
    calibrated = np.where(raw > 0, calibrate_hadron(np.maximum(raw, 1e-6)), 0.0)
    excess = calibrated - block_p
    sigma = np.hypot(c.PF_CALO_STOCHASTIC * np.sqrt(calibrated), c.PF_CALO_CONSTANT * calibrated)
    significant = has_track & (excess > np.maximum(sigma, c.PF_EXCESS_MIN_GEV))
    photon_only = significant & (excess <= e_link)
    split = significant & (excess > e_link)
    excess_photon = np.where(photon_only, excess, np.where(split & (e_link > 0.3), e_link, 0.0))
    excess_hadron = np.where(split, excess - e_link, 0.0)

    # 7. HCAL clusters with no track: neutral hadrons (the neutral-hadron response is 5 % lower).
    # The minimum energy applies to the raw energy, so isolated noise towers do not become
    # neutral hadrons through the large low-energy calibration factor.
    neutral_raw = np.where(~has_track & (e_hcal > c.PF_NEUTRAL_HADRON_RAW_MIN_GEV), e_hcal, 0.0)
    neutral_energy = np.where(neutral_raw > 0, calibrate_hadron(np.maximum(neutral_raw, 1e-6) / c.NEUTRAL_HADRON_RESPONSE), 0.0)
    hadron_energy = excess_hadron + neutral_energy

    sel = excess_photon > 0
    excess_photons = _neutrals(block_event[sel], excess_photon[sel], ecal_eta[sel], ecal_phi[sel], ParticleClass.PHOTON)
    sel = hadron_energy > c.PF_NEUTRAL_HADRON_MIN_GEV
    neutral_hadrons = _neutrals(block_event[sel], hadron_energy[sel], block_eta[sel], block_phi[sel],
                                ParticleClass.NEUTRAL_HADRON)
    return concatenate_candidates([charged, photons, excess_photons, neutral_hadrons])


def concatenate_candidates(parts: list[Candidates]) -> Candidates:
    return Candidates(*(np.concatenate([getattr(p, name) for p in parts]) for name in Candidates.__dataclass_fields__))
