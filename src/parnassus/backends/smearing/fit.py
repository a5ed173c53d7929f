"""Fit of the smearing tables from (GEN, PFC) training pairs, one chunk of events at a time.

Per event, GEN particles and PFCs are matched one-to-one by the Hungarian
algorithm on Delta R, pairs farther apart than ``match_delta_r`` forbidden. Then:

(a) every GEN particle counts once in its (class, pT bin, |eta| bin) cell, under
    the class of its matched PFC or as lost: efficiency and class migration;
(b) every matched pair adds its residuals (log(pT_PFC / pT_GEN), signed eta
    shift, phi shift, vertex shifts) to the moments of its (GEN class, PFC
    class, pT bin, |eta| bin) cell: the mean and width of each resolution;
(c) every PFC without a partner (pileup, fakes, and PFCs the matching could not
    pair) adds to a histogram of the number of unmatched PFCs per event, per
    GEN-multiplicity bin, and to histograms of their class, (pT, eta) and vertex.

Memory is bounded by the tables, not the data: each chunk is reduced to bin
counts and moments (:class:`~parnassus.backends.smearing.moments.ShellMoments`)
and then dropped. The resolution is the Gaussian core of the residuals, found
by sigma clipping (see ``moments``), so that rare wrong pairs do not widen it.
"""

from __future__ import annotations

import logging
from typing import Any

import awkward as ak
import numpy as np

from parnassus.backends.smearing import moments, pooling
from parnassus.backends.smearing.binning import Binning, bin_index
from parnassus.backends.smearing.particles import flatten_particles
from parnassus.backends.smearing.model import LOST, N_OUTCOMES, N_RESIDUALS, N_VERTEX, SmearingTables
from parnassus.backends.smearing.moments import ShellMoments
from parnassus.core.detector import DetectorCard
from parnassus.core.events import N_CLASSES, ParticleClass, has_pfc
from parnassus.core.matching import delta_phi, match_particles
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)


class SmearingAccumulator:
    """Fill the raw smearing histograms and moments chunk by chunk.

    Args:
        binning: the bin layout.
        card: the detector card; its ``max_particles`` bounds the unmatched multiplicity.
        match_delta_r: the largest Delta R of a GEN-PFC pair.
    """

    def __init__(self, binning: Binning, card: DetectorCard, match_delta_r: float):
        self.binning = binning
        self.match_delta_r = float(match_delta_r)
        self.max_unmatched = int(card.max_particles)
        c, p, e = N_CLASSES, binning.n_pt, binning.n_eta

        self.outcome_counts = np.zeros((c, p, e, N_OUTCOMES), dtype=np.int64)
        self.resolution = ShellMoments(c * c * p * e, N_RESIDUALS)
        self.multiplicity_counts = np.zeros((binning.n_multiplicity, self.max_unmatched + 1), dtype=np.int64)
        self.unmatched_kinematics_counts = np.zeros(
            (c, binning.n_unmatched_pt, binning.n_unmatched_eta), dtype=np.int64
        )
        self.unmatched_vertex_counts = np.zeros((c, N_VERTEX, binning.n_vertex), dtype=np.int64)

        self.events = 0
        self.gen_particles = 0
        self.pfc_particles = 0
        self.matched_pairs = 0
        self.unmatched_overflow_events = 0

    def update(self, events: ak.Array, source: str = "input") -> None:
        """Add a chunk of preprocessed events with ``gen`` and ``pfc``.

        Args:
            events: events after ``card.preprocess``.
            source: the file name, for error messages.

        Raises:
            InvalidInputError: the events lack PFCs or a particle field, or hold a
                class outside 0-4, a pT that is not positive, or a value that is not finite.
        """
        if not has_pfc(events):
            raise InvalidInputError(f"{source}: the events have no PFCs; the smearing fit needs (GEN, PFC) pairs")
        gen = flatten_particles(events, "gen", source)
        pfc = flatten_particles(events, "pfc", source)
        matching = match_particles(events.gen, events.pfc, self.match_delta_r)

        # Flat positions of the matched pairs in the flattened GEN and PFC arrays.
        pairs = matching.n_pairs
        event_of_pair = np.repeat(np.arange(len(events)), pairs)
        gen_pair = gen["offsets"][event_of_pair] + ak.to_numpy(ak.flatten(matching.gen_index)).astype(np.int64)
        pfc_pair = pfc["offsets"][event_of_pair] + ak.to_numpy(ak.flatten(matching.pfc_index)).astype(np.int64)

        self._add_outcomes(gen, pfc, gen_pair, pfc_pair)
        self._add_residuals(gen, pfc, gen_pair, pfc_pair)
        self._add_unmatched(gen, pfc, pfc_pair)

        self.events += len(events)
        self.gen_particles += len(gen["pt"])
        self.pfc_particles += len(pfc["pt"])
        self.matched_pairs += len(gen_pair)

    def _add_outcomes(self, gen: dict, pfc: dict, gen_pair: np.ndarray, pfc_pair: np.ndarray) -> None:
        outcome = np.full(len(gen["pt"]), LOST, dtype=np.int64)
        outcome[gen_pair] = pfc["class"][pfc_pair]
        ip, ie = self.binning.gen_bins(gen["pt"], gen["eta"])
        cell = np.ravel_multi_index((gen["class"], ip, ie, outcome), self.outcome_counts.shape)
        self.outcome_counts += np.bincount(cell, minlength=self.outcome_counts.size).reshape(self.outcome_counts.shape)

    def _add_residuals(self, gen: dict, pfc: dict, gen_pair: np.ndarray, pfc_pair: np.ndarray) -> None:
        if len(gen_pair) == 0:
            return
        gen_eta = gen["eta"][gen_pair]
        direction = np.where(gen_eta < 0, -1.0, 1.0)
        residuals = np.stack(
            [
                np.log(pfc["pt"][pfc_pair] / gen["pt"][gen_pair]),
                (pfc["eta"][pfc_pair] - gen_eta) * direction,
                delta_phi(pfc["phi"][pfc_pair], gen["phi"][gen_pair]),
                pfc["vx"][pfc_pair] - gen["vx"][gen_pair],
                pfc["vy"][pfc_pair] - gen["vy"][gen_pair],
                pfc["vz"][pfc_pair] - gen["vz"][gen_pair],
            ],
            axis=1,
        )
        ip, ie = self.binning.gen_bins(gen["pt"][gen_pair], gen_eta)
        shape = (N_CLASSES, N_CLASSES, self.binning.n_pt, self.binning.n_eta)
        cell = np.ravel_multi_index((gen["class"][gen_pair], pfc["class"][pfc_pair], ip, ie), shape)
        self.resolution.add(cell, residuals)

    def _add_unmatched(self, gen: dict, pfc: dict, pfc_pair: np.ndarray) -> None:
        unmatched = np.ones(len(pfc["pt"]), dtype=bool)
        unmatched[pfc_pair] = False
        event_of_pfc = np.repeat(np.arange(len(pfc["counts"])), pfc["counts"])
        n_unmatched = np.bincount(event_of_pfc[unmatched], minlength=len(pfc["counts"]))

        overflow = n_unmatched > self.max_unmatched
        self.unmatched_overflow_events += int(np.sum(overflow))
        row = self.binning.multiplicity_bin(gen["counts"])
        cell = np.ravel_multi_index((row, np.minimum(n_unmatched, self.max_unmatched)), self.multiplicity_counts.shape)
        self.multiplicity_counts += np.bincount(cell, minlength=self.multiplicity_counts.size).reshape(
            self.multiplicity_counts.shape
        )

        cls = pfc["class"][unmatched]
        ip = bin_index(pfc["pt"][unmatched], self.binning.unmatched_pt_edges)
        ie = bin_index(pfc["eta"][unmatched], self.binning.unmatched_eta_edges)
        cell = np.ravel_multi_index((cls, ip, ie), self.unmatched_kinematics_counts.shape)
        self.unmatched_kinematics_counts += np.bincount(
            cell, minlength=self.unmatched_kinematics_counts.size
        ).reshape(self.unmatched_kinematics_counts.shape)

        for axis, name in enumerate(("vx", "vy", "vz")):
            iv = bin_index(pfc[name][unmatched], self.binning.vertex_edges)
            cell = np.ravel_multi_index((cls, iv), (N_CLASSES, self.binning.n_vertex))
            counts = np.bincount(cell, minlength=N_CLASSES * self.binning.n_vertex)
            self.unmatched_vertex_counts[:, axis, :] += counts.reshape(N_CLASSES, self.binning.n_vertex)

    def summary(self) -> dict[str, Any]:
        """Return the counts of the fitted data and the raw per-class efficiency, for ``model.yaml``."""
        per_class = self.outcome_counts.sum(axis=(1, 2))
        totals = per_class.sum(axis=1)
        efficiency = {}
        for cls in ParticleClass:
            total = int(totals[cls])
            reconstructed = total - int(per_class[cls, LOST])
            efficiency[cls.label] = {
                "gen_particles": total,
                "matched_fraction": round(reconstructed / total, 6) if total else None,
                "same_class_fraction": round(int(per_class[cls, cls]) / total, 6) if total else None,
            }
        unmatched = int(self.unmatched_kinematics_counts.sum())
        summary = {
            "events": self.events,
            "gen_particles": self.gen_particles,
            "pfc_particles": self.pfc_particles,
            "matched_pairs": self.matched_pairs,
            "unmatched_pfc": unmatched,
            "mean_unmatched_pfc_per_event": round(unmatched / self.events, 6) if self.events else None,
            "gen_classes": efficiency,
        }
        if self.unmatched_overflow_events:
            summary["events_over_max_unmatched"] = self.unmatched_overflow_events
        return summary


def fit_tables(
    accumulator: SmearingAccumulator,
    *,
    min_entries_efficiency: int,
    min_entries_resolution: int,
    min_events_multiplicity: int,
    clip_sigmas: float = 5.0,
) -> SmearingTables:
    """Turn the raw accumulations into the tables the sampler uses, pooling sparse bins.

    Args:
        accumulator: the filled accumulator.
        min_entries_efficiency: GEN particles a cell needs to keep its own efficiency.
        min_entries_resolution: matched pairs a cell needs to keep its own resolution.
        min_events_multiplicity: events a GEN-multiplicity bin needs to keep its own
            unmatched-PFC multiplicity distribution.
        clip_sigmas: half-width of the clipping window of the residuals in standard
            deviations; 0 uses all residuals.

    Returns:
        The fitted :class:`SmearingTables`.
    """
    probability, outcome_level = _fit_outcomes(accumulator.outcome_counts, min_entries_efficiency)
    resolution = _fit_resolution(accumulator, min_entries_resolution, clip_sigmas)
    multiplicity, multiplicity_level = _fit_multiplicity(accumulator.multiplicity_counts, min_events_multiplicity)

    for name, level in (("efficiency", outcome_level), ("resolution", resolution["level"])):
        log.info(
            "%s cells by source: %s",
            name,
            ", ".join(f"{pooling.LEVEL_NAMES[code]} {int(np.sum(level == code))}" for code in pooling.LEVEL_NAMES),
        )

    return SmearingTables(
        binning=accumulator.binning,
        outcome_counts=accumulator.outcome_counts.copy(),
        outcome_probability=probability,
        outcome_level=outcome_level,
        resolution_count=resolution["count"],
        resolution_raw_mean=resolution["raw_mean"],
        resolution_raw_m2=resolution["raw_m2"],
        resolution_mean=resolution["mean"],
        resolution_sigma=resolution["sigma"],
        resolution_level=resolution["level"],
        resolution_window=resolution["window"],
        resolution_window_edges=moments.SHELL_EDGES.copy(),
        multiplicity_counts=accumulator.multiplicity_counts.copy(),
        multiplicity_probability=multiplicity,
        multiplicity_level=multiplicity_level,
        unmatched_kinematics_counts=accumulator.unmatched_kinematics_counts.copy(),
        unmatched_vertex_counts=accumulator.unmatched_vertex_counts.copy(),
    )


def _fit_outcomes(counts: np.ndarray, min_entries: int) -> tuple[np.ndarray, np.ndarray]:
    """Efficiency and migration probabilities (C, P, E, O) and the pooling level of each cell."""
    pooled, level = pooling.pool_counts(counts, min_entries)

    # A GEN class absent from the training data borrows the cells of all classes together.
    all_classes, _ = pooling.pool_counts(counts.sum(axis=0, keepdims=True), min_entries)
    for cls in np.flatnonzero(counts.sum(axis=(1, 2, 3)) == 0):
        pooled[cls] = all_classes[0]
        level[cls] = np.where(all_classes[0].sum(axis=-1) > 0, pooling.OTHER_GROUPS, pooling.EMPTY)

    totals = pooled.sum(axis=-1, keepdims=True)
    probability = np.divide(pooled, totals, out=np.zeros_like(pooled), where=totals > 0)
    # Without any GEN particle there is nothing to reconstruct: count such cells as lost.
    probability[..., LOST] = np.where(totals[..., 0] > 0, probability[..., LOST], 1.0)
    return probability, level


def _fit_resolution(accumulator: SmearingAccumulator, min_entries: int, clip_sigmas: float) -> dict[str, np.ndarray]:
    """Means and widths of the residuals per (GEN class, PFC class, pT bin, |eta| bin).

    Sparse cells are pooled on the shell moments, then each cell's window is
    chosen by clipping, so pooled and own cells are treated alike.
    """
    c, p, e = N_CLASSES, accumulator.binning.n_pt, accumulator.binning.n_eta
    shells = accumulator.resolution
    features = moments.N_SHELLS * N_RESIDUALS
    n = shells.n.reshape(c * c, p, e, features).astype(np.float64)
    mean = shells.mean.reshape(c * c, p, e, features)
    m2 = shells.m2.reshape(c * c, p, e, features)
    # Every pair adds one entry per residual: the entries of a cell are those of its first residual.
    entries = shells.n[:, :, 0].sum(axis=1).reshape(c * c, p, e).astype(np.float64)
    pooled_n, pooled_mean, pooled_m2, level = pooling.pool_moments(entries, n, mean, m2, min_entries)

    # A (GEN class, PFC class) pair never seen borrows from all GEN classes with the same PFC class.
    # It only matters for GEN classes absent from the training data, whose efficiency
    # comes from all classes too; other such pairs have zero probability.
    by_pfc = [
        moments.combine(
            n.reshape(c, c, p, e, features)[:, pfc_class],
            mean.reshape(c, c, p, e, features)[:, pfc_class],
            m2.reshape(c, c, p, e, features)[:, pfc_class],
        )
        for pfc_class in range(c)
    ]
    by_pfc_entries = entries.reshape(c, c, p, e).sum(axis=0)
    by_pfc_pooled = pooling.pool_moments(
        by_pfc_entries,
        np.stack([item[0] for item in by_pfc]),
        np.stack([item[1] for item in by_pfc]),
        np.stack([item[2] for item in by_pfc]),
        min_entries,
    )
    for group in np.flatnonzero(entries.sum(axis=(1, 2)) == 0):
        pfc_class = group % c
        pooled_n[group] = by_pfc_pooled[0][pfc_class]
        pooled_mean[group] = by_pfc_pooled[1][pfc_class]
        pooled_m2[group] = by_pfc_pooled[2][pfc_class]
        has_entries = by_pfc_entries[pfc_class] > 0
        level[group] = np.where(has_entries, pooling.OTHER_GROUPS, pooling.EMPTY)

    # Window moments per residual, windows last; a cell without entries gets no smearing.
    shape = (c * c, p, e, moments.N_SHELLS, N_RESIDUALS)
    window_n, window_mean, window_m2 = moments.windows(
        pooled_n.reshape(shape), pooled_mean.reshape(shape), pooled_m2.reshape(shape), axis=3
    )
    centre, sigma, window = moments.clipped_estimate(
        np.moveaxis(window_n, 3, -1), np.moveaxis(window_mean, 3, -1), np.moveaxis(window_m2, 3, -1), clip_sigmas
    )

    raw_n, raw_mean, raw_m2 = shells.totals()
    return {
        "count": raw_n[:, 0].astype(np.int64).reshape(c, c, p, e),
        "raw_mean": raw_mean.reshape(c, c, p, e, N_RESIDUALS),
        "raw_m2": raw_m2.reshape(c, c, p, e, N_RESIDUALS),
        "mean": centre.reshape(c, c, p, e, N_RESIDUALS),
        "sigma": sigma.reshape(c, c, p, e, N_RESIDUALS),
        "window": window.astype(np.int8).reshape(c, c, p, e, N_RESIDUALS),
        "level": level.reshape(c, c, p, e),
    }


def _fit_multiplicity(counts: np.ndarray, min_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Distribution of the unmatched-PFC multiplicity per GEN-multiplicity bin, (G, M + 1)."""
    pooled, level = pooling.pool_rows(counts, min_events)
    totals = pooled.sum(axis=1, keepdims=True)
    probability = np.divide(pooled, totals, out=np.zeros_like(pooled), where=totals > 0)
    # Without any training event the model adds no unmatched PFC.
    probability[:, 0] = np.where(totals[:, 0] > 0, probability[:, 0], 1.0)
    level = np.where(totals[:, 0] > 0, level, pooling.EMPTY).astype(np.int8)
    return probability, level
