"""Bin layouts of the smearing tables.

Five layouts, all fixed before the data are read so that histograms can be
filled chunk by chunk:

- GEN pT (GeV): log-spaced from the card's GEN pT threshold to ``pt_max_gev``;
- GEN |eta|: uniform from 0 to the card's GEN |eta| limit;
- GEN multiplicity: 0, 1, then roughly log-spaced integers up to ``max_particles``;
- unmatched PFC pT (log-spaced from the PFC threshold) and signed eta (uniform);
- unmatched PFC vertex coordinates: uniform in u = asinh(v / 1e-4), so the bins
  are about 1e-4 wide near 0 and a fixed fraction of |v| beyond, which resolves a
  beam spot of a few 10 um as well as a luminous region of several cm.

Values outside a layout land in its first or last bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from parnassus.backends.smearing.config import SmearingConfig
from parnassus.core.detector import DetectorCard

#: Width scale of the vertex bins near 0 (the unit of the data: 1e-4 cm = 1 um for the CMS files).
VERTEX_SCALE = 1e-4

#: Lowest pT edge (GeV) used when a card's threshold is 0, because log-spaced bins need a positive start.
FALLBACK_PT_MIN_GEV = 0.1

#: |eta| limit used when a card's selection has none.
FALLBACK_ABS_ETA_MAX = 5.0

#: Names of the edge arrays, as stored in the tables file.
EDGE_NAMES = (
    "pt_edges",
    "abs_eta_edges",
    "multiplicity_edges",
    "unmatched_pt_edges",
    "unmatched_eta_edges",
    "vertex_edges",
)


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Return the bin of each value, with under- and overflow put in the first and last bin.

    Args:
        values: array of any shape.
        edges: increasing bin edges, shape (bins + 1,).

    Returns:
        int64 array of the shape of ``values`` with entries in [0, bins - 1].
    """
    index = np.searchsorted(edges, values, side="right") - 1
    return np.clip(index, 0, len(edges) - 2).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Binning:
    """The bin edges of every smearing table.

    Attributes:
        pt_edges: GEN pT edges (GeV), shape (P + 1,).
        abs_eta_edges: GEN |eta| edges, shape (E + 1,).
        multiplicity_edges: GEN multiplicity edges (integers, as float), shape (G + 1,);
            bin g contains the events with edges[g] <= N_GEN < edges[g + 1].
        unmatched_pt_edges: unmatched PFC pT edges (GeV), shape (Pu + 1,).
        unmatched_eta_edges: unmatched PFC signed eta edges, shape (Eu + 1,).
        vertex_edges: unmatched PFC vertex edges (unit of the data), shape (V + 1,).
    """

    pt_edges: np.ndarray
    abs_eta_edges: np.ndarray
    multiplicity_edges: np.ndarray
    unmatched_pt_edges: np.ndarray
    unmatched_eta_edges: np.ndarray
    vertex_edges: np.ndarray

    @classmethod
    def build(cls, config: SmearingConfig, card: DetectorCard) -> "Binning":
        """Lay out the bins of ``config`` within the selections of ``card``."""
        gen_pt_min = _positive_or(card.gen_selection.pt_min, FALLBACK_PT_MIN_GEV)
        pfc_pt_min = _positive_or(card.pfc_selection.pt_min, FALLBACK_PT_MIN_GEV)
        gen_eta_max = _finite_or(card.gen_selection.abs_eta_max, FALLBACK_ABS_ETA_MAX)
        pfc_eta_max = _finite_or(card.pfc_selection.abs_eta_max, FALLBACK_ABS_ETA_MAX)
        pt_max = max(config.pt_max_gev, 2 * max(gen_pt_min, pfc_pt_min))

        u_max = math.asinh(config.vertex_max / VERTEX_SCALE)
        return cls(
            pt_edges=np.geomspace(gen_pt_min, pt_max, config.pt_bins + 1),
            abs_eta_edges=np.linspace(0.0, gen_eta_max, config.eta_bins + 1),
            multiplicity_edges=multiplicity_edges(config.multiplicity_bins, card.max_particles),
            unmatched_pt_edges=np.geomspace(pfc_pt_min, pt_max, config.unmatched_pt_bins + 1),
            unmatched_eta_edges=np.linspace(-pfc_eta_max, pfc_eta_max, config.unmatched_eta_bins + 1),
            vertex_edges=VERTEX_SCALE * np.sinh(np.linspace(-u_max, u_max, config.vertex_bins + 1)),
        )

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Binning":
        """Rebuild the binning from the arrays of a tables file (see :meth:`to_arrays`).

        Raises:
            ValueError: an edge array is missing, not one-dimensional, too short,
                not finite or not increasing.
        """
        edges = {}
        for name in EDGE_NAMES:
            if name not in arrays:
                raise ValueError(f"the bin edges {name!r} are missing")
            values = np.asarray(arrays[name], dtype=np.float64)
            if values.ndim != 1 or len(values) < 2:
                raise ValueError(f"the bin edges {name!r} must be a 1-d array of at least 2 values")
            if not np.all(np.isfinite(values)) or not np.all(np.diff(values) > 0):
                raise ValueError(f"the bin edges {name!r} must be finite and increasing")
            edges[name] = values
        return cls(**edges)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {name: np.asarray(getattr(self, name), dtype=np.float64) for name in EDGE_NAMES}

    def summary(self) -> dict:
        """Return a short, human-readable description for ``model.yaml``."""
        return {
            "gen_pt_edges_gev": [round(float(x), 6) for x in self.pt_edges],
            "gen_abs_eta_edges": [round(float(x), 6) for x in self.abs_eta_edges],
            "gen_multiplicity_edges": [int(x) for x in self.multiplicity_edges],
            "unmatched_pt_bins": self.n_unmatched_pt,
            "unmatched_pt_range_gev": [float(self.unmatched_pt_edges[0]), float(self.unmatched_pt_edges[-1])],
            "unmatched_eta_bins": self.n_unmatched_eta,
            "unmatched_eta_range": [float(self.unmatched_eta_edges[0]), float(self.unmatched_eta_edges[-1])],
            "vertex_bins": self.n_vertex,
            "vertex_range": [float(self.vertex_edges[0]), float(self.vertex_edges[-1])],
        }

    @property
    def n_pt(self) -> int:
        return len(self.pt_edges) - 1

    @property
    def n_eta(self) -> int:
        return len(self.abs_eta_edges) - 1

    @property
    def n_multiplicity(self) -> int:
        return len(self.multiplicity_edges) - 1

    @property
    def n_unmatched_pt(self) -> int:
        return len(self.unmatched_pt_edges) - 1

    @property
    def n_unmatched_eta(self) -> int:
        return len(self.unmatched_eta_edges) - 1

    @property
    def n_vertex(self) -> int:
        return len(self.vertex_edges) - 1

    def gen_bins(self, pt: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the (pT, |eta|) bin indices of GEN particles; pT in GeV."""
        return bin_index(pt, self.pt_edges), bin_index(np.abs(eta), self.abs_eta_edges)

    def multiplicity_bin(self, n_gen: np.ndarray) -> np.ndarray:
        return bin_index(n_gen, self.multiplicity_edges)


def multiplicity_edges(n_bins: int, max_particles: int) -> np.ndarray:
    """Return GEN multiplicity edges: 0, 1, then about log-spaced integers up to ``max_particles + 1``.

    Events without GEN particles get a bin of their own because their PFCs are
    all unmatched. Rounding can merge edges, so there may be fewer than ``n_bins`` bins.
    """
    top = max(int(max_particles), 1) + 1
    inner = np.round(np.geomspace(1, top, max(n_bins, 1))) if n_bins > 1 else np.array([top])
    edges = np.unique(np.concatenate([[0, 1], inner, [top]]).astype(np.int64))
    return edges.astype(np.float64)


def _positive_or(value: float, fallback: float) -> float:
    return float(value) if value > 0 else fallback


def _finite_or(value: float, fallback: float) -> float:
    return float(value) if math.isfinite(value) and value > 0 else fallback
