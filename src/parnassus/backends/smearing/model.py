"""The fitted smearing model: its tables and the :class:`TrainedModel` that samples from them.

Notation of the shapes: C = 5 particle classes, O = 6 outcomes of a GEN particle
(reconstructed as PFC class 0-4, or lost), P x E the GEN (pT, |eta|) bins,
V = 6 residual variables, G GEN-multiplicity bins, M + 1 possible numbers of
unmatched PFCs per event, Pu x Eu the unmatched-PFC (pT, eta) bins and B the
vertex bins.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

import awkward as ak
import numpy as np

from parnassus.backends.smearing.binning import Binning
from parnassus.backends.smearing.moments import SHELL_EDGES
from parnassus.core.backend import SamplingReport, TrainedModel
from parnassus.core.detector import DetectorCard
from parnassus.core.events import N_CLASSES

log = logging.getLogger(__name__)

#: Outcome index of a GEN particle that yields no PFC.
LOST = N_CLASSES
N_OUTCOMES = N_CLASSES + 1

#: Residuals of a matched pair, in the order of the last axis of the resolution tables.
#: They are log(pT_PFC / pT_GEN), then (eta_PFC - eta_GEN) * sign(eta_GEN), positive away
#: from eta = 0, then phi_PFC - phi_GEN wrapped into [-pi, pi) (rad), then the vx, vy
#: and vz of the PFC minus those of the GEN particle (unit of the data).
RESIDUALS = ("log_pt_ratio", "eta", "phi", "vx", "vy", "vz")
N_RESIDUALS = len(RESIDUALS)

#: Number of vertex coordinates in the unmatched-PFC vertex histograms.
N_VERTEX = 3


@dataclass(eq=False)
class SmearingTables:
    """Everything a fitted smearing model consists of.

    Raw accumulations (``*_counts``, ``resolution_count``, ``resolution_raw_*``)
    are kept beside the fitted values so that a checkpoint documents the entries
    behind each number.

    Attributes:
        binning: the bin edges.
        outcome_counts: (C, P, E, O) int64, matched GEN particles per reconstructed class, and lost ones.
        outcome_probability: (C, P, E, O) float64, efficiency and class migration after pooling.
        outcome_level: (C, P, E) int8, the pooling level of each cell (see ``pooling``).
        resolution_count: (C, C, P, E) int64, matched pairs per (GEN class, PFC class, bin).
        resolution_raw_mean: (C, C, P, E, V) float64, mean residuals before pooling.
        resolution_raw_m2: (C, C, P, E, V) float64, sums of squared deviations before pooling.
        resolution_mean: (C, C, P, E, V) float64, fitted mean residuals.
        resolution_sigma: (C, C, P, E, V) float64, fitted standard deviations of the residuals.
        resolution_level: (C, C, P, E) int8, pooling level.
        resolution_window: (C, C, P, E, V) int8, index of the clipping window of each
            fitted residual; the last index means unclipped (see ``moments``).
        resolution_window_edges: (K,) float64, the |residual| edges of the windows.
        multiplicity_counts: (G, M + 1) int64, events per number of unmatched PFCs.
        multiplicity_probability: (G, M + 1) float64, after pooling.
        multiplicity_level: (G,) int8, pooling level.
        unmatched_kinematics_counts: (C, Pu, Eu) int64, unmatched PFCs per class and (pT, eta) bin.
        unmatched_vertex_counts: (C, 3, B) int64, unmatched PFCs per class, coordinate and vertex bin.
    """

    binning: Binning
    outcome_counts: np.ndarray
    outcome_probability: np.ndarray
    outcome_level: np.ndarray
    resolution_count: np.ndarray
    resolution_raw_mean: np.ndarray
    resolution_raw_m2: np.ndarray
    resolution_mean: np.ndarray
    resolution_sigma: np.ndarray
    resolution_level: np.ndarray
    resolution_window: np.ndarray
    resolution_window_edges: np.ndarray
    multiplicity_counts: np.ndarray
    multiplicity_probability: np.ndarray
    multiplicity_level: np.ndarray
    unmatched_kinematics_counts: np.ndarray
    unmatched_vertex_counts: np.ndarray

    @property
    def table_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if f.name != "binning")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return every table and bin edge as a flat name-to-array mapping (for ``.npz``)."""
        arrays = self.binning.to_arrays()
        arrays.update({name: np.asarray(getattr(self, name)) for name in self.table_names})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "SmearingTables":
        """Rebuild the tables from :meth:`to_arrays` output and check their consistency.

        Raises:
            ValueError: a table is missing, has the wrong shape or kind, or contains
                values that are not finite, negative or not normalised.
        """
        binning = Binning.from_arrays(arrays)
        shapes = _expected_shapes(binning, arrays)
        values: dict[str, Any] = {}
        for name, (shape, kind) in shapes.items():
            if name not in arrays:
                raise ValueError(f"the table {name!r} is missing")
            array = np.asarray(arrays[name])
            if array.shape != shape:
                raise ValueError(f"the table {name!r} has shape {array.shape}, expected {shape}")
            if array.dtype.kind not in kind:
                raise ValueError(f"the table {name!r} has dtype {array.dtype}, expected a numeric table")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"the table {name!r} contains values that are not finite")
            values[name] = array
        tables = cls(binning=binning, **values)
        tables.check_values()
        return tables

    def check_values(self) -> None:
        """Raise ValueError if a count or width is negative or a probability table is not normalised."""
        for name in ("outcome_counts", "resolution_count", "multiplicity_counts",
                     "unmatched_kinematics_counts", "unmatched_vertex_counts", "resolution_sigma"):
            if np.any(getattr(self, name) < 0):
                raise ValueError(f"the table {name!r} contains negative values")
        if not np.allclose(self.resolution_window_edges, SHELL_EDGES):
            raise ValueError("the resolution windows differ from those of this parnassus version")
        if np.any(self.resolution_window < 0) or np.any(self.resolution_window > len(SHELL_EDGES)):
            raise ValueError("the table 'resolution_window' contains invalid window indices")
        for name in ("outcome_probability", "multiplicity_probability"):
            table = getattr(self, name)
            if np.any(table < 0) or not np.allclose(table.sum(axis=-1), 1.0, atol=1e-9):
                raise ValueError(f"the probabilities {name!r} are negative or do not sum to 1")

    @property
    def max_unmatched(self) -> int:
        """The largest number of unmatched PFCs per event the multiplicity tables hold."""
        return self.multiplicity_probability.shape[1] - 1


def _expected_shapes(binning: Binning, arrays: dict[str, np.ndarray]) -> dict[str, tuple[tuple[int, ...], str]]:
    """Shapes and dtype kinds ('i' int, 'f' float) of every table for ``binning``."""
    c, p, e, o, v = N_CLASSES, binning.n_pt, binning.n_eta, N_OUTCOMES, N_RESIDUALS
    g = binning.n_multiplicity
    # The largest unmatched multiplicity is the card's max_particles at fit time, which
    # only the table itself records.
    multiplicity = np.shape(arrays.get("multiplicity_counts", np.zeros((g, 1))))
    columns = multiplicity[1] if len(multiplicity) == 2 and multiplicity[1] >= 1 else 1
    return {
        "outcome_counts": ((c, p, e, o), "iu"),
        "outcome_probability": ((c, p, e, o), "f"),
        "outcome_level": ((c, p, e), "iu"),
        "resolution_count": ((c, c, p, e), "iu"),
        "resolution_raw_mean": ((c, c, p, e, v), "f"),
        "resolution_raw_m2": ((c, c, p, e, v), "f"),
        "resolution_mean": ((c, c, p, e, v), "f"),
        "resolution_sigma": ((c, c, p, e, v), "f"),
        "resolution_level": ((c, c, p, e), "iu"),
        "resolution_window": ((c, c, p, e, v), "iu"),
        "resolution_window_edges": ((len(SHELL_EDGES),), "f"),
        "multiplicity_counts": ((g, columns), "iu"),
        "multiplicity_probability": ((g, columns), "f"),
        "multiplicity_level": ((g,), "iu"),
        "unmatched_kinematics_counts": ((c, binning.n_unmatched_pt, binning.n_unmatched_eta), "iu"),
        "unmatched_vertex_counts": ((c, N_VERTEX, binning.n_vertex), "iu"),
    }


class SmearingModel(TrainedModel):
    """A loaded smearing model. Sampling is numpy only, on the CPU.

    Args:
        card: the detector card the model was fitted for.
        tables: the fitted tables.
        info: the content of ``model.yaml``.
    """

    #: Events smeared per batch when ``batch_size`` is not given.
    DEFAULT_BATCH_SIZE = 10000

    def __init__(self, card: DetectorCard, tables: SmearingTables, info: dict[str, Any] | None = None):
        self.card = card
        self.tables = tables
        self.info = info or {}
        self._warned_solver = False

    def sample(
        self,
        gen_events: ak.Array,
        *,
        solver: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int | None = None,
    ) -> tuple[ak.Array, SamplingReport]:
        """Smear preprocessed GEN events into PFCs and add the unmatched PFCs.

        Args:
            gen_events: events with a ``gen`` field, already passed through ``card.preprocess``.
            solver: ignored, because the smearing model solves no ODE.
            steps: ignored.
            seed: seed of the numpy Generator; the same seed and batch size give the same output.
            batch_size: events smeared at once (default 10000); it changes the order of
                the random draws, so the output of a seed depends on it.

        Returns:
            The events with a ``pfc`` field, and a report. Its particle-stage time is
            the whole sampling time because the smearing model has no event stage.
        """
        from parnassus.backends.smearing.sampling import sample_events

        if (solver is not None or steps is not None) and not self._warned_solver:
            log.debug("the smearing backend ignores the solver (%s) and steps (%s)", solver, steps)
            self._warned_solver = True
        return sample_events(
            self.tables,
            self.card,
            gen_events,
            seed=seed,
            batch_size=batch_size or self.DEFAULT_BATCH_SIZE,
        )
