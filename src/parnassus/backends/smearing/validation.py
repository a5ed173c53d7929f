"""Comparison of fitted smearing tables with held-out (GEN, PFC) pairs.

The tables are filled again from the validation files with the same binning and
matching, and the model's expectation is compared with what those files show,
per GEN class:

- matched fraction: expected sum over cells of n_cell (1 - P(lost | cell)),
  against the observed number of matched GEN particles;
- same-class fraction: the same with P(PFC class = GEN class | cell);
- the mean and standard deviation of log(pT_PFC / pT_GEN) of matched pairs whose
  PFC class equals the GEN class, inside each cell's clipping window of the fit.
  The expectation is the mixture of the fitted Gaussians of the cells that the
  validation pairs fall in,
  mean = sum_i w_i mu_i and variance = sum_i w_i (sigma_i^2 + mu_i^2) - mean^2,
  w_i being the validation pairs of cell i over all pairs;

and the mean number of unmatched PFCs per event, expected from the fitted
multiplicity distribution of each event's GEN-multiplicity bin.
"""

from __future__ import annotations

import numpy as np

from parnassus.backends.smearing import moments
from parnassus.backends.smearing.fit import SmearingAccumulator
from parnassus.backends.smearing.model import LOST, SmearingTables
from parnassus.core.events import ParticleClass


def compare_with_validation(tables: SmearingTables, validation: SmearingAccumulator) -> dict:
    """Return expected and observed values per GEN class and for the unmatched PFCs.

    Args:
        tables: the fitted tables.
        validation: an accumulator filled from the validation files with the tables' binning.

    Returns:
        A dict for ``model.yaml``: ``events``, ``gen_classes`` (per class label:
        expected and observed matched and same-class fractions, pT response mean and
        width) and ``mean_unmatched_pfc_per_event`` (expected and observed).
    """
    counts = validation.outcome_counts
    cell_totals = counts.sum(axis=-1)
    classes = {}
    for cls in ParticleClass:
        total = float(cell_totals[cls].sum())
        if total == 0:
            continue
        expected_matched = float(np.sum(cell_totals[cls] * (1 - tables.outcome_probability[cls, ..., LOST])))
        expected_same = float(np.sum(cell_totals[cls] * tables.outcome_probability[cls, ..., cls]))
        entry = {
            "gen_particles": int(total),
            "matched_fraction": {
                "expected": round(expected_matched / total, 6),
                "observed": round(float(total - counts[cls, ..., LOST].sum()) / total, 6),
            },
            "same_class_fraction": {
                "expected": round(expected_same / total, 6),
                "observed": round(float(counts[cls, ..., cls].sum()) / total, 6),
            },
        }
        entry.update(_pt_response(tables, validation, cls))
        classes[cls.label] = entry

    return {
        "events": validation.events,
        "gen_classes": classes,
        "mean_unmatched_pfc_per_event": _unmatched_mean(tables, validation),
    }


def _pt_response(tables: SmearingTables, validation: SmearingAccumulator, cls: int) -> dict:
    """Expected and observed mean and width of log(pT_PFC / pT_GEN) for pairs of the same class.

    The observed moments of each cell use the clipping window of the fit, so both
    describe the same Gaussian core.
    """
    n_classes = tables.resolution_count.shape[0]
    cells = (n_classes, n_classes, tables.binning.n_pt, tables.binning.n_eta)
    shells = validation.resolution
    window_n, window_mean, window_m2 = (
        a.reshape(*cells, -1)[cls, cls].reshape(-1, a.shape[-1])
        for a in moments.windows(shells.n[..., 0], shells.mean[..., 0], shells.m2[..., 0], axis=1)
    )
    window = tables.resolution_window[cls, cls, ..., 0].reshape(-1, 1).astype(np.int64)
    n = np.take_along_axis(window_n, window, axis=1)[:, 0]
    if n.sum() < 2:
        return {}
    total, observed_mean, observed_m2 = moments.combine(
        n, np.take_along_axis(window_mean, window, axis=1)[:, 0], np.take_along_axis(window_m2, window, axis=1)[:, 0]
    )

    weights = n / total
    mu = tables.resolution_mean[cls, cls, ..., 0].ravel()
    sigma = tables.resolution_sigma[cls, cls, ..., 0].ravel()
    expected_mean = float(np.sum(weights * mu))
    expected_variance = float(np.sum(weights * (sigma**2 + mu**2)) - expected_mean**2)
    return {
        "log_pt_ratio_mean": {"expected": round(expected_mean, 6), "observed": round(float(observed_mean), 6)},
        "log_pt_ratio_std": {
            "expected": round(float(np.sqrt(max(expected_variance, 0.0))), 6),
            "observed": round(float(np.sqrt(observed_m2 / (total - 1))), 6),
        },
    }


def _unmatched_mean(tables: SmearingTables, validation: SmearingAccumulator) -> dict:
    events_per_row = validation.multiplicity_counts.sum(axis=1).astype(np.float64)
    n_events = events_per_row.sum()
    if n_events == 0:
        return {}
    multiplicities = np.arange(tables.multiplicity_probability.shape[1])
    expected_per_row = tables.multiplicity_probability @ multiplicities
    observed = validation.multiplicity_counts @ np.arange(validation.multiplicity_counts.shape[1])
    return {
        "expected": round(float(np.sum(events_per_row * expected_per_row) / n_events), 6),
        "observed": round(float(observed.sum() / n_events), 6),
    }
