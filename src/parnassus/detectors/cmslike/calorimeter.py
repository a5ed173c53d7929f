"""ECAL and HCAL: cell grids, shower deposits with lateral sharing, noise, thresholds and clustering.

A cell is addressed by its event and its index ``ieta * n_phi + iphi`` in the grid. Rings
with coarser phi segmentation (the 10-degree HCAL towers) use every ``phi_stride``-th index,
so a tower keeps one index on the finest phi grid. The per-cell loops (summing, clustering, lookups) are compiled in :mod:`.cell_kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from parnassus.detectors.cmslike import cell_kernels as kernels
from parnassus.detectors.cmslike import constants as c


def _ecal_positive_edges() -> np.ndarray:
    """|eta| edges of the ECAL rings: 0.0174 steps in the barrel, then steps growing as sinh|eta| to 3.0."""
    barrel = np.arange(86) * c.ECAL_CRYSTAL_DETA
    barrel[-1] = c.ECAL_BARREL_ABS_ETA
    edges = list(barrel)
    scale = c.ECAL_CRYSTAL_DETA / np.sinh(c.ECAL_BARREL_ABS_ETA)
    while edges[-1] < c.CALO_ABS_ETA_MAX - 1e-9:
        edges.append(min(edges[-1] + scale * np.sinh(edges[-1]), c.CALO_ABS_ETA_MAX))
    return np.array(edges)


@dataclass
class Grid:
    """A calorimeter cell grid in (eta, phi): ring edges, phi bins, noise and thresholds per ring.

    ``n_phi`` is the number of phi bins of the finest rings. A ring with ``phi_stride`` s has
    n_phi / s cells, at the phi indices that are multiples of s.
    """

    name: str
    eta_edges: np.ndarray
    n_phi: int
    noise: np.ndarray
    cell_threshold: np.ndarray
    seed_threshold: np.ndarray
    phi_stride: np.ndarray

    @property
    def n_eta(self) -> int:
        return len(self.eta_edges) - 1

    @property
    def eta_centres(self) -> np.ndarray:
        return 0.5 * (self.eta_edges[1:] + self.eta_edges[:-1])

    def phi_centre(self, ieta, iphi):
        return -np.pi + (iphi + 0.5 * self.phi_stride[ieta]) * (2.0 * np.pi / self.n_phi)

    def ieta(self, eta):
        return np.clip(np.searchsorted(self.eta_edges, eta, side="right") - 1, 0, self.n_eta - 1)

    def iphi(self, phi, ieta):
        fine = np.floor((phi + np.pi) / (2.0 * np.pi / self.n_phi)).astype(np.int64) % self.n_phi
        stride = self.phi_stride[ieta]
        return fine // stride * stride


def _symmetric(positive_edges):
    return np.concatenate([-positive_edges[:0:-1], positive_edges])


def _per_ring(grid_edges, barrel_abs_eta, barrel_value, endcap_value):
    centres = np.abs(0.5 * (grid_edges[1:] + grid_edges[:-1]))
    return np.where(centres < barrel_abs_eta, barrel_value, endcap_value).astype(np.float64)


def make_ecal_grid() -> Grid:
    edges = _symmetric(_ecal_positive_edges())
    return Grid(
        "ECAL", edges, c.ECAL_N_PHI,
        noise=_per_ring(edges, c.ECAL_BARREL_ABS_ETA, *c.ECAL_NOISE_GEV),
        cell_threshold=_per_ring(edges, c.ECAL_BARREL_ABS_ETA, *c.ECAL_CELL_THRESHOLD),
        seed_threshold=_per_ring(edges, c.ECAL_BARREL_ABS_ETA, *c.ECAL_SEED_THRESHOLD),
        phi_stride=np.ones(len(edges) - 1, dtype=np.int64),
    )


def make_hcal_grid() -> Grid:
    edges = _symmetric(c.HCAL_ETA_EDGES_POSITIVE)
    return Grid(
        "HCAL", edges, c.HCAL_N_PHI,
        noise=np.full(len(edges) - 1, c.HCAL_NOISE_GEV),
        cell_threshold=np.full(len(edges) - 1, c.HCAL_CELL_THRESHOLD),
        seed_threshold=_per_ring(edges, c.HCAL_BARREL_ABS_ETA, *c.HCAL_SEED_THRESHOLD),
        phi_stride=_per_ring(edges, c.HCAL_FINE_PHI_ABS_ETA, 1, 2).astype(np.int64),
    )


ECAL = make_ecal_grid()
HCAL = make_hcal_grid()


# --- deposits into cells ---------------------------------------------------------------------------


def share_deposits(grid: Grid, event, eta, phi, energy, sigma):
    """Spread each deposit over the 3 x 3 cells around its impact with a Gaussian lateral profile.

    The profile is separable in eta and phi with width ``sigma`` (in units of eta and of phi).
    The outer row and column take all the energy beyond them, so energy is conserved.

    Returns:
        (event, cell, energy) of the cell entries, shape (9 n,) before dropping entries below 1 MeV.
    """
    ieta = grid.ieta(eta)
    iphi = grid.iphi(phi, ieta)
    stride = grid.phi_stride[ieta]
    low = grid.eta_edges[ieta]
    high = grid.eta_edges[ieta + 1]
    f_eta_low = ndtr((low - eta) / sigma)
    f_eta_high = 1.0 - ndtr((high - eta) / sigma)
    # A deposit in the first or last ring has nowhere to spill over the edge.
    f_eta_low = np.where(ieta == 0, 0.0, f_eta_low)
    f_eta_high = np.where(ieta == grid.n_eta - 1, 0.0, f_eta_high)
    eta_fractions = (f_eta_low, 1.0 - f_eta_low - f_eta_high, f_eta_high)

    dphi = stride * (2.0 * np.pi / grid.n_phi)
    phi_low = grid.phi_centre(ieta, iphi) - 0.5 * dphi
    offset = np.mod(phi - phi_low, 2.0 * np.pi)
    offset = np.where(offset > np.pi, offset - 2.0 * np.pi, offset)
    f_phi_low = ndtr(-offset / sigma)
    f_phi_high = 1.0 - ndtr((dphi - offset) / sigma)
    phi_fractions = (f_phi_low, 1.0 - f_phi_low - f_phi_high, f_phi_high)

    cells, energies = [], []
    for de, fe in zip((-1, 0, 1), eta_fractions):
        ring = np.clip(ieta + de, 0, grid.n_eta - 1)
        ring_stride = grid.phi_stride[ring]
        for dp, fp in zip((-1, 0, 1), phi_fractions):
            # A neighbour in a ring with another phi segmentation is the cell covering that phi.
            target = (iphi + dp * stride) % grid.n_phi
            cells.append(ring * grid.n_phi + target // ring_stride * ring_stride)
            energies.append(energy * fe * fp)
    cells = np.concatenate(cells)
    energies = np.concatenate(energies)
    keep = energies > 1e-3
    return np.tile(event, 9)[keep], cells[keep], energies[keep]


@dataclass
class Cells:
    """Cells above threshold, sorted by event then cell index (``ieta * n_phi + iphi``); energy in GeV.

    ``offsets[e]:offsets[e + 1]`` are the rows of event ``e``.
    """

    event: np.ndarray
    cell: np.ndarray
    energy: np.ndarray
    offsets: np.ndarray


def _noise_seeds(grid: Grid, n_events: int, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-only cells above the seed threshold, from the Gaussian tail of every empty cell.

    NOTE: noise-only cells between the cell and the seed threshold are not generated. They
    matter only next to real showers, where the noise of hit cells is simulated.
    """
    cells_per_ring = grid.n_phi // grid.phi_stride
    tail = (1.0 - ndtr(grid.seed_threshold / grid.noise)) * cells_per_ring
    count = rng.poisson(n_events * tail.sum())
    ring = rng.choice(grid.n_eta, size=count, p=tail / tail.sum())
    tail_one_cell = 1.0 - ndtr(grid.seed_threshold[ring] / grid.noise[ring])
    u = 1.0 - tail_one_cell + tail_one_cell * rng.random(count)
    energy = grid.noise[ring] * ndtri(np.minimum(u, 1.0 - 1e-16))
    event = rng.integers(0, max(n_events, 1), count)
    iphi = rng.integers(0, cells_per_ring[ring]) * grid.phi_stride[ring]
    return event.astype(np.int64), (ring * grid.n_phi + iphi).astype(np.int64), energy


def build_cells(grid: Grid, event, cell, energies, n_events: int, rng) -> Cells:
    """Sum the deposits per cell, add electronic noise, add noise-only seeds, apply the cell threshold."""
    n_cells = grid.n_eta * grid.n_phi
    event, cell, total, _ = kernels.sum_cells(event.astype(np.int64), cell.astype(np.int64), energies, n_events, n_cells)
    total = total + grid.noise[cell // grid.n_phi] * rng.standard_normal(len(total))

    # Noise-only cells carry their whole noise already; a rare one on a hit cell adds to it.
    noise_event, noise_cell, noise_energy = _noise_seeds(grid, n_events, rng)
    if len(noise_event):
        event, cell, total, _ = kernels.sum_cells(np.concatenate([event, noise_event]), np.concatenate([cell, noise_cell]),
                                                  np.concatenate([total, noise_energy]), n_events, n_cells)
    keep = total > grid.cell_threshold[cell // grid.n_phi]
    event, cell, total = event[keep], cell[keep], total[keep]
    offsets = np.searchsorted(event, np.arange(n_events + 1))
    return Cells(event, cell, total, offsets)


@dataclass
class Clusters:
    """Clusters of one calorimeter: energy (GeV), energy-weighted position, and the cluster of each cell."""

    event: np.ndarray
    energy: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    cell_cluster: np.ndarray

    def __len__(self) -> int:
        return len(self.energy)


def cluster_cells(grid: Grid, cells: Cells, window: int = 2) -> Clusters:
    """Group cells into clusters around seeds.

    A seed is a cell above the seed threshold that is a local maximum among its 8 neighbours.
    Every cell joins the nearest seed within ``window`` cells in eta and phi, the more
    energetic seed on ties. Cells with no seed that close are left out. Two showers
    therefore make two clusters when their maxima are at least two cells apart.
    The cluster position is the energy-weighted mean of its cell centres.
    """
    is_seed, owner = kernels.cluster(cells.cell, cells.energy, grid.seed_threshold, grid.phi_stride, cells.offsets,
                                     grid.n_eta, grid.n_phi, window)
    seed_rank = np.cumsum(is_seed) - 1
    assigned = owner >= 0
    cell_cluster = np.where(assigned, seed_rank[np.maximum(owner, 0)], -1)
    n_clusters = int(is_seed.sum())
    seed_index = np.flatnonzero(is_seed)

    weight = np.where(assigned, cells.energy, 0.0)
    target = np.maximum(cell_cluster, 0)
    # float64 also when there is no cell (bincount of an empty array is int64).
    energy = np.bincount(target, weights=weight, minlength=n_clusters).astype(np.float64)
    eta_cells = grid.eta_centres[cells.cell // grid.n_phi]
    eta_sum = np.bincount(target, weights=weight * eta_cells, minlength=n_clusters)
    phi_cells = grid.phi_centre(cells.cell // grid.n_phi, cells.cell % grid.n_phi)
    seed_phi = phi_cells[seed_index]
    dphi = phi_cells - seed_phi[target] if n_clusters else np.zeros(len(weight))
    dphi = np.mod(dphi + np.pi, 2.0 * np.pi) - np.pi
    phi_sum = np.bincount(target, weights=weight * dphi, minlength=n_clusters)
    safe = np.maximum(energy, 1e-12)
    phi = np.mod(seed_phi + phi_sum / safe + np.pi, 2.0 * np.pi) - np.pi
    return Clusters(cells.event[seed_index], energy, eta_sum / safe, phi, cell_cluster)


def find_cluster(grid: Grid, cells: Cells, clusters: Clusters, event, eta, phi) -> np.ndarray:
    """Return the cluster whose cells include the cell at (eta, phi) or one of its 8 neighbours, or -1.

    When several clusters qualify, the one owning the most energetic of those cells wins.
    """
    ieta = grid.ieta(eta).astype(np.int64)
    return kernels.lookup(cells.cell, cells.energy, clusters.cell_cluster, grid.phi_stride, cells.offsets, grid.n_eta,
                          grid.n_phi, np.asarray(event, dtype=np.int64), ieta, grid.iphi(phi, ieta))


def transverse_radius_at(eta, radius_cm, endcap_z_cm):
    """Transverse distance (cm) from the beam of the calorimeter surface at ``eta``."""
    barrel_eta = np.arcsinh(endcap_z_cm / radius_cm)
    return np.where(np.abs(eta) < barrel_eta, radius_cm, endcap_z_cm / np.maximum(np.abs(np.sinh(eta)), 1e-6))
