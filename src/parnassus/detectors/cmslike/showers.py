"""Calorimeter response: electromagnetic and hadronic showers, MIPs, and their energy deposits.

Electrons and photons deposit all their energy (after bremsstrahlung) in the ECAL with the
resolution sigma/E = S/sqrt(E) (+) C. Hadrons have the non-compensating raw response of
CMS (visible energy below the true energy, most at low energy), shared between the ECAL
and the HCAL according to where the shower starts. Muons, and hadrons that decayed to a
muon, leave minimum-ionising deposits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from parnassus.detectors.cmslike import calorimeter as calo
from parnassus.detectors.cmslike import constants as c
from parnassus.detectors.cmslike.particles import ParticleTable

_BARYONS = (2212, 2112, 3122, 3112, 3222, 3312, 3322, 3334)


def hadron_response(energy):
    """Mean raw response R(E) = <E_visible>/E and relative width sigma/E of a charged pion (ECAL + HCAL).

    Interpolated in log E in the CMS fast-simulation table; below 1 GeV R stays at 0.5 and
    sigma/E grows as 1/sqrt(E).
    """
    log_e = np.log(np.clip(energy, 1.0, c.HADRON_RESPONSE_E[-1]))
    log_grid = np.log(c.HADRON_RESPONSE_E)
    response = np.interp(log_e, log_grid, c.HADRON_RESPONSE_MEAN / c.HADRON_RESPONSE_E)
    width = np.interp(log_e, log_grid, c.HADRON_RESPONSE_SIGMA / c.HADRON_RESPONSE_E)
    width = np.where(energy < 1.0, width[...] / np.sqrt(np.maximum(energy, 0.05)), width)
    return response, width


def calibrate_hadron(raw_energy, iterations: int = 6):
    """Invert the mean response: find E with R(E) E = raw_energy (fixed-point iteration)."""
    energy = np.asarray(raw_energy, dtype=np.float64) / 0.8
    for _ in range(iterations):
        response, _ = hadron_response(energy)
        energy = raw_energy / response
    return energy


def ecal_resolution(energy, eta):
    """Relative ECAL resolution S/sqrt(E) (+) C, barrel or endcap values."""
    endcap = np.abs(eta) > c.ECAL_BARREL_ABS_ETA
    stochastic = np.where(endcap, c.ECAL_STOCHASTIC[1], c.ECAL_STOCHASTIC[0])
    constant = np.where(endcap, c.ECAL_CONSTANT[1], c.ECAL_CONSTANT[0])
    in_gap = (np.abs(eta) > c.ECAL_GAP[0]) & (np.abs(eta) < c.ECAL_GAP[1])
    constant = np.where(in_gap, 2.0 * constant, constant)
    return np.hypot(stochastic / np.sqrt(np.maximum(energy, 1e-3)), constant)


def _moyal(location, scale, n, rng):
    """Landau-like MIP energy loss (Moyal distribution), clipped at zero."""
    return np.maximum(stats.moyal.rvs(loc=location, scale=scale, size=n, random_state=rng), 0.0)


@dataclass
class Deposits:
    """Cell entries of one calorimeter: event, cell index and energy (GeV)."""

    event: np.ndarray
    cell: np.ndarray
    energy: np.ndarray


@dataclass
class Impacts:
    """Impact points of each particle on the ECAL and the HCAL: reached masks and eta, phi."""

    ecal_reached: np.ndarray
    ecal_eta: np.ndarray
    ecal_phi: np.ndarray
    hcal_reached: np.ndarray
    hcal_eta: np.ndarray
    hcal_phi: np.ndarray


def _angular_sigma(sigma_cm, eta, radius_cm, endcap_z_cm):
    return sigma_cm / calo.transverse_radius_at(eta, radius_cm, endcap_z_cm)


def deposit_showers(table: ParticleTable, impacts: Impacts, rng) -> tuple[Deposits, Deposits, np.ndarray]:
    """Simulate the ECAL and HCAL deposits of all particles.

    Returns:
        (ecal, hcal, ecal_share): the cell entries of both calorimeters and, per particle,
        the share of its visible energy in the ECAL (used for electron fakes).
    """
    aid = np.abs(table.pdgid)
    n = len(table)
    energy = table.energy
    em = (aid == 11) | (aid == 22)
    mip = (aid == 13) | table.calo_as_muon
    hadron = ~em & ~mip

    ecal_parts = []  # (event, eta, phi, energy, sigma)
    hcal_parts = []
    ecal_share = np.zeros(n)

    # Electromagnetic showers: two-Gaussian lateral profile (core and tail).
    sel = em & impacts.ecal_reached
    e_em = energy[sel] * table.calo_fraction[sel]
    eta_em = impacts.ecal_eta[sel]
    e_em = e_em * (1.0 + ecal_resolution(e_em, eta_em) * rng.standard_normal(len(e_em)))
    in_gap = (np.abs(eta_em) > c.ECAL_GAP[0]) & (np.abs(eta_em) < c.ECAL_GAP[1])
    e_em = np.maximum(e_em * np.where(in_gap, c.ECAL_GAP_RESPONSE, 1.0), 0.0)
    for share, sigma_cm in ((c.EM_CORE_FRACTION, c.EM_CORE_SIGMA_CM), (1.0 - c.EM_CORE_FRACTION, c.EM_TAIL_SIGMA_CM)):
        sigma = _angular_sigma(sigma_cm, eta_em, c.ECAL_RADIUS_CM, c.ECAL_ENDCAP_Z_CM)
        ecal_parts.append((table.event[sel], eta_em, impacts.ecal_phi[sel], share * e_em, sigma))
    ecal_share[sel] = 1.0

    # Minimum-ionising particles: a Landau-like loss in each calorimeter they reach.
    sel = mip & impacts.ecal_reached
    count = int(sel.sum())
    ecal_parts.append((table.event[sel], impacts.ecal_eta[sel], impacts.ecal_phi[sel],
                       _moyal(c.ECAL_MIP_GEV, 0.03, count, rng), np.full(count, 1e-3)))
    sel = mip & impacts.hcal_reached
    count = int(sel.sum())
    hcal_parts.append((table.event[sel], impacts.hcal_eta[sel], impacts.hcal_phi[sel],
                       _moyal(c.HCAL_MIP_GEV, 0.3, count, rng), np.full(count, 1e-3)))

    # Hadrons: available energy (kinetic for baryons, plus the annihilation mass for antibaryons).
    sel = hadron & impacts.ecal_reached
    index = np.flatnonzero(sel)
    baryon = np.isin(aid[index], _BARYONS)
    available = energy[index] - np.where(baryon, np.sign(table.pdgid[index]) * table.mass[index], 0.0)
    available = np.maximum(available, 0.0)
    response, width = hadron_response(available)
    response = np.where(table.charge[index] == 0, c.NEUTRAL_HADRON_RESPONSE * response, response)
    visible = np.maximum(available * (response + width * rng.standard_normal(len(index))), 0.0)

    showers_in_ecal = rng.random(len(index)) < c.ECAL_SHOWER_START_PROBABILITY
    fraction = np.where(showers_in_ecal, rng.beta(*c.ECAL_HADRON_FRACTION_BETA, len(index)), 0.0)
    mip_energy = np.minimum(_moyal(c.ECAL_MIP_GEV, 0.03, len(index), rng), visible)
    e_ecal = np.where(showers_in_ecal, fraction * visible, mip_energy)
    e_hcal = visible - e_ecal
    ecal_share[index] = np.where(visible > 0, e_ecal / np.maximum(visible, 1e-12), 0.0)

    eta_e = impacts.ecal_eta[index]
    sigma_e = np.where(showers_in_ecal, _angular_sigma(c.ECAL_HADRON_SIGMA_CM, eta_e, c.ECAL_RADIUS_CM, c.ECAL_ENDCAP_Z_CM), 1e-3)
    ecal_parts.append((table.event[index], eta_e, impacts.ecal_phi[index], e_ecal, sigma_e))

    # The HCAL part lands where the particle reaches the HCAL (a looper that reaches the ECAL
    # endcap but not the HCAL leaves it at the ECAL position).
    eta_h = np.where(impacts.hcal_reached[index], impacts.hcal_eta[index], eta_e)
    phi_h = np.where(impacts.hcal_reached[index], impacts.hcal_phi[index], impacts.ecal_phi[index])
    sigma_h = _angular_sigma(c.HCAL_SHOWER_SIGMA_CM, eta_h, c.HCAL_RADIUS_CM, c.HCAL_ENDCAP_Z_CM)
    hcal_parts.append((table.event[index], eta_h, phi_h, e_hcal, sigma_h))

    return _to_cells(calo.ECAL, ecal_parts), _to_cells(calo.HCAL, hcal_parts), ecal_share


def _to_cells(grid, parts) -> Deposits:
    event, eta, phi, energy, sigma = (np.concatenate([p[i] for p in parts]) for i in range(5))
    return Deposits(*calo.share_deposits(grid, event, eta, phi, energy, sigma))
