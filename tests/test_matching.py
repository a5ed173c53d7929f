"""Tests of Delta R and the Hungarian GEN-PFC matching on hand-made events."""

import awkward as ak
import numpy as np
import pytest

from parnassus.core.matching import delta_phi, delta_r, match_event, match_particles


def objects(*events):
    """Jagged eta/phi records from lists of (eta, phi) tuples, one list per event."""
    eta = [[e for e, _ in event] for event in events]
    phi = [[p for _, p in event] for event in events]
    return ak.zip({"eta": ak.Array(eta), "phi": ak.Array(phi)})


def pairs(matching, event):
    return list(zip(matching.gen_index[event].tolist(), matching.pfc_index[event].tolist()))


def test_delta_r_simple():
    assert delta_r(0.0, 0.0, 0.3, 0.4) == pytest.approx(0.5)


def test_delta_r_wraps_phi():
    # 3.1 and -3.1 rad are 2 pi - 6.2 = 0.0832 rad apart across the +-pi boundary.
    assert delta_r(0.0, 3.1, 0.0, -3.1) == pytest.approx(2 * np.pi - 6.2)
    assert delta_r(1.0, -3.1, 1.0, 3.1) == pytest.approx(2 * np.pi - 6.2)
    assert delta_phi(np.pi - 0.1, -np.pi + 0.1) == pytest.approx(-0.2)


def test_delta_r_broadcasts_awkward():
    eta = ak.Array([[0.0, 1.0], [2.0]])
    phi = ak.Array([[0.0, 0.0], [3.0]])
    result = delta_r(eta, phi, 0.0, 0.0)
    assert ak.num(result).tolist() == [2, 1]
    assert ak.flatten(result).tolist() == pytest.approx([0.0, 1.0, np.hypot(2.0, 3.0)])


def test_matching_prefers_global_optimum():
    # Greedy nearest-neighbour would give gen 0 -> pfc 0 (0.1) and leave gen 1 with
    # pfc 1 at 0.5; the optimal assignment crosses: 0 -> 1 (0.2), 1 -> 0 (0.15).
    gen = objects([(0.0, 0.0), (0.25, 0.0)])
    pfc = objects([(0.1, 0.0), (-0.2, 0.0)])
    # Cost of (0->0, 1->1): 0.1 + 0.45 = 0.55; cost of (0->1, 1->0): 0.2 + 0.15 = 0.35.
    matching = match_particles(gen, pfc, max_delta_r=0.6)
    assert pairs(matching, 0) == [(0, 1), (1, 0)]
    assert matching.delta_r[0].tolist() == pytest.approx([0.2, 0.15])


def test_matching_across_phi_boundary():
    gen = objects([(0.0, 3.1), (0.0, 0.0)])
    pfc = objects([(0.0, 0.0), (0.0, -3.1)])
    matching = match_particles(gen, pfc, max_delta_r=0.2)
    assert pairs(matching, 0) == [(0, 1), (1, 0)]
    assert matching.delta_r[0][0] == pytest.approx(2 * np.pi - 6.2)


def test_matching_forbids_far_pairs():
    gen = objects([(0.0, 0.0), (2.0, 1.0)])
    pfc = objects([(0.05, 0.0), (2.0, 1.5)])
    matching = match_particles(gen, pfc, max_delta_r=0.2)
    # Gen 1 and pfc 1 are 0.5 apart: forbidden, so only one pair survives.
    assert pairs(matching, 0) == [(0, 0)]
    assert matching.gen_matched().tolist() == [[True, False]]
    assert matching.pfc_matched().tolist() == [[True, False]]


def test_matching_keeps_allowed_pair_over_smaller_sum():
    # gen 0 is closest to pfc 0, but gen 1 can only reach pfc 0; maximising the number
    # of allowed pairs means gen 0 -> pfc 1 (0.3) and gen 1 -> pfc 0 (0.35).
    gen = objects([(0.0, 0.0), (0.35, 0.0)])
    pfc = objects([(0.0, 0.0), (-0.3, 0.0)])
    matching = match_particles(gen, pfc, max_delta_r=0.4)
    assert pairs(matching, 0) == [(0, 1), (1, 0)]


def test_matching_unequal_counts():
    gen = objects([(0.0, 0.0), (1.0, 1.0), (-1.0, -1.0)], [(0.0, 0.0)])
    pfc = objects([(1.02, 1.0)], [(0.0, 0.01), (0.0, 0.3), (0.5, 0.5)])
    matching = match_particles(gen, pfc, max_delta_r=0.6)
    assert pairs(matching, 0) == [(1, 0)]
    assert pairs(matching, 1) == [(0, 0)]
    assert matching.n_pairs.tolist() == [1, 1]
    assert matching.n_gen.tolist() == [3, 1]
    assert matching.n_pfc.tolist() == [1, 3]
    assert matching.pfc_matched().tolist() == [[True], [True, False, False]]


def test_matching_empty_events():
    gen = objects([], [(0.0, 0.0)], [], [(1.0, 1.0)])
    pfc = objects([(0.0, 0.0)], [], [], [(1.0, 1.1)])
    matching = match_particles(gen, pfc, max_delta_r=0.6)
    assert len(matching) == 4
    assert matching.n_pairs.tolist() == [0, 0, 0, 1]
    assert pairs(matching, 3) == [(0, 0)]
    assert matching.gen_matched().tolist() == [[], [False], [], [True]]


def test_matching_is_a_permutation_on_random_events():
    rng = np.random.default_rng(3)
    gen_eta = rng.uniform(-2, 2, 40)
    gen_phi = rng.uniform(-np.pi, np.pi, 40)
    order = rng.permutation(40)
    pfc_eta = gen_eta[order] + rng.normal(0, 0.01, 40)
    pfc_phi = gen_phi[order] + rng.normal(0, 0.01, 40)
    gen_index, pfc_index, distance = match_event(gen_eta, gen_phi, pfc_eta, pfc_phi, 0.6)
    # Every GEN particle finds the PFC it was made from: pfc k came from gen order[k].
    assert len(gen_index) == 40
    np.testing.assert_array_equal(order[pfc_index], gen_index)
    assert np.all(distance < 0.06)


def test_matching_rejects_bad_input():
    with pytest.raises(ValueError, match="2 GEN events with 1 PFC"):
        match_particles(objects([], []), objects([]), 0.5)
    with pytest.raises(ValueError, match="positive"):
        match_particles(objects([]), objects([]), 0.0)
