"""Pooling of sparse bins: a bin with too few entries borrows its neighbours' entries.

A cell (pT bin p, |eta| bin e) of one group (a GEN class, or a GEN class and a
PFC class) with fewer than ``min_entries`` entries uses the pooled entries of
the first of these neighbourhoods that contains enough:

1. level 1: |eta| bins e - d ... e + d in the same pT bin, d = 1, 2, ...;
2. level 2: all |eta| bins and pT bins p - d ... p + d, d = 1, 2, ...;
   the last of these is the whole group.

|eta| is widened first because efficiencies and resolutions change much faster
with pT (the efficiency rises from 0 to its plateau within a few pT bins above
the PFC threshold) than between neighbouring |eta| bins. If even the whole group
is short of ``min_entries``, the whole group is used as it is. The level (0 for
a cell that keeps its own entries) is returned so that every fitted value can
be traced to the entries behind it.

Counts pool by summing, means and variances exactly through their combined
moments (:func:`parnassus.backends.smearing.moments.combine`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from parnassus.backends.smearing.moments import combine

#: Level codes of a pooled cell.
OWN_BIN = 0
ETA_NEIGHBOURS = 1
PT_NEIGHBOURS = 2
OTHER_GROUPS = 3
EMPTY = 4

LEVEL_NAMES = {
    OWN_BIN: "own bin",
    ETA_NEIGHBOURS: "neighbouring |eta| bins",
    PT_NEIGHBOURS: "neighbouring pT bins, all |eta|",
    OTHER_GROUPS: "all GEN classes pooled",
    EMPTY: "no entries (default value)",
}


def neighbourhoods(p: int, e: int, n_pt: int, n_eta: int) -> Iterator[tuple[slice, slice, int]]:
    """Yield the growing neighbourhoods of cell (p, e) as (pT slice, |eta| slice, level)."""
    yield slice(p, p + 1), slice(e, e + 1), OWN_BIN
    for d in range(1, n_eta):
        low, high = max(e - d, 0), min(e + d + 1, n_eta)
        yield slice(p, p + 1), slice(low, high), ETA_NEIGHBOURS
        if low == 0 and high == n_eta:
            break
    for d in range(1, n_pt):
        low, high = max(p - d, 0), min(p + d + 1, n_pt)
        yield slice(low, high), slice(0, n_eta), PT_NEIGHBOURS
        if low == 0 and high == n_pt:
            break
    # Always end on the whole group, also when there is a single pT or |eta| bin.
    yield slice(0, n_pt), slice(0, n_eta), PT_NEIGHBOURS


def pool_counts(counts: np.ndarray, min_entries: int) -> tuple[np.ndarray, np.ndarray]:
    """Pool the outcome counts of sparse cells.

    Args:
        counts: shape (groups, P, E, outcomes), entries per outcome.
        min_entries: the total a cell needs to keep its own counts.

    Returns:
        ``(pooled, level)``: pooled counts of the same shape and the level
        (groups, P, E) int8 of each cell.
    """
    counts = np.asarray(counts, dtype=np.float64)
    groups, n_pt, n_eta, _ = counts.shape
    totals = counts.sum(axis=-1)
    pooled = counts.copy()
    level = np.zeros((groups, n_pt, n_eta), dtype=np.int8)

    for g, p, e in zip(*np.nonzero(totals < min_entries)):
        for pt_slice, eta_slice, code in neighbourhoods(p, e, n_pt, n_eta):
            if code == OWN_BIN:
                continue
            summed = counts[g, pt_slice, eta_slice].sum(axis=(0, 1))
            pooled[g, p, e] = summed
            level[g, p, e] = code
            if summed.sum() >= min_entries:
                break
    return pooled, level


def pool_moments(
    entries: np.ndarray, n: np.ndarray, mean: np.ndarray, m2: np.ndarray, min_entries: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pool the moments of sparse cells.

    Args:
        entries: entries per cell, shape (groups, P, E); decides which cells are sparse.
        n: entries per cell and feature, shape (groups, P, E, features); features
            may count different entries (the shells of the residuals).
        mean: means, shape (groups, P, E, features).
        m2: sums of squared deviations, shape (groups, P, E, features).
        min_entries: the entries a cell needs to keep its own moments.

    Returns:
        ``(n, mean, m2, level)`` after pooling, shapes as the inputs and (groups, P, E).
    """
    entries = np.asarray(entries, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    groups, n_pt, n_eta = entries.shape
    pooled_n, pooled_mean, pooled_m2 = n.copy(), mean.copy(), m2.copy()
    level = np.zeros((groups, n_pt, n_eta), dtype=np.int8)
    features = mean.shape[-1]

    for g, p, e in zip(*np.nonzero(entries < min_entries)):
        for pt_slice, eta_slice, code in neighbourhoods(p, e, n_pt, n_eta):
            if code == OWN_BIN:
                continue
            part_n = n[g, pt_slice, eta_slice].reshape(-1, features)
            pooled = combine(
                part_n,
                mean[g, pt_slice, eta_slice].reshape(-1, features),
                m2[g, pt_slice, eta_slice].reshape(-1, features),
            )
            pooled_n[g, p, e], pooled_mean[g, p, e], pooled_m2[g, p, e] = pooled
            level[g, p, e] = code
            if entries[g, pt_slice, eta_slice].sum() >= min_entries:
                break
    return pooled_n, pooled_mean, pooled_m2, level


def pool_rows(counts: np.ndarray, min_entries: int) -> tuple[np.ndarray, np.ndarray]:
    """Pool the histograms of sparse rows with their neighbouring rows.

    Used for the unmatched-PFC multiplicity, one histogram per GEN-multiplicity bin.

    Args:
        counts: shape (rows, columns).
        min_entries: the total a row needs to keep its own histogram.

    Returns:
        ``(pooled, level)``, the level being 0 for a row that keeps its own histogram
        and 1 for a pooled one.
    """
    pooled, level = pool_counts(np.asarray(counts)[None, :, None, :], min_entries)
    return pooled[0, :, 0, :], level[0, :, 0]
