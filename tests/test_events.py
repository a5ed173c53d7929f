"""Tests of the event model: classes, PDG mapping, event quantities."""

import awkward as ak
import numpy as np
import pytest

from parnassus.core import events as ev


@pytest.mark.parametrize(
    "pdgid, expected",
    [
        (211, 0), (-211, 0), (321, 0), (2212, 0), (-2212, 0), (3112, 0), (3222, 0), (3312, 0), (3334, 0),
        (11, 1), (-11, 1), (13, 2), (-13, 2),
        (2112, 3), (-2112, 3), (130, 3), (310, 3), (3122, 3), (-3122, 3), (3322, 3),
        (22, 4),
        (12, -1), (-14, -1), (16, -1),
    ],
)
def test_pdgid_to_class(pdgid, expected):
    assert ev.pdgid_to_class([pdgid])[0] == expected


@pytest.mark.parametrize(
    "pdgid, three_charge",
    [(211, 3), (-211, -3), (321, 3), (-321, -3), (411, 3), (431, 3), (521, 3), (541, 3), (311, 0),
     (2212, 3), (2112, 0), (3122, 0), (3112, -3), (3334, -3), (4122, 3), (11, -3), (-13, 3),
     (1000010020, 3), (1000020040, 6)],
)
def test_three_charge(pdgid, three_charge):
    assert ev.three_charge([pdgid])[0] == three_charge


def test_particle_class_properties():
    assert [c.is_charged for c in ev.ParticleClass] == [True, True, True, False, False]
    assert ev.ParticleClass(4).label == "photon"
    assert ev.N_CLASSES == 5


def test_wrap_phi_range():
    phi = np.array([-np.pi, np.pi, 3 * np.pi / 2, -3 * np.pi / 2, 7.0, 0.0])
    wrapped = ev.wrap_phi(phi)
    assert np.all(wrapped > -np.pi)
    assert np.all(wrapped <= np.pi)
    assert np.allclose(np.cos(wrapped), np.cos(phi))
    assert np.allclose(np.sin(wrapped), np.sin(phi))
    assert wrapped[0] == pytest.approx(np.pi)


def test_event_quantities_two_particles():
    # Two back-to-back-ish particles: HT = 30, MET = -(10 x^ + 20 y^).
    particles = ev.make_particles(
        ak.Array([[10.0, 20.0], []]),
        ak.Array([[0.0, 1.0], []]),
        ak.Array([[0.0, np.pi / 2], []]),
        ak.Array([[0.0, 0.0], []]),
        ak.Array([[0.0, 0.0], []]),
        ak.Array([[0.0, 0.0], []]),
        ak.Array([[0, 4], []]),
    )
    quantities = ev.event_quantities(particles)
    assert quantities["ht"].tolist() == [30.0, 0.0]
    assert quantities["met_x"][0] == pytest.approx(-10.0, abs=1e-5)
    assert quantities["met_y"][0] == pytest.approx(-20.0, abs=1e-5)
    assert quantities["n"].tolist() == [2, 0]
    assert quantities["n_per_class"].tolist() == [[1, 0, 0, 0, 1], [0, 0, 0, 0, 0]]


def test_make_events_checks_lengths(small_events):
    with pytest.raises(ValueError, match="event numbers"):
        ev.make_events(small_events.gen, None, [1, 2])
    with pytest.raises(ValueError, match="PFC lists"):
        ev.make_events(small_events.gen, small_events.pfc[:3])


def test_sort_by_pt_and_select(small_events):
    ordered = ev.sort_by_pt(small_events.gen)
    assert ak.all(ordered.pt[:, :-1] >= ordered.pt[:, 1:])
    kept = ev.select(small_events.gen, 5.0, 1.0)
    assert ak.all(kept.pt > 5.0)
    assert ak.all(np.abs(kept.eta) < 1.0)


def test_make_particles_dtypes(small_events):
    gen = small_events.gen
    assert str(ak.type(gen.pt)).endswith("float32")
    assert str(ak.type(gen["class"])).endswith("int8")
