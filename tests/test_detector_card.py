"""Tests of DetectorCard: selections, truncation, finalisation, weights, cms2011."""

import awkward as ak
import numpy as np
import pytest

from parnassus.core import events as ev
from parnassus.core.detector import DetectorCard, Selection, fit_normalisation
from parnassus.core.plugins import load_detector
from parnassus.exceptions import NoWeightsError

from conftest import random_particles


def test_preprocess_applies_cuts_and_sorts(small_events):
    card = DetectorCard("test", "test card")
    prepared, report = card.preprocess(small_events)
    assert ak.all(prepared.gen.pt > 0.25)
    assert ak.all(np.abs(prepared.gen.eta) < 2.7)
    assert ak.all(prepared.pfc.pt > 1.0)
    assert ak.all(prepared.gen.pt[:, :-1] >= prepared.gen.pt[:, 1:])
    assert prepared.event_number.tolist() == small_events.event_number.tolist()
    removed = int(ak.sum(ak.num(small_events.gen)) - ak.sum(ak.num(prepared.gen)))
    assert report.gen_removed_by_cuts == removed


def test_preprocess_truncates_to_hardest(rng):
    gen = random_particles(rng, [30, 5, 12])
    events = ev.make_events(gen)
    card = DetectorCard("test", "test card", max_particles=10)
    prepared, report = card.preprocess(events)
    assert ak.num(prepared.gen).tolist() == [10, 5, 10]
    assert report.gen_truncated_events == 2
    hardest = np.sort(ak.to_numpy(gen.pt[0]))[::-1][:10]
    assert np.allclose(ak.to_numpy(prepared.gen.pt[0]), hardest)


def test_preprocess_counts_empty_events(rng):
    gen = random_particles(rng, [3, 0, 2])
    _, report = DetectorCard("test", "test card").preprocess(ev.make_events(gen))
    assert report.empty_gen_events == 1
    assert report.events == 3


def test_finalise_pfc_zeroes_neutral_vertices(small_events):
    card = DetectorCard("test", "test card")
    pfc = card.finalise_pfc(small_events.pfc)
    neutral = pfc["class"] >= 3
    assert ak.all(pfc.vz[neutral] == 0)
    charged = ~neutral
    assert ak.all(pfc.vz[charged] == small_events.pfc.vz[charged])


def test_fit_normalisation_matches_numpy(small_events):
    table = fit_normalisation(small_events)
    eta = np.concatenate([ak.to_numpy(ak.flatten(small_events.gen.eta)), ak.to_numpy(ak.flatten(small_events.pfc.eta))])
    assert table["eta"].mean == pytest.approx(eta.mean(), rel=1e-5)
    assert table["eta"].std == pytest.approx(eta.std(), rel=1e-5)
    x = np.array([1.0, 2.0])
    assert np.allclose(table["ht"].inverse(table["ht"].forward(x)), x)


def test_cms2011_card_constants():
    card = load_detector("cms2011")
    assert card.gen_selection == Selection(0.25, 2.7)
    assert card.pfc_selection == Selection(1.0, 2.7)
    assert card.eval_abs_eta_max == 2.5
    assert card.max_particles == 400
    assert card.normalisation["ht"].mean == pytest.approx(780.979)
    assert card.normalisation["phi"].std == pytest.approx(1.814)


def test_cms2011_without_weights_says_how_to_train():
    card = load_detector("cms2011")
    assert card.weights("flow-matching") is None
    with pytest.raises(NoWeightsError, match="15083495") as info:
        card.require_weights("diffusion")
    assert "parnassus train --detector cms2011 --backend diffusion" in str(info.value)
    assert "BACKEND" not in str(info.value)
