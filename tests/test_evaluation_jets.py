"""Tests of anti-kt clustering, jet matching and C2/D2 with the real fastjet."""

import awkward as ak
import numpy as np
import pytest

from parnassus.core import events as ev
from parnassus.evaluation.jets import (
    cluster_jets,
    leading_jet_constituents,
    match_jets,
    substructure,
    substructure_numpy,
)


def particles(*events):
    """Particle records from lists of (pt, eta, phi, class) tuples, one list per event."""
    def column(i):
        return ak.Array([[p[i] for p in event] for event in events])

    zeros = ak.values_astype(column(0) * 0, np.float32)
    return ev.make_particles(column(0), column(1), column(2), zeros, zeros, zeros, ak.values_astype(column(3), np.int8))


def spray(pt, eta, phi, n=6, width=0.05, seed=0):
    """n particles summing to pt GeV, spread by `width` around (eta, phi)."""
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.ones(n)) * pt
    return [(float(s), float(eta + width * rng.standard_normal()), float(ev.wrap_phi(phi + width * rng.standard_normal())), 0) for s in shares]


# Three particles with pT = 1, 2, 3 GeV at pairwise Delta R 0.3 (1-2), 0.4 (1-3), 0.5 (2-3).
# Momentum fractions z = 1/6, 2/6, 3/6.
#   e2 = z1 z2 0.3 + z1 z3 0.4 + z2 z3 0.5 = (2 * 0.3 + 3 * 0.4 + 6 * 0.5) / 36 = 4.8 / 36
#   e3 = z1 z2 z3 (0.3 * 0.4 * 0.5) = (6 / 216) * 0.06 = 0.36 / 216
#   C2 = e3 / e2^2 = (0.36 / 216) / (4.8 / 36)^2 = 0.09375
#   D2 = e3 / e2^3 = C2 / e2 = 0.09375 / (4.8 / 36) = 0.703125
E2 = (2 * 0.3 + 3 * 0.4 + 6 * 0.5) / 36
E3 = (6 / 216) * (0.3 * 0.4 * 0.5)
C2_BY_HAND = E3 / E2**2
D2_BY_HAND = E3 / E2**3


def test_hand_values_arithmetic():
    assert C2_BY_HAND == pytest.approx(0.09375)
    assert D2_BY_HAND == pytest.approx(0.703125)


@pytest.mark.parametrize("phi0", [0.0, np.pi - 0.1])
def test_c2_d2_three_particles_fastjet(phi0):
    # With phi0 = pi - 0.1 the third particle sits across the +-pi boundary.
    triangle = [(1.0, 0.0, phi0, 0), (2.0, 0.3, phi0, 0), (3.0, 0.0, float(ev.wrap_phi(phi0 + 0.4)), 0)]
    result = substructure(particles(triangle))
    assert result["c2"][0] == pytest.approx(C2_BY_HAND, rel=1e-5)
    assert result["d2"][0] == pytest.approx(D2_BY_HAND, rel=1e-5)


def test_c2_d2_three_particles_numpy():
    c2, d2 = substructure_numpy([1.0, 2.0, 3.0], [0.0, 0.3, 0.0], [3.0, 3.0, ev.wrap_phi(3.4)])
    assert c2 == pytest.approx(C2_BY_HAND, rel=1e-9)
    assert d2 == pytest.approx(D2_BY_HAND, rel=1e-9)


def test_c2_d2_of_clustered_leading_jet():
    # The triangle is one anti-kt R = 0.5 jet; a far 5 GeV particle is a second jet.
    event = [(3.0, 0.0, 0.4, 0), (2.0, 0.3, 0.0, 0), (1.0, 0.0, 0.0, 0), (5.0, -2.0, -2.0, 0)]
    parts = particles(event)
    jets = cluster_jets(parts, pt_min=0.5)
    assert jets.n_jets.tolist() == [2]
    assert jets.pt[0][0] > jets.pt[0][1]

    leading = leading_jet_constituents(parts, jets)
    assert sorted(leading.pt[0].tolist()) == [1.0, 2.0, 3.0]
    result = substructure(leading)
    assert result["c2"][0] == pytest.approx(C2_BY_HAND, rel=1e-5)
    assert result["d2"][0] == pytest.approx(D2_BY_HAND, rel=1e-5)


def test_substructure_fastjet_agrees_with_numpy():
    events = [spray(40.0, 0.5 * i - 1.0, 0.7 * i, n=4 + 3 * i, width=0.12, seed=i) for i in range(6)]
    parts = particles(*events)
    result = substructure(parts)
    for i, event in enumerate(events):
        pt, eta, phi, _ = np.array(event).T
        c2, d2 = substructure_numpy(pt, eta, phi)
        assert result["c2"][i] == pytest.approx(c2, rel=1e-4)
        assert result["d2"][i] == pytest.approx(d2, rel=1e-4)


def test_substructure_small_jets():
    parts = particles([(5.0, 0.0, 0.0, 0)], [], [(3.0, 0.0, 0.0, 0), (2.0, 0.1, 0.0, 0)])
    result = substructure(parts)
    assert np.isnan(result["c2"][0])
    assert np.isnan(result["c2"][1])
    assert result["c2"][2] == 0.0
    assert result["d2"][2] == 0.0


def test_cluster_jets_sorted_with_constituents():
    event = spray(30.0, 1.0, 2.0, seed=1) + spray(60.0, -1.0, -2.0, seed=2) + [(0.5, 0.0, 0.0, 0)]
    parts = particles(event, [])
    jets = cluster_jets(parts, pt_min=10.0)
    assert jets.n_jets.tolist() == [2, 0]
    assert jets.pt[0].tolist() == pytest.approx([60.0, 30.0], rel=0.01)
    assert jets.eta[0][0] == pytest.approx(-1.0, abs=0.1)
    assert jets.phi[0][1] == pytest.approx(2.0, abs=0.1)
    assert jets.n_constituents[0].tolist() == [6, 6]

    in_jets = jets.in_jets()
    assert in_jets[0].tolist() == [True] * 12 + [False]
    assert in_jets[1].tolist() == []


def test_cluster_jets_pt_min():
    parts = particles(spray(30.0, 1.0, 2.0, seed=1) + spray(8.0, -1.0, -2.0, seed=2))
    assert cluster_jets(parts, pt_min=10.0).n_jets.tolist() == [1]
    assert cluster_jets(parts, pt_min=5.0).n_jets.tolist() == [2]


def test_jet_matching_forbids_delta_r_above_0p2():
    gen = particles(spray(50.0, 0.0, 0.0, width=0.0), spray(50.0, 0.0, 0.0, width=0.0), spray(50.0, 0.0, 3.1, width=0.0))
    # PFC jets 0.15 away (allowed), 0.25 away (forbidden), and 0.15 away across phi = +-pi.
    pfc = particles(spray(45.0, 0.15, 0.0, width=0.0), spray(45.0, 0.25, 0.0, width=0.0), spray(45.0, 0.0, float(ev.wrap_phi(3.1 + 0.15)), width=0.0))
    gen_jets = cluster_jets(gen)
    pfc_jets = cluster_jets(pfc)
    matching = match_jets(gen_jets, pfc_jets)
    assert matching.n_pairs.tolist() == [1, 0, 1]
    assert matching.delta_r[0][0] == pytest.approx(0.15, abs=1e-4)
    assert matching.delta_r[2][0] == pytest.approx(0.15, abs=1e-4)
