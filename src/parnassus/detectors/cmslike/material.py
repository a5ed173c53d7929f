"""Tracker material and decays: conversions, bremsstrahlung, nuclear interactions, V0 and in-flight decays.

The material seen by a particle from the beam line to the calorimeter is t/X0(|eta|)
(:data:`constants.MATERIAL_X0`), spread in radius like the barrel layers of
:data:`constants.LAYER_RADIUS_CM`. A particle produced at radius r0 crosses only the
material beyond r0. Interactions happen at a layer drawn with probability
proportional to its material.
"""

from __future__ import annotations

import numpy as np

from parnassus.detectors.cmslike import constants as c
from parnassus.detectors.cmslike.particles import (
    ORIGIN_BREM,
    ORIGIN_CONVERSION,
    ORIGIN_DECAY,
    ParticleTable,
    from_components,
    mass_of,
    momentum_components,
    new_table,
)

_LAYER_CUMULATIVE = np.cumsum(c.LAYER_X0) / np.sum(c.LAYER_X0)


def material_x0(eta) -> np.ndarray:
    """Total tracker material t/X0 in front of the calorimeter at pseudorapidity ``eta``."""
    return np.interp(np.abs(eta), c.MATERIAL_ABS_ETA, c.MATERIAL_X0)


def material_fraction_before(radius_cm) -> np.ndarray:
    """Share of the tracker material at transverse radii below ``radius_cm``."""
    index = np.searchsorted(c.LAYER_RADIUS_CM, radius_cm, side="right")
    return np.concatenate([[0.0], _LAYER_CUMULATIVE])[index]


def sample_layer_radius(start_fraction, rng) -> np.ndarray:
    """Draw the radius (cm) of an interaction layer beyond the given material share."""
    u = start_fraction + (1.0 - start_fraction) * rng.random(len(start_fraction))
    index = np.minimum(np.searchsorted(_LAYER_CUMULATIVE, u), len(c.LAYER_RADIUS_CM) - 1)
    return c.LAYER_RADIUS_CM[index]


def _point_at_radius(table: ParticleTable, radius):
    """Production vertex moved outward along the momentum direction to the transverse ``radius`` (cm)."""
    step = np.maximum(radius - np.hypot(table.vx, table.vy), 0.0)
    return (table.vx + step * np.cos(table.phi), table.vy + step * np.sin(table.phi), table.vz + step * np.sinh(table.eta))


def _remaining_material(table: ParticleTable) -> tuple[np.ndarray, np.ndarray]:
    before = material_fraction_before(np.hypot(table.vx, table.vy))
    return material_x0(table.eta) * (1.0 - before), before


# --- two-body decays --------------------------------------------------------------------------


def two_body_decay(pt, eta, phi, mass, m1, m2, rng):
    """Decay parents isotropically in their rest frame into two daughters of masses m1, m2 (GeV).

    Returns:
        ((pt1, eta1, phi1), (pt2, eta2, phi2)), each array shape (n,).
    """
    n = len(pt)
    px, py, pz = momentum_components(pt, eta, phi)
    energy = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    p_star = np.sqrt(np.maximum((mass**2 - (m1 + m2) ** 2) * (mass**2 - (m1 - m2) ** 2), 0.0)) / (2.0 * mass)

    cos_theta = rng.uniform(-1.0, 1.0, n)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    azimuth = rng.uniform(0.0, 2.0 * np.pi, n)
    k = np.stack([p_star * sin_theta * np.cos(azimuth), p_star * sin_theta * np.sin(azimuth), p_star * cos_theta])

    # Lorentz boost with beta = p / E of the parent.
    beta = np.stack([px, py, pz]) / energy
    gamma = energy / mass
    beta2 = np.maximum(np.sum(beta**2, axis=0), 1e-300)
    daughters = []
    for sign, m in ((1.0, m1), (-1.0, m2)):
        kk = sign * k
        e_star = np.sqrt(np.sum(kk**2, axis=0) + m**2)
        bk = np.sum(beta * kk, axis=0)
        lab = kk + ((gamma - 1.0) * bk / beta2 + gamma * e_star) * beta
        daughters.append(from_components(lab[0], lab[1], lab[2]))
    return daughters[0], daughters[1]


def _daughters(parents: ParticleTable, vertex, pdg1, pdg2, rng) -> ParticleTable:
    n = len(parents)
    pdg1 = np.broadcast_to(np.asarray(pdg1, dtype=np.int32), (n,))
    pdg2 = np.broadcast_to(np.asarray(pdg2, dtype=np.int32), (n,))
    m1, m2 = mass_of(pdg1), mass_of(pdg2)
    (pt1, eta1, phi1), (pt2, eta2, phi2) = two_body_decay(parents.pt, parents.eta, parents.phi, parents.mass, m1, m2, rng)
    both = lambda a, b: np.concatenate([a, b])  # noqa: E731
    return new_table(
        event=both(parents.event, parents.event),
        pt=both(pt1, pt2), eta=both(eta1, eta2), phi=both(phi1, phi2),
        vx=both(vertex[0], vertex[0]), vy=both(vertex[1], vertex[1]), vz=both(vertex[2], vertex[2]),
        pdgid=both(pdg1, pdg2),
        pileup=both(parents.pileup, parents.pileup),
        origin=ORIGIN_DECAY,
    )


def decay_pi0(table: ParticleTable, rng) -> ParticleTable:
    """Replace pi0 rows (from hyperon and K0S decays) by their two photons at the same vertex."""
    pi0 = table.pdgid == 111
    if not pi0.any():
        return table
    parents = table.subset(pi0)
    photons = _daughters(parents, (parents.vx, parents.vy, parents.vz), 22, 22, rng)
    return ParticleTable.concatenate([table.subset(~pi0), photons])


def decay_long_lived(table: ParticleTable, rng, generations: int = 3) -> ParticleTable:
    """Decay K0S, Lambda and the hyperons (Sigma, Xi, Omega) left stable by the generator.

    The decay length is beta gamma c tau times an exponential draw. Particles that decay
    before the ECAL surface are replaced by the daughters of a two-body mode drawn from
    :data:`constants.DECAYS`, produced at the decay vertex; pi0 go to two photons at once.
    Daughters that are themselves long-lived (Lambda from Xi) decay in the next of
    ``generations`` passes.

    NOTE: a charged hyperon that decays inside the tracker leaves no track of its own.
    """
    for _ in range(generations):
        candidate = np.isin(np.abs(table.pdgid), list(c.DECAYS))
        if not candidate.any():
            break
        table = _decay_once(table, candidate, rng)
    return decay_pi0(table, rng)


def _decay_once(table: ParticleTable, candidate, rng) -> ParticleTable:
    parents = table.subset(candidate)
    aid = np.abs(parents.pdgid)
    ctau = np.zeros(len(parents))
    for pdgid in c.DECAYS:
        ctau[aid == pdgid] = c.CTAU_CM[pdgid]
    length = parents.p / parents.mass * ctau * rng.exponential(1.0, len(parents))
    direction = np.stack(momentum_components(np.ones(len(parents)), parents.eta, parents.phi)) / np.cosh(parents.eta)
    vertex = np.stack([parents.vx, parents.vy, parents.vz]) + length * direction
    inside = (np.hypot(vertex[0], vertex[1]) < c.ECAL_RADIUS_CM) & (np.abs(vertex[2]) < c.ECAL_ENDCAP_Z_CM)

    # Draw one mode per decaying parent: daughters of the particle, conjugated for antiparticles.
    u = rng.random(len(parents))
    daughter1 = np.zeros(len(parents), dtype=np.int32)
    daughter2 = np.zeros(len(parents), dtype=np.int32)
    for pdgid, modes in c.DECAYS.items():
        sel = aid == pdgid
        fractions = np.cumsum([mode[0] for mode in modes])
        choice = np.minimum(np.searchsorted(fractions / fractions[-1], u[sel]), len(modes) - 1)
        daughter1[sel] = np.array([mode[1] for mode in modes])[choice]
        daughter2[sel] = np.array([mode[2] for mode in modes])[choice]
    sign = np.sign(parents.pdgid)
    daughter1 = np.where(np.isin(daughter1, c.SELF_CONJUGATE), daughter1, sign * daughter1)
    daughter2 = np.where(np.isin(daughter2, c.SELF_CONJUGATE), daughter2, sign * daughter2)

    decaying = parents.subset(inside)
    daughters = _daughters(decaying, vertex[:, inside], daughter1[inside], daughter2[inside], rng)
    return ParticleTable.concatenate([table.subset(~candidate), parents.subset(~inside), daughters])


def decay_in_flight(table: ParticleTable, rng) -> ParticleTable:
    """Decay charged pions and kaons to muons before the calorimeter.

    The transverse decay radius is r0 + (c tau pT / m) times an exponential draw. Kaons
    decay to mu nu with their branching fraction, and other kaon modes are not simulated.
    The muon takes a share x of the momentum, uniform in [(m_mu/m)^2, 1] (two-body decay
    of a relativistic parent), and its direction is the parent's. Below
    ``DECAY_TRACK_RADIUS_CM`` the track is the muon's; beyond, the hadron track is kept with
    twice the pT resolution and its calorimeter deposit is the muon's (``calo_as_muon``,
    with ``calo_fraction`` = x).
    """
    aid = np.abs(table.pdgid)
    candidate = np.flatnonzero((aid == 211) | (aid == 321))
    if len(candidate) == 0:
        return table
    sub = table.subset(candidate)
    kaon = np.abs(sub.pdgid) == 321
    r0 = np.hypot(sub.vx, sub.vy)
    ctau = np.where(kaon, c.CTAU_CM[321], c.CTAU_CM[211])
    radius = r0 + ctau * sub.pt / sub.mass * rng.exponential(1.0, len(sub))
    z = sub.vz + (radius - r0) * np.sinh(sub.eta)
    decays = (radius < c.ECAL_RADIUS_CM) & (np.abs(z) < c.ECAL_ENDCAP_Z_CM)
    decays &= ~kaon | (rng.random(len(sub)) < c.BR_K_MUNU)
    x_min = (c.MASS[13] / sub.mass) ** 2
    x = x_min + (1.0 - x_min) * rng.random(len(sub))

    early = candidate[decays & (radius < c.DECAY_TRACK_RADIUS_CM)]
    late = candidate[decays & (radius >= c.DECAY_TRACK_RADIUS_CM)]
    early_sel = decays & (radius < c.DECAY_TRACK_RADIUS_CM)
    late_sel = decays & (radius >= c.DECAY_TRACK_RADIUS_CM)

    step = radius - r0
    table.pt[early] = x[early_sel] * sub.pt[early_sel]
    table.vx[early] = sub.vx[early_sel] + step[early_sel] * np.cos(sub.phi[early_sel])
    table.vy[early] = sub.vy[early_sel] + step[early_sel] * np.sin(sub.phi[early_sel])
    table.vz[early] = z[early_sel]
    # pi+ -> mu+ (PDG id -13): the muon keeps the parent's charge.
    table.pdgid[early] = -13 * table.charge[early]
    table.mass[early] = c.MASS[13]
    table.origin[early] = ORIGIN_DECAY

    table.origin[late] = ORIGIN_DECAY
    table.calo_as_muon[late] = True
    table.calo_fraction[late] = x[late_sel]
    table.res_scale[late] *= 2.0
    return table


# --- photons and electrons --------------------------------------------------------------------


def _bethe_heitler_fraction(n, rng) -> np.ndarray:
    """Draw the positron energy share x from the density proportional to 1 - 4/3 x (1 - x) on [0, 1]."""
    x = rng.random(n)
    todo = rng.random(n) > 1.0 - 4.0 / 3.0 * x * (1.0 - x)
    while todo.any():
        x[todo] = rng.random(todo.sum())
        todo[todo] = rng.random(todo.sum()) > 1.0 - 4.0 / 3.0 * x[todo] * (1.0 - x[todo])
    return x


def convert_photons(table: ParticleTable, rng) -> ParticleTable:
    """Convert photons above 0.1 GeV into e+ e- pairs with probability 1 - exp(-7/9 t/X0).

    The pair is collinear with the photon and starts at the conversion point, a layer drawn
    in proportion to its material. The positron takes a share x of the energy with density
    proportional to 1 - 4/3 x (1 - x), the high-energy Bethe-Heitler limit.
    """
    photon = (table.pdgid == 22) & (table.p > c.MATERIAL_EFFECT_E_MIN)
    if not photon.any():
        return table
    index = np.flatnonzero(photon)
    sub = table.subset(index)
    t, before = _remaining_material(sub)
    converts = rng.random(len(sub)) < 1.0 - np.exp(-c.CONVERSION_PER_X0 * t)
    gammas = sub.subset(converts)
    radius = sample_layer_radius(before[converts], rng)
    vx, vy, vz = _point_at_radius(gammas, radius)
    share = _bethe_heitler_fraction(len(gammas), rng)
    both = lambda a, b: np.concatenate([a, b])  # noqa: E731
    pairs = new_table(
        event=both(gammas.event, gammas.event),
        pt=both(share * gammas.pt, (1.0 - share) * gammas.pt),
        eta=both(gammas.eta, gammas.eta), phi=both(gammas.phi, gammas.phi),
        vx=both(vx, vx), vy=both(vy, vy), vz=both(vz, vz),
        pdgid=np.concatenate([np.full(len(gammas), -11), np.full(len(gammas), 11)]),
        pileup=both(gammas.pileup, gammas.pileup),
        origin=ORIGIN_CONVERSION,
    )
    keep = np.ones(len(table), dtype=bool)
    keep[index[converts]] = False
    return ParticleTable.concatenate([table.subset(keep), pairs])


def bremsstrahlung(table: ParticleTable, rng) -> tuple[ParticleTable, np.ndarray]:
    """Let electrons radiate in the tracker material (one summed photon per electron).

    The kept energy share z follows the Bethe-Heitler law, -ln z ~ Gamma(t / ln 2) for t/X0
    of material (mean e^-t). The photon carries (1 - z) E when that is above 0.1 GeV and
    0.5 % of E, and leaves along the electron's tangent at the emission layer. The electron's
    track keeps its vertex momentum (a Gaussian-sum fit does) and ``calo_fraction`` becomes z.
    The photons are appended after the existing rows.

    Returns:
        the table with the photons, and the row of the radiating electron for each photon.
    NOTE: the electron's calorimeter impact is computed with its vertex pT.
    """
    electron = np.flatnonzero(np.abs(table.pdgid) == 11)
    if len(electron) == 0:
        return table, np.zeros(0, dtype=np.int64)
    sub = table.subset(electron)
    t, before = _remaining_material(sub)
    radiated = rng.gamma(np.maximum(t / np.log(2.0), 1e-9)) * (t > 0)
    kept = np.exp(-radiated)
    photon_p = (1.0 - kept) * sub.p
    emits = (photon_p > c.MATERIAL_EFFECT_E_MIN) & (1.0 - kept > c.BREM_MIN_FRACTION)

    table.calo_fraction[electron[emits]] *= kept[emits]
    # [assume] The Gaussian-sum track resolution widens with the radiated share: sigma x (1 + 2 (1 - z)).
    table.res_scale[electron[emits]] *= 1.0 + 2.0 * (1.0 - kept[emits])

    emitters = sub.subset(emits)
    radius = sample_layer_radius(before[emits], rng)
    vx, vy, vz = _point_at_radius(emitters, radius)
    bend = c.HELIX_RADIUS_CM_PER_GEV * emitters.pt
    turn = 2.0 * np.arcsin(np.clip((radius - np.hypot(emitters.vx, emitters.vy)) / (2.0 * bend), 0.0, 1.0))
    phi = np.mod(emitters.phi - emitters.charge * turn + np.pi, 2.0 * np.pi) - np.pi
    photons = new_table(
        event=emitters.event, pt=photon_p[emits] / np.cosh(emitters.eta), eta=emitters.eta, phi=phi,
        vx=vx, vy=vy, vz=vz, pdgid=np.full(len(emitters), 22), pileup=emitters.pileup, origin=ORIGIN_BREM,
    )
    return ParticleTable.concatenate([table, photons]), electron[emits]


# --- hadronic nuclear interactions --------------------------------------------------------------


def nuclear_interactions(table: ParticleTable, rng) -> ParticleTable:
    """Mark charged-hadron tracks lost to nuclear interactions in the tracker material.

    The interaction probability is 1 - exp(-k t/X0 (X0/lambda_I) s(p)) with the per-hadron
    X0/lambda_I ratios and the inelastic fraction s(p) of positive hadrons above their
    minimum momentum (CMS fast simulation); negative hadrons and antibaryons have s = 1.
    An interaction inside ``NUCLEAR_TRACK_LOSS_RADIUS_CM`` loses the track; a later one keeps
    it with twice the pT resolution. The calorimeter deposit is kept either way.
    """
    hadron = (table.charge != 0) & (np.abs(table.pdgid) != 11) & (np.abs(table.pdgid) != 13)
    index = np.flatnonzero(hadron)
    sub = table.subset(index)
    ratio = np.full(len(sub), c.NUCLEAR_X0_OVER_LAMBDA[211])
    p_min = np.zeros(len(sub))
    for pdgid, value in c.NUCLEAR_X0_OVER_LAMBDA.items():
        ratio[sub.pdgid == pdgid] = value
    positive = sub.pdgid > 0
    p_min[positive & (sub.pdgid == 211)] = 0.7
    p_min[positive & (sub.pdgid == 321)] = 1.0
    p_min[positive & (sub.pdgid == 2212)] = 1.1
    momentum = sub.p
    inelastic = np.where(positive, np.interp(momentum, c.NUCLEAR_INELASTIC_P, c.NUCLEAR_INELASTIC_FRACTION), 1.0)
    inelastic = np.where(momentum > p_min, inelastic, 0.0)

    t, before = _remaining_material(sub)
    interacts = rng.random(len(sub)) < 1.0 - np.exp(-c.NUCLEAR_SCALE * t * ratio * inelastic)
    radius = sample_layer_radius(before, rng)
    lost = interacts & (radius < c.NUCLEAR_TRACK_LOSS_RADIUS_CM)
    table.track_lost[index[lost]] = True
    table.res_scale[index[interacts & ~lost]] *= 2.0
    return table
