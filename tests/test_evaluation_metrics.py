"""Tests of the 1-Wasserstein distances, bootstrap uncertainties, statistical floor, score and tables."""

import csv
import json

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from parnassus.evaluation.metrics import (
    BinnedSupport,
    bootstrap_distance,
    compare,
    markdown_table,
    score,
    statistical_floor,
    wasserstein,
    write_tables,
)
from parnassus.evaluation.observables import Values


def per_event_values(values):
    result = Values(n_events=len(values))
    result.add_per_event("event/x", values)
    return result


def test_w1_of_shift_is_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, 5000)
    for shift in (0.1, 0.5, 2.0):
        assert wasserstein(x + shift, x) == pytest.approx(shift, rel=1e-12)


def test_w1_empty_is_nan():
    assert np.isnan(wasserstein(np.empty(0), np.ones(3)))


def test_binned_support_matches_scipy():
    rng = np.random.default_rng(2)
    u = rng.exponential(1.0, 3000)
    v = rng.normal(1.0, 0.5, 2000)
    u_events = rng.integers(0, 500, 3000)
    v_events = rng.integers(0, 500, 2000)
    support = BinnedSupport(u, u_events, v, v_events, 500)

    # Unit draws reproduce the unweighted W1; a random draw reproduces the weighted W1.
    draws = np.vstack([np.ones(500), rng.integers(0, 3, 500)]).astype(float)
    distances = support.distances(draws)
    assert distances[0] == pytest.approx(wasserstein_distance(u, v), rel=0.01)
    expected = wasserstein_distance(u, v, draws[1][u_events], draws[1][v_events])
    assert distances[1] == pytest.approx(expected, rel=0.01)


def test_binned_support_empty_side_is_nan():
    support = BinnedSupport(np.array([1.0, 2.0]), np.array([0, 0]), np.array([1.5]), np.array([1]), 2)
    assert np.isnan(support.distances(np.array([[0.0, 2.0]]))[0])


def test_compare_shifted_sample_gives_shift():
    rng = np.random.default_rng(3)
    reference = rng.normal(10.0, 2.0, 4000)
    comparison = compare(
        "toy",
        per_event_values(reference),
        {"shifted": per_event_values(reference + 0.3), "same": per_event_values(reference.copy())},
        n_bootstrap=10,
        clip_quantile=0.0,
    )
    assert comparison.distances["shifted"]["event/x"].value == pytest.approx(0.3, rel=1e-9)
    assert comparison.distances["same"]["event/x"].value == 0.0
    assert comparison.score("same") == 0.0
    assert comparison.score("shifted") > 3.0


def test_bootstrap_uncertainty_positive_and_shrinks():
    uncertainties = {}
    for n_events in (200, 5000):
        rng = np.random.default_rng(4)
        reference = rng.normal(0.0, 1.0, n_events)
        sample = rng.normal(0.2, 1.0, n_events)
        events = np.arange(n_events)
        value, uncertainty = bootstrap_distance(sample, events, reference, events, n_events, n_bootstrap=40, seed=5)
        assert value == pytest.approx(0.2, abs=0.15)
        assert uncertainty > 0
        uncertainties[n_events] = uncertainty
    # The standard deviation scales as 1/sqrt(N): a factor 5 here, required at least 2.5.
    assert uncertainties[5000] < uncertainties[200] / 2.5


def test_bootstrap_keeps_events_together():
    # Ten correlated values per event: an event bootstrap resamples 100 independent units,
    # not 1000, so its spread must exceed that of a bootstrap over single values.
    rng = np.random.default_rng(6)
    n_events = 100
    event_shift = np.repeat(rng.normal(0.0, 1.0, n_events), 10)
    events = np.repeat(np.arange(n_events), 10)
    reference = event_shift + 0.1 * rng.standard_normal(1000)
    sample = np.repeat(rng.normal(0.0, 1.0, n_events), 10) + 0.1 * rng.standard_normal(1000)
    _, per_event = bootstrap_distance(sample, events, reference, events, n_events, n_bootstrap=40)
    _, per_value = bootstrap_distance(sample, np.arange(1000), reference, np.arange(1000), 1000, n_bootstrap=40)
    assert per_event > 1.5 * per_value


def test_floor_matches_halves_distance():
    rng = np.random.default_rng(7)
    values = rng.normal(0.0, 1.0, 2000)
    floor = statistical_floor(values, np.arange(2000), 2000, n_splits=1, seed=8)

    # The same split drawn by hand, distance computed with scipy.
    first = np.zeros(2000, dtype=bool)
    first[np.random.default_rng(8).permutation(2000)[:1000]] = True
    assert floor.value == pytest.approx(wasserstein_distance(values[first], values[~first]), rel=1e-10)


def test_floor_scales_with_statistics():
    rng = np.random.default_rng(9)
    small = statistical_floor(rng.normal(size=500), np.arange(500), 500, n_splits=10)
    large = statistical_floor(rng.normal(size=50000), np.arange(50000), 50000, n_splits=10)
    assert small.value > 0
    assert small.uncertainty > 0
    # Expected ratio sqrt(100) = 10.
    assert large.value < small.value / 5


def test_independent_sample_within_floor():
    rng = np.random.default_rng(10)
    reference = per_event_values(rng.normal(size=3000))
    sample = per_event_values(rng.normal(size=3000))
    comparison = compare("toy", reference, {"independent": sample}, n_bootstrap=5)
    assert comparison.distances["independent"]["event/x"].ratio < 2.0


def test_score_is_median_of_finite_ratios():
    assert score([1.0, 3.0, float("nan"), 2.0]) == 2.0
    assert np.isnan(score([float("nan")]))


def test_tables_written(tmp_path):
    rng = np.random.default_rng(11)
    reference = per_event_values(rng.normal(size=500))
    comparison = compare("ttbar", reference, {"flow": per_event_values(rng.normal(0.5, 1.0, 500))}, n_bootstrap=5)
    write_tables([comparison], tmp_path)

    markdown = (tmp_path / "distances.md").read_text()
    assert "| ttbar | `event/x` |" in markdown
    assert "- flow: ttbar" in markdown

    with open(tmp_path / "distances.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert rows[0]["observable"] == "event/x"
    assert float(rows[0]["flow"]) == pytest.approx(comparison.distances["flow"]["event/x"].value)
    assert float(rows[0]["flow_ratio"]) > 1.0

    document = json.loads((tmp_path / "distances.json").read_text())
    assert document["processes"]["ttbar"]["floors"]["event/x"]["value"] > 0
    assert document["scores"]["flow"]["ttbar"] == pytest.approx(comparison.score("flow"))
    assert markdown_table([comparison]).startswith("| process | observable | floor | flow |")
