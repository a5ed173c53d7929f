"""Charged-particle tracking: helix propagation in the solenoid, efficiency and smearing.

A particle of charge q and transverse momentum pT moves on a helix of radius
R = pT / (0.3 B) (m, GeV, T) about the z axis field. Starting near the beam line
in direction phi0, it reaches transverse distance d after turning by
alpha = 2 asin(d / 2R); its position angle there is phi0 - q alpha / 2 and it has
advanced z by R alpha sinh(eta). A particle with 2R < d never reaches d (a looper).
"""

from __future__ import annotations

import numpy as np

from parnassus.detectors.cmslike import constants as c


def propagate(pt, eta, phi, vx, vy, vz, charge, radius_cm, endcap_z_cm):
    """Find where each particle crosses a calorimeter surface (a barrel cylinder closed by endcap discs).

    Args:
        pt, eta, phi: momentum at the production vertex (GeV, rad), shape (n,).
        vx, vy, vz: production vertex (cm), shape (n,).
        charge: -1, 0 or +1, shape (n,).
        radius_cm: barrel radius; endcap_z_cm: |z| of the endcap discs.

    Returns:
        (reached, eta_position, phi_position): a bool mask and the position angles of the impact,
        all shape (n,). Particles produced outside the surface, loopers that range out in the
        tracker (more than ``LOOPER_MAX_TURNS`` turns before the endcap) and impacts with
        |eta| > ``CALO_ABS_ETA_MAX`` are not reached.

    NOTE: a displaced start (conversion, decay) is approximated by shortening the radial
    distance to travel; the helix is not re-centred on the production vertex.
    """
    q = charge.astype(np.float64)
    r0 = np.hypot(vx, vy)
    distance = radius_cm - r0
    # Neutral particles get a huge finite radius so the helix formulas stay finite; they use
    # straight-line expressions below.
    bend_radius = np.where(q != 0, c.HELIX_RADIUS_CM_PER_GEV * pt, 1e12)
    sinh_eta = np.sinh(eta)

    # Barrel crossing, if the helix gets that far out.
    reaches_radius = (2.0 * bend_radius > distance) & (distance > 0)
    ratio = np.clip(distance / (2.0 * bend_radius), 0.0, 1.0)
    alpha_barrel = 2.0 * np.arcsin(ratio)
    arc_barrel = np.where(q != 0, bend_radius * alpha_barrel, distance)
    z_barrel = vz + arc_barrel * sinh_eta
    hits_barrel = reaches_radius & (np.abs(z_barrel) <= endcap_z_cm)

    # Endcap crossing otherwise: transverse arc length needed to reach |z| = endcap_z_cm.
    z_target = np.where(eta >= 0, endcap_z_cm, -endcap_z_cm)
    # A particle at eta = 0 never reaches the endcap: give it a huge finite arc length.
    safe_sinh = np.where(np.abs(sinh_eta) > 1e-9, sinh_eta, 1e-9)
    arc_endcap = np.where(np.abs(sinh_eta) > 1e-9, (z_target - vz) / safe_sinh, 1e12)
    alpha_endcap = np.where(q != 0, arc_endcap / bend_radius, 0.0)
    alpha_endcap = np.minimum(alpha_endcap, 1e6)
    r_endcap = np.where(q != 0, 2.0 * bend_radius * np.abs(np.sin(0.5 * alpha_endcap)), r0 + arc_endcap)
    endcap_ok = (arc_endcap > 0) & (alpha_endcap <= 2.0 * np.pi * c.LOOPER_MAX_TURNS) & ~hits_barrel

    alpha = np.where(hits_barrel, alpha_barrel, alpha_endcap)
    phi_position = phi - q * 0.5 * alpha
    phi_position = np.mod(phi_position + np.pi, 2.0 * np.pi) - np.pi
    with np.errstate(divide="ignore", invalid="ignore"):
        eta_position = np.where(hits_barrel, np.arcsinh(z_barrel / radius_cm), np.arcsinh(z_target / np.maximum(r_endcap, 1e-6)))
    reached = (hits_barrel | endcap_ok) & (np.abs(eta_position) < c.CALO_ABS_ETA_MAX)
    return reached, eta_position, phi_position


def algorithmic_efficiency(pt):
    """Pattern-recognition efficiency eps(pT) = 0.99 (1 - exp(-(pT - 0.1 GeV) / 0.12 GeV)), 0 below 0.1 GeV."""
    turn_on = 1.0 - np.exp(-(pt - c.TRACK_PT_MIN) / c.TRACK_ALGO_TURN_ON_GEV)
    return np.where(pt > c.TRACK_PT_MIN, c.TRACK_ALGO_PLATEAU * turn_on, 0.0)


def displaced_efficiency(radius_cm):
    """Efficiency factor of tracks produced at a transverse radius (cm): conversions, V0 daughters."""
    return c.DISPLACED_EFFICIENCY[np.searchsorted(c.DISPLACED_RADIUS_EDGES_CM, radius_cm)]


def electron_efficiency(pt, eta):
    """Electron track efficiency from the DELPHES CMS card: 0.73/0.95 (|eta| <= 1.5), 0.50/0.83 (1.5-2.5)."""
    endcap = np.abs(eta) > 1.5
    low = np.where(endcap, c.ELECTRON_TRACK_EFFICIENCY[1][0], c.ELECTRON_TRACK_EFFICIENCY[0][0])
    high = np.where(endcap, c.ELECTRON_TRACK_EFFICIENCY[1][1], c.ELECTRON_TRACK_EFFICIENCY[0][1])
    return np.where(pt > 1.0, high, np.where(pt > c.TRACK_PT_MIN, low, 0.0))


def relative_pt_resolution(pt, eta, muon):
    """sigma(pT)/pT = a(|eta|) (+) b(|eta|) pT, with the hadron or muon coefficients; capped at 1."""
    index = np.searchsorted(c.RESOLUTION_ETA_EDGES, np.abs(eta))
    a = np.where(muon, c.MUON_RES_A[index], c.TRACK_RES_A[index])
    b = np.where(muon, c.MUON_RES_B[index], c.TRACK_RES_B[index])
    return np.minimum(np.hypot(a, b * pt), 1.0)


def impact_parameter_resolution(pt, eta):
    """sigma(d0), sigma(dz) in cm, interpolated log-log in pT inside the three |eta| bins."""
    index = np.searchsorted(c.IP_ETA_EDGES, np.abs(eta))
    log_pt = np.log(np.clip(pt, c.IP_PT[0], c.IP_PT[-1]))
    log_grid = np.log(c.IP_PT)
    d0 = np.empty_like(pt)
    dz = np.empty_like(pt)
    for row in range(len(c.IP_D0_CM)):
        sel = index == row
        d0[sel] = np.exp(np.interp(log_pt[sel], log_grid, np.log(c.IP_D0_CM[row])))
        dz[sel] = np.exp(np.interp(log_pt[sel], log_grid, np.log(c.IP_DZ_CM[row])))
    # Below 0.2 GeV multiple scattering keeps growing as 1/pT.
    low = np.minimum(pt, c.IP_PT[0]) / c.IP_PT[0]
    return d0 / low, dz / low


def smear_tracks(pt, eta, phi, vx, vy, vz, charge, muon, resolution_scale, rng):
    """Smear reconstructed track parameters.

    The curvature q/pT is smeared with a Gaussian of relative width sigma(pT)/pT times
    ``resolution_scale``, which is 2 for tracks with a late decay or interaction. Phi and eta
    get the direction resolution. The track vertex is its reference point, the point of closest
    approach to the beam line through the beam-spot centre (straight-line approximation, so a
    displaced track points back near the beam line, as in CMS track fits), moved by the
    impact-parameter resolution: transverse to the track for d0, along z for dz.

    Returns:
        (pt, eta, phi, vx, vy, vz) of the tracks; the curvature is folded back to positive pT.
    """
    n = len(pt)
    sigma = relative_pt_resolution(pt, eta, muon) * resolution_scale
    curvature = (1.0 / pt) * (1.0 + sigma * rng.standard_normal(n))
    # A sign flip of the curvature is a charge mis-assignment; pT is its absolute value.
    new_pt = 1.0 / np.maximum(np.abs(curvature), 1e-6)

    new_phi = phi + np.hypot(c.PHI_RES[0], c.PHI_RES[1] / pt) * rng.standard_normal(n)
    new_phi = np.mod(new_phi + np.pi, 2.0 * np.pi) - np.pi
    new_eta = eta + np.hypot(c.ETA_RES[0], c.ETA_RES[1] / pt) * rng.standard_normal(n)

    x0, y0, _ = c.BEAM_SPOT_CENTRE_CM
    along = (vx - x0) * np.cos(phi) + (vy - y0) * np.sin(phi)
    pca_x = vx - along * np.cos(phi)
    pca_y = vy - along * np.sin(phi)
    pca_z = vz - along * np.sinh(eta)

    sigma_d0, sigma_dz = impact_parameter_resolution(pt, eta)
    d0 = sigma_d0 * rng.standard_normal(n)
    new_vx = pca_x - d0 * np.sin(phi)
    new_vy = pca_y + d0 * np.cos(phi)
    new_vz = pca_z + sigma_dz * rng.standard_normal(n)
    return new_pt, new_eta, new_phi, new_vx, new_vy, new_vz
