"""Compiled (numba) loops over calorimeter cells: summing deposits, seeding and clustering, lookups.

These are the only per-cell loops of the simulation. Each works event by event on cells
sorted by ``(event, cell)``, with a dense per-event grid for constant-time neighbour access,
so the cost grows with the number of hit cells, not with the size of the grid.
Cell index inside an event: ``ieta * n_phi + iphi``. A ring with ``phi_stride[ieta]`` s uses
only phi indices that are multiples of s, so a neighbour step in phi is s fine bins. A neighbour
in another ring is the cell of that ring covering the same phi.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def sum_cells(event, cell, energy, n_events, n_cells):
    """Sum deposit entries per (event, cell).

    Returns:
        (event, cell, energy, offsets): unique cells sorted by event then cell, and the
        first row of each event (shape n_events + 1).
    """
    n = len(event)
    counts = np.zeros(n_events + 1, dtype=np.int64)
    for i in range(n):
        counts[event[i] + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[fill[event[i]]] = i
        fill[event[i]] += 1

    dense = np.zeros(n_cells)
    seen = np.zeros(n_cells, dtype=np.bool_)
    out_event = np.empty(n, dtype=np.int64)
    out_cell = np.empty(n, dtype=np.int64)
    out_energy = np.empty(n)
    offsets = np.zeros(n_events + 1, dtype=np.int64)
    m = 0
    touched = np.empty(n, dtype=np.int64)
    for ev in range(n_events):
        k = 0
        for j in range(starts[ev], starts[ev + 1]):
            i = order[j]
            cc = cell[i]
            if not seen[cc]:
                seen[cc] = True
                touched[k] = cc
                k += 1
            dense[cc] += energy[i]
        cells = np.sort(touched[:k])
        for cc in cells:
            out_event[m] = ev
            out_cell[m] = cc
            out_energy[m] = dense[cc]
            m += 1
            dense[cc] = 0.0
            seen[cc] = False
        offsets[ev + 1] = m
    return out_event[:m], out_cell[:m], out_energy[:m], offsets


@njit(cache=True)
def _neighbour_phi(iphi, dp, stride, ring_stride, n_phi):
    target = (iphi + dp * stride) % n_phi
    return target // ring_stride * ring_stride


@njit(cache=True)
def cluster(cell, energy, seed_threshold, phi_stride, offsets, n_eta, n_phi, window):
    """Seed and cluster cells event by event.

    A seed is a cell above its ring's seed threshold and above its 8 neighbours (ties go to
    the lower cell index). Each cell joins the nearest seed within ``window`` cells in eta and
    phi (the more energetic one on ties), or no cluster (-1).

    Returns:
        (is_seed, cell_cluster): bool per cell, and the index of the seed cell of its cluster.
    """
    n = len(cell)
    is_seed = np.zeros(n, dtype=np.bool_)
    owner = np.full(n, -1, dtype=np.int64)
    grid = np.full(n_eta * n_phi, -1, dtype=np.int64)
    for ev in range(len(offsets) - 1):
        lo, hi = offsets[ev], offsets[ev + 1]
        for i in range(lo, hi):
            grid[cell[i]] = i
        for i in range(lo, hi):
            ieta = cell[i] // n_phi
            if energy[i] <= seed_threshold[ieta]:
                continue
            iphi = cell[i] % n_phi
            local_max = True
            for de in range(-1, 2):
                r = ieta + de
                if r < 0 or r >= n_eta:
                    continue
                for dp in range(-1, 2):
                    if de == 0 and dp == 0:
                        continue
                    j = grid[r * n_phi + _neighbour_phi(iphi, dp, phi_stride[ieta], phi_stride[r], n_phi)]
                    if j >= 0 and j != i and (energy[j] > energy[i] or (energy[j] == energy[i] and j < i)):
                        local_max = False
            is_seed[i] = local_max
        for i in range(lo, hi):
            ieta = cell[i] // n_phi
            iphi = cell[i] % n_phi
            best_d = 1 << 30
            best_e = -1.0
            for de in range(-window, window + 1):
                r = ieta + de
                if r < 0 or r >= n_eta:
                    continue
                for dp in range(-window, window + 1):
                    j = grid[r * n_phi + _neighbour_phi(iphi, dp, phi_stride[ieta], phi_stride[r], n_phi)]
                    if j < 0 or not is_seed[j]:
                        continue
                    d = de * de + dp * dp
                    if d < best_d or (d == best_d and energy[j] > best_e):
                        best_d = d
                        best_e = energy[j]
                        owner[i] = j
        for i in range(lo, hi):
            grid[cell[i]] = -1
    return is_seed, owner


@njit(cache=True)
def lookup(cell, energy, cell_cluster, phi_stride, offsets, n_eta, n_phi, query_event, query_ieta, query_iphi):
    """For each query cell, the cluster owning the most energetic clustered cell among it and its 8 neighbours, or -1."""
    result = np.full(len(query_event), -1, dtype=np.int64)
    for q in range(len(query_event)):
        ev = query_event[q]
        lo, hi = offsets[ev], offsets[ev + 1]
        if lo == hi:
            continue
        best_e = 0.0
        for de in range(-1, 2):
            r = query_ieta[q] + de
            if r < 0 or r >= n_eta:
                continue
            for dp in range(-1, 2):
                key = r * n_phi + _neighbour_phi(query_iphi[q], dp, phi_stride[query_ieta[q]], phi_stride[r], n_phi)
                j = lo + np.searchsorted(cell[lo:hi], key)
                if j < hi and cell[j] == key and cell_cluster[j] >= 0 and energy[j] > best_e:
                    best_e = energy[j]
                    result[q] = cell_cluster[j]
    return result
