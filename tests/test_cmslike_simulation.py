"""The cmslike reference simulation: inputs, reproducibility, pileup, decays and the simulate command."""

from __future__ import annotations

import logging

import awkward as ak
import numpy as np
import pytest

from parnassus.cli import main
from parnassus.core import events as ev
from parnassus.core.io import read_events, write_events
from parnassus.core.plugins import load_detector
from parnassus.detectors.cmslike import PileupLibrary, calorimeter, card, material, samples, tracking
from parnassus.detectors.cmslike import constants as c
from parnassus.detectors.cmslike.particles import from_events
from parnassus.exceptions import InvalidInputError


@pytest.fixture(scope="module")
def ttbar():
    return samples.generate("ttbar", 40, seed=21)


@pytest.fixture(scope="module")
def minbias():
    return samples.generate("minbias", 60, seed=22)


def single(pdgid, pt, eta, n, vz=0.0):
    ones = np.ones(n, dtype=np.int64)

    def jag(value):
        return ak.unflatten(np.full(n, value, dtype=np.float64), ones)

    cls = ak.unflatten(ev.pdgid_to_class(np.full(n, pdgid)), ones)
    gen = ev.make_particles(jag(pt), jag(eta), ak.unflatten(np.linspace(-3, 3, n), ones), jag(0.0), jag(0.0), jag(vz),
                            cls, pdgid=ak.unflatten(np.full(n, pdgid), ones))
    return ev.make_events(gen)


def test_card_registered_with_cms2011_cuts():
    loaded = load_detector("cmslike")
    assert loaded is card
    assert card.has_simulation
    assert (card.gen_selection.pt_min, card.gen_selection.abs_eta_max) == (0.25, 2.7)
    assert (card.pfc_selection.pt_min, card.pfc_selection.abs_eta_max) == (1.0, 2.7)
    assert card.eval_abs_eta_max == 2.5
    assert card.max_particles == 400
    assert set(card.normalisation) >= {"ptrel", "eta", "phi", "vx", "vy", "vz", "ht", "n", "met_x", "met_y"}


def test_simulate_output_conventions(ttbar, minbias):
    out = card.simulate(ttbar, seed=1, pileup=minbias)
    pfc = out.pfc
    assert len(out) == len(ttbar)
    assert ak.all(pfc.pt > 1.0)
    assert ak.all(np.abs(pfc.eta) < 2.7)
    assert ak.all((pfc.phi > -np.pi) & (pfc.phi <= np.pi))
    assert ak.all(pfc.pt[:, :-1] >= pfc.pt[:, 1:])
    neutral = pfc["class"] >= int(ev.ParticleClass.NEUTRAL_HADRON)
    assert ak.all(pfc.vx[neutral] == 0)
    assert ak.all(pfc.vy[neutral] == 0)
    assert ak.all(pfc.vz[neutral] == 0)
    assert set(np.unique(ak.to_numpy(ak.flatten(pfc["class"])))) == {0, 1, 2, 3, 4}
    assert np.array_equal(ak.to_numpy(out.event_number), ak.to_numpy(ttbar.event_number))


def test_simulate_reproducible_from_seed(ttbar, minbias):
    first = card.simulate(ttbar, seed=7, pileup=minbias)
    second = card.simulate(ttbar, seed=7, pileup=minbias)
    other = card.simulate(ttbar, seed=8, pileup=minbias)
    assert ak.to_list(first.pfc) == ak.to_list(second.pfc)
    assert ak.to_list(first.pfc) != ak.to_list(other.pfc)


def test_pileup_only_in_pfc(ttbar, minbias):
    plain = card.simulate(ttbar, seed=3)
    piled = card.simulate(ttbar, seed=3, pileup=minbias, mean_pileup=20.0)
    # GEN is the hard scatter only, with or without pileup.
    assert ak.to_list(plain.gen) == ak.to_list(piled.gen)
    assert ak.to_list(piled.gen) == ak.to_list(card.gen_selection.apply(ttbar.gen))
    # 20 interactions add PFCs, most of them charged tracks from other vertices.
    added = ak.sum(ak.num(piled.pfc)) - ak.sum(ak.num(plain.pfc))
    assert added > 20 * len(ttbar)
    charged = piled.pfc[piled.pfc["class"] == 0]
    far = np.abs(charged.vz - ak.mean(ttbar.gen.vz, axis=1)) > 1.0
    assert ak.sum(far) > 10 * len(ttbar)


def test_pileup_poisson_mean(minbias):
    library = PileupLibrary(minbias)
    _, counts = library.overlay(4000, 6.35, np.random.default_rng(0))
    assert counts.mean() == pytest.approx(6.35, abs=0.15)
    assert counts.var() == pytest.approx(6.35, rel=0.1)


def test_pileup_library_empty_rejected():
    empty = ev.make_events(ev.make_particles(*[ak.Array([[]] * 3)] * 6, ak.values_astype(ak.Array([[]] * 3), np.int8)))
    with pytest.raises(InvalidInputError, match="no particles"):
        PileupLibrary(empty, source="empty.root")
    with pytest.raises(InvalidInputError, match="no particles"):
        PileupLibrary(empty[:0], source="none.root")


def test_gen_missing_fields_rejected(ttbar):
    broken = ak.zip({"gen": ak.zip({"pt": ttbar.gen.pt, "eta": ttbar.gen.eta}), "event_number": ttbar.event_number}, depth_limit=1)
    with pytest.raises(InvalidInputError, match="phi"):
        card.simulate(broken, seed=1)
    with pytest.raises(InvalidInputError, match="'gen'"):
        card.simulate(ak.zip({"event_number": ttbar.event_number}), seed=1)


def test_gen_outside_cuts_removed_and_logged(caplog):
    events = single(211, 0.1, 0.0, 5)
    caplog.set_level(logging.INFO, logger="parnassus.detectors.cmslike")
    out = card.simulate(events, seed=1)
    assert ak.sum(ak.num(out.gen)) == 0
    assert "removed 5 GEN particles" in caplog.text


def test_simulate_empty_inputs(ttbar, minbias):
    none = card.simulate(ttbar[:0], seed=1, pileup=minbias)
    assert len(none) == 0
    empty_events = ev.make_events(ttbar.gen[:3][ttbar.gen[:3].pt > 1e9])
    piled = card.simulate(empty_events, seed=1, pileup=minbias, mean_pileup=10.0)
    assert ak.num(piled.gen).tolist() == [0, 0, 0]
    # Pileup alone still makes PFCs.
    assert ak.sum(ak.num(piled.pfc)) > 0


def test_class_only_gen_simulated():
    events = single(211, 20.0, 0.3, 200)
    gen = events.gen
    without_pdgid = ev.make_events(ev.make_particles(gen.pt, gen.eta, gen.phi, gen.vx, gen.vy, gen.vz, gen["class"]))
    out = card.simulate(without_pdgid, seed=2)
    leading = ak.to_numpy(ak.fill_none(ak.firsts(out.pfc["class"]), -1))
    assert np.mean(leading == 0) > 0.85


def test_k0s_decays_with_lifetime():
    n, pt = 4000, 5.0
    table = from_events(single(310, pt, 0.0, n).gen, np.random.default_rng(0))
    decayed = material.decay_long_lived(table, np.random.default_rng(1))
    charged = decayed.charge != 0
    # Daughters start at the decay vertex: a transverse radius with mean beta gamma c tau.
    radius = np.hypot(decayed.vx, decayed.vy)[charged]
    decay_length = pt / c.MASS[310] * c.CTAU_CM[310]
    inside = 1 - np.exp(-c.ECAL_RADIUS_CM / decay_length)
    expected_mean = decay_length - c.ECAL_RADIUS_CM * np.exp(-c.ECAL_RADIUS_CM / decay_length) / inside
    assert radius.mean() == pytest.approx(expected_mean, rel=0.06)
    # pi+ pi- in 69.2 % of the decays, pi0 pi0 (four photons) otherwise.
    n_decays = inside * n
    assert charged.sum() / 2 / n_decays == pytest.approx(c.BR_K0S_PIPI, abs=0.03)
    assert np.all(np.isin(decayed.pdgid[charged], [211, -211]))


@pytest.mark.parametrize("pdgid", [3312, -3334, 3222])
def test_hyperon_decay_chain_conserves_numbers(pdgid):
    n = 2000
    table = from_events(single(pdgid, 2.0, 0.5, n).gen, np.random.default_rng(0))
    decayed = material.decay_long_lived(table, np.random.default_rng(1))
    baryon = np.isin(np.abs(decayed.pdgid), [2212, 2112, 3122, 3222, 3112, 3322, 3312, 3334])
    baryon_number = np.bincount(decayed.event, weights=np.sign(decayed.pdgid) * baryon, minlength=n)
    charge = np.bincount(decayed.event, weights=decayed.charge, minlength=n)
    assert np.all(baryon_number == np.sign(pdgid))
    assert np.all(charge == ev.three_charge([pdgid])[0] // 3)
    # Most chains end in nucleons and pions before the ECAL (c tau of a few cm).
    nucleons = np.isin(np.abs(decayed.pdgid), [2212, 2112])
    assert nucleons.sum() > 0.8 * n
    assert not np.any(decayed.pdgid == 111)


def test_pion_decay_in_flight_rate():
    n, pt = 20000, 1.0
    table = from_events(single(211, pt, 0.0, n).gen, np.random.default_rng(0))
    table = material.decay_in_flight(table, np.random.default_rng(1))
    decayed = (table.origin == 2).mean()
    expected = 1 - np.exp(-c.ECAL_RADIUS_CM / (c.CTAU_CM[211] * pt / c.MASS[211]))
    # About 2.3 % of 1 GeV pions decay before the ECAL.
    assert decayed == pytest.approx(expected, abs=0.004)
    muons = np.abs(table.pdgid) == 13
    assert 0 < muons.sum() < (table.origin == 2).sum()


def test_looper_reaches_calorimeter_only_forward():
    # 2R = 2 x 87.8 cm x 0.5 GeV < 129 cm: a 0.5 GeV pion misses the ECAL barrel. Centrally it
    # curls inside the tracker (no deposit); at eta = 2 it reaches the endcap within one turn.
    eta = np.array([0.0, 0.3, 1.0, 2.0])
    n = len(eta)
    reached, eta_position, _ = tracking.propagate(np.full(n, 0.5), eta, np.zeros(n), np.zeros(n), np.zeros(n),
                                                  np.zeros(n), np.ones(n, dtype=np.int8), c.ECAL_RADIUS_CM, c.ECAL_ENDCAP_Z_CM)
    assert reached.tolist() == [False, False, False, True]
    assert eta_position[3] > 2.0
    # A 2 GeV pion reaches the barrel, bent by asin(129 / (2 x 175.6)) = 0.376 rad in position angle.
    reached, eta_position, phi_position = tracking.propagate(
        np.array([2.0]), np.array([0.0]), np.array([0.0]), np.zeros(1), np.zeros(1), np.zeros(1),
        np.array([1], dtype=np.int8), c.ECAL_RADIUS_CM, c.ECAL_ENDCAP_Z_CM)
    assert reached[0]
    assert phi_position[0] == pytest.approx(-np.arcsin(c.ECAL_RADIUS_CM / (2 * c.HELIX_RADIUS_CM_PER_GEV * 2.0)), rel=1e-6)


@pytest.mark.parametrize("grid_name", ["ECAL", "HCAL"])
def test_shower_sharing_conserves_energy(grid_name):
    grid = getattr(calorimeter, grid_name)
    rng = np.random.default_rng(3)
    n = 2000
    eta = rng.uniform(-2.9, 2.9, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    energy = rng.uniform(1.0, 50.0, n)
    event, cell, shared = calorimeter.share_deposits(grid, np.arange(n), eta, phi, energy, np.full(n, 0.05))
    # Entries below 1 MeV are dropped, at most 9 per deposit.
    assert np.sum(shared) == pytest.approx(np.sum(energy), abs=9e-3 * n)
    ring = cell // grid.n_phi
    # Cells of the 10-degree HCAL rings (|eta| > 1.740) sit on even phi indices only.
    assert np.all((cell % grid.n_phi) % grid.phi_stride[ring] == 0)
    if grid_name == "HCAL":
        assert np.any(grid.phi_stride[ring] == 2)


def test_hcal_noise_rarely_makes_neutral_hadrons():
    events = single(13, 0.3, 0.0, 300)
    out = card.simulate(events, seed=4)
    # Below-threshold muons leave nothing: what remains is calorimeter noise, well below one
    # neutral candidate per event.
    neutral = out.pfc["class"] >= int(ev.ParticleClass.NEUTRAL_HADRON)
    assert ak.sum(neutral) < 0.3 * len(events)


def test_simulate_command_writes_gen_and_pfc(tmp_path, ttbar, minbias):
    gen_path = tmp_path / "gen.root"
    minbias_path = tmp_path / "minbias.root"
    out_path = tmp_path / "full.root"
    write_events(ev.make_events(ttbar.gen, event_number=ttbar.event_number), gen_path)
    write_events(minbias, minbias_path)
    argv = ["simulate", "--detector", "cmslike", "-i", str(gen_path), "--pileup", str(minbias_path),
            "--seed", "5", "--step-size", "15", "-o", str(out_path)]
    assert main(argv) == 0
    events = read_events(out_path, require_pfc=True)
    assert len(events) == len(ttbar)
    assert ak.all(events.pfc.pt > 1.0)
    assert ak.sum(ak.num(events.pfc)) > 50 * len(ttbar)

    # The same seed and step size give the same file content.
    again = tmp_path / "again.root"
    assert main(argv[:-1] + [str(again)]) == 0
    assert ak.to_list(read_events(again).pfc) == ak.to_list(events.pfc)


def test_simulate_command_bad_inputs(tmp_path, ttbar):
    gen_path = tmp_path / "gen.parquet"
    write_events(ev.make_events(ttbar.gen[:3]), gen_path)
    empty_path = tmp_path / "empty.parquet"
    write_events(ev.make_events(ttbar.gen[:3][ttbar.gen[:3].pt < 0]), empty_path)
    out_path = tmp_path / "out.parquet"
    assert main(["simulate", "-i", str(gen_path), "--pileup", str(empty_path), "-o", str(out_path)]) == 1
    assert main(["simulate", "-i", str(gen_path), "--pileup", str(tmp_path / "missing.root"), "-o", str(out_path)]) != 0
    assert main(["simulate", "-i", str(gen_path), "--step-size", "0", "-o", str(out_path)]) == 1
    assert main(["simulate", "--detector", "cms2011", "-i", str(gen_path), "-o", str(out_path)]) == 1
    assert not out_path.exists()
