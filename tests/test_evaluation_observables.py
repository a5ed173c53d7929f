"""Tests of the evaluation observables, the acceptance, event alignment and the pipeline."""

import awkward as ak
import numpy as np
import pytest

from parnassus.core import events as ev
from parnassus.core.plugins import hookimpl, plugin_manager
from parnassus.evaluation.alignment import align
from parnassus.evaluation.observables import (
    add_extra_observables,
    apply_acceptance,
    gen_level,
    residual,
    sample_values,
)
from parnassus.evaluation.pipeline import Settings, evaluate_process
from parnassus.evaluation.synthetic import ToyDetector, toy_events
from parnassus.exceptions import InvalidInputError


def particles(*events):
    """Particle records from lists of (pt, eta, phi, class) tuples, one list per event."""
    def column(i):
        return ak.Array([[p[i] for p in event] for event in events])

    zeros = ak.values_astype(column(0) * 0, np.float32)
    return ev.make_particles(column(0), column(1), column(2), zeros, zeros, zeros, ak.values_astype(column(3), np.int8))


def test_residual_conventions():
    assert residual("n", [10, 12], [11, 12]).tolist() == [-1.0, 0.0]
    assert residual("ht", [110.0, 5.0], [100.0, 0.0])[0] == pytest.approx(0.1)
    assert np.isnan(residual("ht", [110.0, 5.0], [100.0, 0.0])[1])
    assert residual("eta", [0.5], [0.4])[0] == pytest.approx(0.1)
    assert residual("phi", [-3.1], [3.1])[0] == pytest.approx(2 * np.pi - 6.2)


def test_acceptance_applied_to_gen_and_pfc():
    gen = particles([(10.0, 0.0, 0.0, 0), (50.0, 2.6, 1.0, 0), (20.0, -2.49, -1.0, 4)])
    pfc = particles([(9.0, 0.01, 0.0, 0), (60.0, -2.55, 1.0, 3), (19.0, -2.49, -1.0, 4)])
    accepted = apply_acceptance(ev.make_events(gen, pfc), 2.5)
    assert accepted.gen.pt.tolist() == [[10.0, 20.0]]
    assert accepted.pfc.pt.tolist() == [[9.0, 19.0]]

    values = sample_values(accepted.pfc, gen_level(accepted.gen, jet_pt_min=5.0), jet_pt_min=5.0)
    assert values.data["event/ht"].tolist() == [28.0]
    assert values.data["event_residual/ht"][0] == pytest.approx((28.0 - 30.0) / 30.0)
    assert values.data["event/n"].tolist() == [2.0]
    assert values.data["event_residual/n"].tolist() == [0.0]
    assert values.data["event/n_jets"].tolist() == [2.0]
    assert np.all(np.abs(values.data["particle/all/eta"]) < 2.5)


def test_matching_confusion_and_unmatched():
    # GEN: a photon and a charged hadron; PFC: the photon seen as a neutral hadron,
    # the charged hadron, and a fake 1.5 GeV PFC far from any GEN particle.
    gen = particles([(20.0, 0.0, 0.0, 4), (15.0, 1.0, 1.0, 0)])
    pfc = particles([(18.0, 0.02, 0.0, 3), (16.5, 1.0, 1.01, 0), (1.5, -2.0, -2.0, 0)])
    values = sample_values(pfc, gen_level(gen, jet_pt_min=100.0), jet_pt_min=100.0)

    confusion = values.confusion["all"]
    assert confusion.sum() == 2
    assert confusion[4, 3] == 1
    assert confusion[0, 0] == 1
    assert sorted(values.data["particle_residual/all/pt"].tolist()) == pytest.approx([-0.1, 0.1])
    assert values.data["unmatched/n"].tolist() == [1.0]
    assert values.data["unmatched/pt"].tolist() == [1.5]
    assert values.class_counts["all"].tolist() == [2, 0, 0, 1, 0]
    assert values.summary["particle_match_efficiency/all"] == 1.0
    # No jet above 100 GeV: everything is outside jets.
    assert "particle/in_jets/pt" in values.data
    assert len(values.data["particle/in_jets/pt"]) == 0
    assert len(values.data["particle/out_of_jets/pt"]) == 3


def test_particle_sets_split_by_jets():
    jet = [(10.0 + i, 0.05 * i, 0.0, 0) for i in range(5)]
    soft = [(1.0, -2.0, 2.0, 4)]
    gen = particles(jet + soft)
    pfc = particles(jet + soft)
    values = sample_values(pfc, gen_level(gen, jet_pt_min=20.0), jet_pt_min=20.0)
    assert len(values.data["particle/in_jets/pt"]) == 5
    assert values.data["particle/out_of_jets/pt"].tolist() == [1.0]
    assert values.confusion["in_jets"].sum() == 5
    assert values.confusion["out_of_jets"][4, 4] == 1
    assert values.data["jet_residual/pt"].tolist() == [0.0]
    assert values.data["jet_residual/c2"].tolist() == [0.0]


def test_extra_observables_from_hook():
    class Plugin:
        @hookimpl
        def parnassus_observables(self, events, card):
            return {"max_abs_eta": ak.to_numpy(ak.fill_none(ak.max(np.abs(events.pfc.eta), axis=1), 0.0))}

    events = apply_acceptance(toy_events(20), 2.5)
    manager = plugin_manager()
    plugin = Plugin()
    manager.register(plugin, name="test-extra-observable")
    try:
        values = sample_values(events.pfc, gen_level(events.gen))
        add_extra_observables(values, events, card=None)
    finally:
        manager.unregister(plugin)
    assert len(values.data["extra/max_abs_eta"]) == 20
    assert np.all(values.data["extra/max_abs_eta"] < 2.5)


def test_align_reorders_by_event_number():
    reference = toy_events(6)
    sample = reference[[3, 0, 5, 1, 4, 2]]
    aligned = align(reference, sample, "ref.root", "sample 'flow'")
    assert aligned.event_number.tolist() == reference.event_number.tolist()
    assert aligned.gen.pt.tolist() == reference.gen.pt.tolist()


def test_align_names_missing_and_extra_events():
    reference = toy_events(10)
    other = toy_events(12)
    sample = ak.concatenate([other[2:10], other[10:12]])
    sample = ev.make_events(sample.gen, sample.pfc, np.r_[np.arange(1002, 1010), [5000, 5001]])
    with pytest.raises(InvalidInputError) as error:
        align(reference, sample, "ref.root", "sample 'flow' (a.root)")
    message = str(error.value)
    assert "sample 'flow' (a.root) lacks 2 events of the reference (event numbers 1000, 1001)" in message
    assert "has 2 events that are not in the reference (event numbers 5000, 5001)" in message


def test_align_rejects_different_gen():
    reference = toy_events(5, gen_seed=0)
    different = toy_events(5, gen_seed=1)
    with pytest.raises(InvalidInputError, match="event 1000 has"):
        align(reference, different, "ref.root", "sample 'flow'")

    # Same counts, one particle's pT changed in event 1003.
    pt = ak.to_list(reference.gen.pt)
    pt[3][0] *= 1.5
    changed = ev.make_events(
        ev.make_particles(pt, reference.gen.eta, reference.gen.phi, reference.gen.vx, reference.gen.vy, reference.gen.vz, reference.gen["class"]),
        reference.pfc,
        reference.event_number,
    )
    with pytest.raises(InvalidInputError, match="event 1003 has a GEN scalar pT sum"):
        align(reference, changed, "ref.root", "sample 'flow'")


def test_align_rejects_duplicate_event_numbers():
    reference = toy_events(4)
    duplicated = ev.make_events(reference.gen, reference.pfc, [1000, 1001, 1001, 1003])
    with pytest.raises(InvalidInputError, match="more than once"):
        align(reference, duplicated, "ref.root", "sample 'flow'")


@pytest.fixture(scope="module")
def toy_process():
    reference = toy_events(250, gen_seed=0, pfc_seed=1)
    samples = {
        "itself": reference,
        "independent": toy_events(250, gen_seed=0, pfc_seed=2),
        "scaled": toy_events(250, gen_seed=0, pfc_seed=3, detector=ToyDetector(pt_scale=1.1)),
    }
    return evaluate_process("ttbar", reference, samples, Settings(n_bootstrap=5))


def test_sample_against_itself_within_floor(toy_process):
    distances = toy_process.comparison.distances["itself"]
    floors = toy_process.comparison.floors
    for key, distance in distances.items():
        assert distance.value == 0.0, key
        assert distance.value <= floors[key].value, key


def test_independent_sample_scores_below_scaled(toy_process):
    comparison = toy_process.comparison
    assert comparison.score("independent") < 1.0
    assert comparison.score("scaled") > comparison.score("independent")
    # A 10 % pT scale moves the relative HT residual by about 0.1: many floors away.
    assert comparison.distances["scaled"]["event_residual/ht"].ratio > 5.0
    assert comparison.distances["scaled"]["event_residual/ht"].value == pytest.approx(0.1, abs=0.03)


def test_pipeline_matching_efficiencies(toy_process):
    summary = toy_process.samples["independent"].summary
    # The toy detector keeps 92 % of GEN particles; PFC cut and acceptance lower the matched fraction.
    assert 0.3 < summary["particle_match_efficiency/all"] < 0.95
    assert summary["jet_match_efficiency"] > 0.8
    assert toy_process.samples["itself"].summary == toy_process.reference.summary
