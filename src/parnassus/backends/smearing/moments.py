"""Streaming moments of the GEN-PFC residuals, with the core width found by sigma clipping.

A few wrong pairs of the Delta R matching (a lost GEN particle paired with a
pileup PFC, say) have residuals far larger than the resolution. One such pair
in 10^4, with a vz residual of several cm, multiplies the standard deviation of
a 100 um vertex resolution several times. The smearing model wants the Gaussian
core, as DELPHES' resolution formulas describe, so the width is measured on the
residuals inside a window |x| < T, chosen by iterative clipping:

    T <- the smallest window edge >= |mean_T| + c sigma_T, repeated until T is stable,

with c = ``clip_sigmas`` (5 by default, which keeps 99.99994 % of a Gaussian
core). The first T is set by the width that contains 68 % of the residuals,
which outliers cannot inflate. In one pass over the data this needs the moments
of every window. So the residuals are counted in shells of |x| between the
window edges :data:`SHELL_EDGES` (1e-6 to 1e4 in the unit of the residual, half
a decade apart), and a window's moments are those of the shells inside it.

Moments are kept as (count, mean, sum of squared deviations) and merged exactly
with the pairwise update of Chan, Golub and LeVeque (1979), which stays accurate
when a mean is large compared with the spread, unlike sums of squares.
"""

from __future__ import annotations

import numpy as np

#: Upper edges of the |residual| shells (the unit of the residual), half a decade apart.
SHELL_EDGES = np.logspace(-6, 4, 21)

#: Shells: below each edge, and one above the last edge.
N_SHELLS = len(SHELL_EDGES) + 1

#: Fraction of a Gaussian within one standard deviation of its mean.
CORE_FRACTION = 0.6827

#: Iterations of the clipping; it settles within a few because the windows are half a decade apart.
MAX_CLIP_ITERATIONS = 20


def combine(n: np.ndarray, mean: np.ndarray, m2: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Combine the moments of several parts along ``axis`` into those of their union.

    For parts i with n_i entries, means m_i and sums of squared deviations M2_i:
    n = sum n_i, m = sum n_i m_i / n and M2 = sum (M2_i + n_i (m_i - m)^2).

    Args:
        n: entries, the shape of ``mean``.
        mean: means.
        m2: sums of squared deviations from each part's mean.
        axis: the axis of the parts.

    Returns:
        ``(n, mean, m2)`` with ``axis`` removed; mean and m2 are 0 where n is 0.
    """
    n = np.asarray(n, dtype=np.float64)
    total = n.sum(axis=axis)
    safe_total = np.where(total > 0, total, 1.0)
    pooled_mean = np.sum(n * mean, axis=axis) / safe_total
    deviation = mean - np.expand_dims(pooled_mean, axis)
    pooled_m2 = np.sum(m2 + n * deviation**2, axis=axis)
    return total, pooled_mean, pooled_m2


class ShellMoments:
    """Running moments of several residuals per cell, split into |residual| shells.

    Attributes:
        n: (cells, shells, variables) int64 entries.
        mean: (cells, shells, variables) float64 means.
        m2: (cells, shells, variables) float64 sums of squared deviations.
    """

    def __init__(self, n_cells: int, n_variables: int):
        shape = (n_cells, N_SHELLS, n_variables)
        self.n = np.zeros(shape, dtype=np.int64)
        self.mean = np.zeros(shape)
        self.m2 = np.zeros(shape)

    def add(self, cell: np.ndarray, values: np.ndarray) -> None:
        """Add entries.

        Args:
            cell: int array (entries,), the cell of each entry.
            values: float array (entries, variables), the residuals.
        """
        if len(cell) == 0:
            return
        n_cells, n_shells, n_variables = self.n.shape
        size = n_cells * n_shells
        for variable in range(n_variables):
            x = values[:, variable]
            index = cell * n_shells + np.searchsorted(SHELL_EDGES, np.abs(x), side="right")
            chunk_n = np.bincount(index, minlength=size)
            chunk_mean = np.bincount(index, weights=x, minlength=size) / np.maximum(chunk_n, 1)
            chunk_m2 = np.bincount(index, weights=(x - chunk_mean[index]) ** 2, minlength=size)
            self._merge(variable, chunk_n, chunk_mean, chunk_m2)

    def _merge(self, variable: int, chunk_n: np.ndarray, chunk_mean: np.ndarray, chunk_m2: np.ndarray) -> None:
        shape = self.n.shape[:2]
        n = self.n[..., variable]
        chunk_n, chunk_mean, chunk_m2 = chunk_n.reshape(shape), chunk_mean.reshape(shape), chunk_m2.reshape(shape)
        total = n + chunk_n
        safe_total = np.maximum(total, 1)
        delta = chunk_mean - self.mean[..., variable]
        self.mean[..., variable] += delta * chunk_n / safe_total
        self.m2[..., variable] += chunk_m2 + delta**2 * n * chunk_n / safe_total
        self.n[..., variable] = total

    def totals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the unclipped moments, each (cells, variables)."""
        return combine(self.n, self.mean, self.m2, axis=1)


def windows(n: np.ndarray, mean: np.ndarray, m2: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn shell moments into window moments, window k containing shells 0..k.

    Args:
        n, mean, m2: shell moments with the shells on ``axis``.
        axis: the shell axis.

    Returns:
        Window moments of the same shapes. The last window contains every entry.
    """
    n, mean, m2 = (np.moveaxis(np.asarray(a, dtype=np.float64), axis, 0) for a in (n, mean, m2))
    out_n, out_mean, out_m2 = np.zeros_like(n), np.zeros_like(mean), np.zeros_like(m2)
    running = (np.zeros_like(n[0]), np.zeros_like(mean[0]), np.zeros_like(m2[0]))
    for shell in range(n.shape[0]):
        running = combine(
            np.stack([running[0], n[shell]]), np.stack([running[1], mean[shell]]), np.stack([running[2], m2[shell]])
        )
        out_n[shell], out_mean[shell], out_m2[shell] = running
    return tuple(np.moveaxis(a, 0, axis) for a in (out_n, out_mean, out_m2))


def clipped_estimate(
    n: np.ndarray, mean: np.ndarray, m2: np.ndarray, clip_sigmas: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the clipped mean and standard deviation of every cell.

    Args:
        n, mean, m2: window moments, shape (..., windows), the last window unclipped.
        clip_sigmas: the half-width c of the clipping in standard deviations;
            0 or infinity use the unclipped moments.

    Returns:
        ``(mean, sigma, window)`` of shape (...): sigma is the sample standard
        deviation (0 for fewer than 2 entries) and ``window`` the index of the
        window used (the last one when unclipped).
    """
    n_windows = n.shape[-1]
    window = np.full(n.shape[:-1], n_windows - 1, dtype=np.int64)
    if 0 < clip_sigmas < np.inf:
        window = _robust_start(n, mean, clip_sigmas)
        for _ in range(MAX_CLIP_ITERATIONS):
            centre, width = _moments_at(n, mean, m2, window)
            needed = np.abs(centre) + clip_sigmas * width
            # The smallest window whose edge covers mean +- c sigma; the last window has no edge.
            candidate = np.minimum(np.searchsorted(SHELL_EDGES, needed.ravel(), side="left"), n_windows - 1)
            candidate = candidate.reshape(window.shape)
            # A window with fewer than 2 entries has no width: keep the current one.
            has_entries = np.take_along_axis(n, candidate[..., None], axis=-1)[..., 0] >= 2
            candidate = np.where(has_entries, candidate, window)
            if np.array_equal(candidate, window):
                break
            window = candidate
    centre, width = _moments_at(n, mean, m2, window)
    return centre, width, window


def _robust_start(n: np.ndarray, mean: np.ndarray, clip_sigmas: float) -> np.ndarray:
    """Return the first window of the clipping, from a scale that outliers cannot inflate.

    The scale is the 68.27 % quantile of |residual|, interpolated in log |residual|
    between the window edges: sigma for a Gaussian centred at 0, about |mean|
    when the mean dominates. Starting from it, rather than from the unclipped
    moments, keeps a single far outlier in a sparse cell from widening the
    window so much that it never leaves it.
    """
    n_windows = n.shape[-1]
    total = np.maximum(n[..., -1:], 1)
    fraction = n / total
    core = np.argmax(fraction >= CORE_FRACTION, axis=-1)

    # Interpolate between the edge below (fraction f_low) and the edge of the core window.
    log_edges = np.log(np.append(SHELL_EDGES, SHELL_EDGES[-1] * 10))
    below = np.maximum(core - 1, 0)
    f_low = np.where(core > 0, np.take_along_axis(fraction, below[..., None], axis=-1)[..., 0], 0.0)
    f_high = np.take_along_axis(fraction, core[..., None], axis=-1)[..., 0]
    step = np.clip((CORE_FRACTION - f_low) / np.maximum(f_high - f_low, 1e-12), 0.0, 1.0)
    low_edge = np.where(core > 0, log_edges[below], log_edges[0] - (log_edges[1] - log_edges[0]))
    scale = np.exp(low_edge + step * (log_edges[core] - low_edge))

    centre = np.take_along_axis(mean, core[..., None], axis=-1)[..., 0]
    needed = np.abs(centre) + clip_sigmas * scale
    start = np.minimum(np.searchsorted(SHELL_EDGES, needed.ravel(), side="left"), n_windows - 1)
    start = start.reshape(core.shape)
    has_entries = np.take_along_axis(n, start[..., None], axis=-1)[..., 0] >= 2
    return np.where(has_entries, start, n_windows - 1)


def _moments_at(n, mean, m2, window):
    def pick(a):
        return np.take_along_axis(a, window[..., None], axis=-1)[..., 0]

    count = pick(n)
    sigma = np.sqrt(pick(m2) / np.maximum(count - 1, 1))
    return pick(mean), np.where(count > 1, sigma, 0.0)
