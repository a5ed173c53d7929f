"""Physics validation of the cmslike reference simulation against published CMS performance.

Targets and their sources (documented in docs/cmslike.md):
- prompt-track efficiency in ttbar, pT > 0.9 GeV: 94 % for |eta| < 0.9 and 85 % for
  0.9 < |eta| < 2.5 (CMS, arXiv:1405.6569);
- pT resolution of charged pions: the implemented a (+) b pT law (DELPHES CMS card commit
  df5084b), 0.7 % at 1 GeV central (arXiv:1007.1988) and 2.8 % for 100 GeV muons at
  |eta| < 1.4 (arXiv:1405.6569);
- photon conversions before the ECAL: 1 - exp(-7/9 t/X0), about 27 % at eta = 0 and 75 % at
  |eta| = 1.5;
- PF energy shares in jets: about 65 % charged hadrons, 25 % photons, 10 % neutral hadrons
  (CMS, arXiv:1706.04965);
- PFC multiplicity of ttbar at 7 TeV with pT > 1 GeV, |eta| < 2.5: DELPHES 3.5.1 with its CMS
  card gives about 84 per event without pileup and 113 with a mean of 6.35 interactions.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from parnassus.core import events as ev
from parnassus.detectors.cmslike import PileupLibrary, card, material, samples
from parnassus.detectors.cmslike.particles import from_events
from parnassus.detectors.cmslike.simulation import simulate_chunk
from parnassus.detectors.cmslike.tracking import relative_pt_resolution


@pytest.fixture(scope="module")
def ttbar():
    return samples.generate("ttbar", 200, seed=11)


@pytest.fixture(scope="module")
def library():
    return PileupLibrary(samples.generate("minbias", 200, seed=12))


def gun(pdgid, pt, eta_low, eta_high, n, seed):
    """One particle per event at fixed pT, uniform in eta (both signs) and phi, from the origin."""
    rng = np.random.default_rng(seed)
    eta = rng.uniform(eta_low, eta_high, n) * rng.choice([-1, 1], n)
    phi = rng.uniform(-np.pi, np.pi, n)
    ones = np.ones(n, dtype=np.int64)

    def jag(values):
        return ak.unflatten(np.asarray(values, dtype=np.float64), ones)

    cls = ev.pdgid_to_class(np.full(n, pdgid))
    gen = ev.make_particles(jag(np.full(n, pt)), jag(eta), jag(phi), jag(np.zeros(n)), jag(np.zeros(n)),
                            jag(np.zeros(n)), ak.unflatten(cls, ones), pdgid=ak.unflatten(np.full(n, pdgid), ones))
    return ev.make_events(gen)


def robust_sigma(values):
    """Half the central 68 % interval: the Gaussian core width, insensitive to tails."""
    low, high = np.percentile(values, [16, 84])
    return 0.5 * (high - low)


def test_track_efficiency_ttbar(ttbar, library):
    gen = card.gen_selection.apply(ttbar.gen)
    result = simulate_chunk(gen, np.random.default_rng(1), library, 6.35)
    table = result.particles
    tracked = np.zeros(len(table), dtype=bool)
    tracked[result.tracks.particle] = True
    prompt = (table.origin == 0) & ~table.pileup & (table.charge != 0) & (table.pt > 0.9) & (np.abs(table.pdgid) != 13)
    barrel = prompt & (np.abs(table.eta) < 0.9)
    endcap = prompt & (np.abs(table.eta) >= 0.9) & (np.abs(table.eta) < 2.5)
    # Targets 94 % and 85 %; tolerance 2.5 points (statistics of ~7000 tracks give 0.3 points).
    assert abs(tracked[barrel].mean() - 0.94) < 0.025
    assert abs(tracked[endcap].mean() - 0.85) < 0.025


@pytest.mark.parametrize("pt", [1.0, 10.0, 50.0])
def test_pion_pt_resolution(pt):
    events = gun(211, pt, 0.0, 0.5, 3000, seed=int(pt))
    result = simulate_chunk(events.gen, np.random.default_rng(2), None, 0.0)
    table = result.particles
    row = result.tracks.particle
    clean = table.res_scale[row] == 1.0
    residual = result.tracks.pt[clean] / table.pt[row][clean] - 1.0
    expected = float(relative_pt_resolution(np.array([pt]), np.array([0.25]), np.array([False]))[0])
    # The measured core width agrees with the implemented law within 12 %.
    assert robust_sigma(residual) == pytest.approx(expected, rel=0.12)


def test_pt_resolution_published_targets():
    # 1 GeV central tracks: 0.7 % published; the implemented law gives 1.0 %. Accept 0.5-1.5 %.
    events = gun(211, 1.0, 0.0, 0.5, 3000, seed=5)
    result = simulate_chunk(events.gen, np.random.default_rng(3), None, 0.0)
    row = result.tracks.particle
    sigma_1 = robust_sigma(result.tracks.pt / result.particles.pt[row] - 1.0)
    assert 0.005 < sigma_1 < 0.015

    # 100 GeV muons at |eta| < 1.4: 2.8 % published; accept 1.5-3.5 %.
    events = gun(13, 100.0, 0.0, 1.4, 3000, seed=6)
    result = simulate_chunk(events.gen, np.random.default_rng(4), None, 0.0)
    row = result.tracks.particle
    residual = result.tracks.pt / result.particles.pt[row] - 1.0
    assert 0.015 < np.std(residual) < 0.035


def conversion_fraction(eta_low, eta_high, seed):
    events = gun(22, 10.0, eta_low, eta_high, 4000, seed)
    rng = np.random.default_rng(seed)
    table = from_events(events.gen, rng)
    converted = material.convert_photons(table, rng)
    legs = np.abs(converted.pdgid) == 11
    return legs.sum() / 2 / len(table), np.mean(1 - np.exp(-7 / 9 * material.material_x0(table.eta)))


def test_conversion_fraction_rises_with_material():
    barrel, barrel_expected = conversion_fraction(0.0, 0.3, 7)
    transition, transition_expected = conversion_fraction(1.3, 1.6, 8)
    # Binomial errors with 4000 photons are below 0.8 points; allow 3 points.
    assert barrel == pytest.approx(barrel_expected, abs=0.03)
    assert transition == pytest.approx(transition_expected, abs=0.03)
    # Published cross-checks: about 27 % at eta = 0 and about 75 % near |eta| = 1.5.
    assert barrel == pytest.approx(0.28, abs=0.04)
    assert transition == pytest.approx(0.72, abs=0.06)
    assert transition > barrel + 0.3


def class_energy_shares(pfc):
    energy = ak.flatten(pfc.pt * np.cosh(pfc.eta))
    cls = ak.flatten(pfc["class"])
    hadronic = {k: float(ak.sum(energy[cls == k])) for k in (0, 3, 4)}
    total = sum(hadronic.values())
    return {k: v / total for k, v in hadronic.items()}


def test_jet_energy_shares(ttbar):
    out = card.simulate(ttbar, seed=21)
    pfc = out.pfc[np.abs(out.pfc.eta) < 2.5]
    shares = class_energy_shares(pfc)
    # Targets 65 % / 25 % / 10 % of the hadronic PF energy; tolerance 7, 7 and 5 points.
    assert shares[0] == pytest.approx(0.65, abs=0.07)
    assert shares[4] == pytest.approx(0.25, abs=0.07)
    assert shares[3] == pytest.approx(0.10, abs=0.05)


def test_pfc_multiplicity(ttbar, library):
    no_pileup = card.simulate(ttbar, seed=31)
    with_pileup = card.simulate(ttbar, seed=31, pileup=library, mean_pileup=6.35)

    def mean_count(events):
        pfc = events.pfc
        return float(ak.mean(ak.num(pfc[np.abs(pfc.eta) < 2.5])))

    n_hard = mean_count(no_pileup)
    per_interaction = (mean_count(with_pileup) - n_hard) / 6.35
    # DELPHES with the CMS card: 84 per event and (113 - 84) / 6.35 = 4.6 per interaction.
    # DELPHES splits every K0S and Lambda into a photon and a neutral hadron and makes a neutral
    # hadron from any 1-sigma HCAL tower excess. Here, low-energy neutral hadrons that shower in
    # the ECAL fall below 1 GeV in both calorimeters. Required: 25 % per event, 50 % per interaction.
    assert n_hard == pytest.approx(84, rel=0.25)
    assert per_interaction == pytest.approx(4.6, rel=0.50)


def confusion_row(pdgid, seed):
    """Fractions of the leading PFC's class for single 10 GeV particles at |eta| < 2.3."""
    events = gun(pdgid, 10.0, 0.0, 2.3, 1500, seed)
    out = card.simulate(events, seed=seed)
    leading = ak.firsts(out.pfc["class"])
    leading = ak.to_numpy(ak.fill_none(leading, -1))
    return np.array([np.mean(leading == k) for k in range(5)])


def test_confusion_matrix_off_diagonal():
    matrix = np.stack([confusion_row(p, 40 + i) for i, p in enumerate([211, 11, 13, 2112, 22])])
    # Every class is mostly reconstructed as itself ...
    for k in range(5):
        assert matrix[k, k] == matrix[k].max()
        assert matrix[k, k] > 0.5
    # ... but untracked charged hadrons become neutral hadrons and photons, and conversions
    # give electrons, as in a real particle flow.
    assert matrix[0, 3] + matrix[0, 4] > 0.02
    assert matrix[4, 1] > 0.003
    assert matrix[3, 4] > 0.01


def leading_residual(pdgid, pt, eta_max, cls, seed, unconverted_only=False):
    """Relative pT residual of the leading PFC of class ``cls`` for single particles.

    With ``unconverted_only``, events whose particle converted in the tracker are left out.
    """
    events = gun(pdgid, pt, 0.0, eta_max, 2000, seed)
    result = simulate_chunk(events.gen, np.random.default_rng(seed), None, 0.0)
    candidates = result.candidates
    keep = np.ones(len(events), dtype=bool)
    if unconverted_only:
        converted = result.particles.event[result.particles.origin == 1]
        keep[converted] = False
    leading = np.full(len(events), np.nan)
    sel = (candidates.cls == cls) & (candidates.pt > 1.0)
    order = np.argsort(candidates.pt[sel])
    leading[candidates.event[sel][order]] = candidates.pt[sel][order]
    leading = leading[keep]
    found = np.isfinite(leading)
    return leading[found] / pt - 1.0, found.mean()


def test_photon_energy_resolution_barrel():
    # Z -> ee ECAL resolution below 2 % for |eta| < 0.8 (arXiv:1306.2016); 50 GeV unconverted photons.
    residual, found = leading_residual(22, 50.0, 0.8, 4, seed=61, unconverted_only=True)
    assert found > 0.95
    assert robust_sigma(residual) < 0.02
    assert abs(np.median(residual)) < 0.02


def test_electron_momentum_resolution():
    # Electrons from Z decays: 1.7-4.5 % depending on eta and bremsstrahlung (arXiv:1502.02701);
    # the core width of 40 GeV electrons over |eta| < 2.4 must lie in 1-4.5 %.
    residual, found = leading_residual(11, 40.0, 2.4, 1, seed=62)
    assert found > 0.6
    assert 0.01 < robust_sigma(residual) < 0.045


def anti_kt_jets(particles, fastjet, vector):
    """Anti-kt R = 0.5 jets above 20 GeV from the particles with |eta| < 2.5."""
    particles = particles[np.abs(particles.eta) < 2.5]
    momenta = ak.zip({"pt": particles.pt, "eta": particles.eta, "phi": particles.phi, "mass": ak.zeros_like(particles.pt)},
                     with_name="Momentum4D")
    sequence = fastjet.ClusterSequence(momenta, fastjet.JetDefinition(fastjet.antikt_algorithm, 0.5))
    jets = sequence.inclusive_jets(min_pt=20.0)
    return ak.zip({"pt": jets.pt, "eta": jets.eta, "phi": jets.phi}, with_name="Momentum3D")


def test_jet_response_and_resolution(ttbar):
    fastjet = pytest.importorskip("fastjet")
    vector = pytest.importorskip("vector")
    vector.register_awkward()
    out = card.simulate(ttbar, seed=71)
    # GEN jets from GEN particles above the PFC threshold of 1 GeV isolate the detector response.
    gen_jets = anti_kt_jets(out.gen[out.gen.pt > 1.0], fastjet, vector)
    pf_jets = anti_kt_jets(out.pfc, fastjet, vector)

    pairs = ak.cartesian([gen_jets, pf_jets], nested=True)
    delta_r = pairs["0"].deltaR(pairs["1"])
    best = ak.argmin(delta_r, axis=2, keepdims=True)
    matched = ak.to_numpy(ak.fill_none(ak.flatten(ak.flatten(delta_r[best], axis=2)), np.inf)) < 0.2
    pf_pt = ak.to_numpy(ak.fill_none(ak.flatten(ak.flatten(pairs["1"].pt[best], axis=2)), np.nan))
    gen_pt = ak.to_numpy(ak.flatten(gen_jets.pt))
    window = matched & (gen_pt > 50) & (gen_pt < 100)
    response = pf_pt[window] / gen_pt[window]

    assert matched.mean() > 0.85
    # Uncalibrated PF jets respond at about 0.9-0.95 in CMS; accept 0.85-1.0.
    assert 0.85 < np.median(response) < 1.0
    # PF resolution must beat the calorimeter-only 100 %/sqrt(E) (+) 5 % (12.6 % at 75 GeV).
    assert robust_sigma(response) < 0.126
