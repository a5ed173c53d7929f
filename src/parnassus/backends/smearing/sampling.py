"""Sampling of PFCs from GEN particles with the fitted smearing tables.

Every GEN particle is treated on its own, as DELPHES does (arXiv:1307.6346):

1. its outcome is drawn from the efficiency and migration probabilities of its
   (class, pT, |eta|) cell: reconstructed as PFC class k, or lost;
2. a reconstructed particle gets pT_PFC = pT_GEN exp(r), with r Gaussian
   (log-normal pT), and Gaussian shifts of eta, phi and the vertex, with the
   means and widths of its (GEN class, PFC class, pT, |eta|) cell.

The efficiencies are measured on PFCs inside the card's PFC selection, so they
already contain the probability of passing it. To keep them exact, r and the
eta shift are drawn from their Gaussians truncated to the selection
(pT_PFC > pT_min, |eta_PFC| < eta_max) rather than drawn freely and cut.

Then the unmatched PFCs (pileup, fakes) are added. Their number per event is
drawn from the fitted distribution of the event's GEN-multiplicity bin. Their
class and (pT, eta) bin come from the joint histogram, with pT log-uniform and
eta uniform inside the bin. Phi is uniform, and each vertex coordinate is drawn
from the histogram of the class. Finally the card's PFC selection, the maximum multiplicity (hardest
PFCs kept) and ``card.finalise_pfc`` are applied. No event is dropped: an event
may end with no PFC.
"""

from __future__ import annotations

import logging
import time

import awkward as ak
import numpy as np
from scipy.special import ndtr, ndtri

from parnassus.backends.smearing.binning import VERTEX_SCALE
from parnassus.backends.smearing.model import LOST, SmearingTables
from parnassus.backends.smearing.particles import flatten_particles
from parnassus.core import events as ev
from parnassus.core.backend import SamplingReport
from parnassus.core.detector import DetectorCard
from parnassus.core.progress import RateLogger
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)

#: Relative margin that keeps a sampled pT and |eta| strictly inside the PFC
#: selection after rounding to float32 (whose relative precision is 6e-8).
SELECTION_MARGIN = 1e-5

#: Counters reported in ``SamplingReport.details``.
COUNTERS = ("gen_particles", "lost", "migrated", "unmatched_added", "removed_by_selection", "truncated_events")


def sample_events(
    tables: SmearingTables, card: DetectorCard, gen_events: ak.Array, *, seed: int, batch_size: int
) -> tuple[ak.Array, SamplingReport]:
    """Sample PFCs for every event, batch by batch, with one numpy Generator.

    Args:
        tables: the fitted tables.
        card: the detector card (PFC selection, maximum multiplicity, vertex convention).
        gen_events: events with a ``gen`` field, after ``card.preprocess``.
        seed: the seed of :func:`numpy.random.default_rng`.
        batch_size: events per batch.

    Returns:
        ``(events, report)``: the input events with a ``pfc`` field (an existing one
        is replaced), and the counts of lost, migrated and added particles in
        ``report.details``.

    Raises:
        InvalidInputError: the events have no ``gen`` field, or a GEN particle has a
            class outside 0-4, a pT that is not positive or a value that is not finite.
    """
    if not isinstance(gen_events, ak.Array) or "gen" not in ak.fields(gen_events):
        raise InvalidInputError("the smearing model needs events with a 'gen' field (see parnassus.core.events)")
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}")

    rng = np.random.default_rng(seed)
    report = SamplingReport()
    counters = dict.fromkeys(COUNTERS, 0)
    rate = RateLogger(log, len(gen_events), "smearing")
    start = time.perf_counter()

    parts = []
    for first in range(0, max(len(gen_events), 1), batch_size):
        batch = gen_events[first : first + batch_size]
        pfc, batch_counters = smear_batch(tables, card, batch, rng)
        parts.append(pfc)
        for key, value in batch_counters.items():
            counters[key] += value
        rate.update(len(batch))

    pfc = parts[0] if len(parts) == 1 else ak.concatenate(parts)
    event_number = gen_events.event_number if "event_number" in ak.fields(gen_events) else None
    result = ev.make_events(gen_events.gen, pfc, event_number)

    report.events = len(gen_events)
    report.particle_stage_seconds = time.perf_counter() - start
    report.details.update(counters)
    if counters["truncated_events"]:
        log.warning(
            "%d events had more than %d PFCs after smearing; kept the hardest ones",
            counters["truncated_events"],
            card.max_particles,
        )
    log.debug("smearing: %s", rate.status())
    return result, report


def smear_batch(
    tables: SmearingTables, card: DetectorCard, batch: ak.Array, rng: np.random.Generator
) -> tuple[ak.Array, dict[str, int]]:
    """Sample the PFCs of one batch of events.

    Returns:
        The jagged PFC records of the batch (one list per event) and the counters
        named in :data:`COUNTERS`.
    """
    gen = flatten_particles(batch, "gen", "GEN input")
    n_events = len(gen["counts"])
    event_of_gen = np.repeat(np.arange(n_events), gen["counts"])

    ip, ie = tables.binning.gen_bins(gen["pt"], gen["eta"])
    outcome = draw_categorical(rng, tables.outcome_probability[gen["class"], ip, ie])
    reconstructed = outcome != LOST

    smeared = smear_particles(tables, card, gen, reconstructed, outcome, ip, ie, rng)
    smeared["event"] = event_of_gen[reconstructed]
    unmatched = draw_unmatched(tables, card, gen["counts"], rng)

    pfc = _assemble(n_events, [smeared, unmatched])
    selected = ev.sort_by_pt(card.pfc_selection.apply(pfc))
    n_selected = ak.to_numpy(ak.num(selected, axis=1))
    over_maximum = n_selected > card.max_particles
    pfc = card.finalise_pfc(selected[:, : card.max_particles])

    counters = {
        "gen_particles": len(gen["pt"]),
        "lost": int(np.sum(~reconstructed)),
        "migrated": int(np.sum(reconstructed & (outcome != gen["class"]))),
        "unmatched_added": len(unmatched["pt"]),
        "removed_by_selection": len(smeared["pt"]) + len(unmatched["pt"]) - int(np.sum(n_selected)),
        "truncated_events": int(np.sum(over_maximum)),
    }
    return pfc, counters


def draw_categorical(rng: np.random.Generator, probability: np.ndarray) -> np.ndarray:
    """Draw one category per row.

    Args:
        rng: the random generator.
        probability: (rows, categories), each row summing to 1.

    Returns:
        int64 (rows,), the drawn category; a category of probability 0 is never drawn.
    """
    cdf = np.cumsum(probability, axis=1)
    if cdf.shape[0]:
        cdf[:, -1] = 1.0
    u = rng.random(cdf.shape[0])
    return np.sum(u[:, None] >= cdf, axis=1).astype(np.int64)


def truncated_normal(
    rng: np.random.Generator, mean: np.ndarray, sigma: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """Draw from Gaussians truncated to [lower, upper] by inverting their CDF.

    With a = (lower - mean) / sigma and b = (upper - mean) / sigma, the draw is
    mean + sigma Phi^-1(Phi(a) + u (Phi(b) - Phi(a))), u uniform in [0, 1). The
    side of the Gaussian where Phi is small is used (a draw on the upper tail is
    mirrored), so bounds up to about 37 sigma away stay accurate. A bound that
    lies even farther out, or sigma = 0, yields the nearest allowed value.

    Args:
        rng: the random generator.
        mean, sigma, lower, upper: float arrays of equal shape; bounds may be +-inf.

    Returns:
        float64 array of the same shape.
    """
    mean, sigma = np.asarray(mean, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    lower, upper = np.broadcast_to(lower, mean.shape), np.broadcast_to(upper, mean.shape)
    u = rng.random(mean.shape)
    width = np.where(sigma > 0, sigma, 1.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a = (lower - mean) / width
        b = (upper - mean) / width
        mirror = a > 0
        low = np.where(mirror, -b, a)
        high = np.where(mirror, -a, b)
        p_low, p_high = ndtr(low), ndtr(high)
        # Both bounds beyond the reach of float64 in the tail: take the bound nearer the mean.
        z = np.where(p_high > p_low, ndtri(p_low + u * (p_high - p_low)), high)
        z = np.where(mirror, -z, z)
    z = np.clip(z, a, b)
    values = mean + sigma * np.where(sigma > 0, z, 0.0)
    return np.clip(values, lower, upper)


def smear_particles(
    tables: SmearingTables,
    card: DetectorCard,
    gen: dict[str, np.ndarray],
    reconstructed: np.ndarray,
    outcome: np.ndarray,
    ip: np.ndarray,
    ie: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Smear the reconstructed GEN particles into PFCs.

    Args:
        tables: the fitted tables.
        card: the detector card (PFC selection).
        gen: flat GEN arrays (see ``flatten_particles``).
        reconstructed: bool (particles,), which GEN particles yield a PFC.
        outcome: int (particles,), the drawn PFC class (or LOST).
        ip, ie: int (particles,), the GEN (pT, |eta|) bins.
        rng: the random generator.

    Returns:
        Flat PFC arrays ``pt``, ``eta``, ``phi``, ``vx``, ``vy``, ``vz``, ``class``,
        one entry per reconstructed particle, in GEN order.
    """
    gen_class = gen["class"][reconstructed]
    pfc_class = outcome[reconstructed]
    cell = (gen_class, pfc_class, ip[reconstructed], ie[reconstructed])
    mean = tables.resolution_mean[cell]
    sigma = tables.resolution_sigma[cell]

    pt = gen["pt"][reconstructed]
    eta = gen["eta"][reconstructed]
    pt_limit, eta_limit = _selection_limits(card)

    with np.errstate(divide="ignore"):
        lowest_log_ratio = np.log(pt_limit / pt) if pt_limit > 0 else np.full(len(pt), -np.inf)
    log_ratio = truncated_normal(rng, mean[:, 0], sigma[:, 0], lowest_log_ratio, np.inf)

    # The eta shift is fitted positive away from eta = 0; its bounds follow from |eta_PFC| < eta_limit.
    direction = np.where(eta < 0, -1.0, 1.0)
    shift_low = np.where(direction > 0, -eta_limit - eta, eta - eta_limit)
    shift_high = np.where(direction > 0, eta_limit - eta, eta + eta_limit)
    eta_shift = truncated_normal(rng, mean[:, 1], sigma[:, 1], shift_low, shift_high)

    phi_shift = mean[:, 2] + sigma[:, 2] * rng.standard_normal(len(pt))
    vertex_shift = mean[:, 3:6] + sigma[:, 3:6] * rng.standard_normal((len(pt), 3))

    return {
        "pt": pt * np.exp(log_ratio),
        "eta": eta + direction * eta_shift,
        "phi": ev.wrap_phi(gen["phi"][reconstructed] + phi_shift),
        "vx": gen["vx"][reconstructed] + vertex_shift[:, 0],
        "vy": gen["vy"][reconstructed] + vertex_shift[:, 1],
        "vz": gen["vz"][reconstructed] + vertex_shift[:, 2],
        "class": pfc_class,
    }


def draw_unmatched(
    tables: SmearingTables, card: DetectorCard, n_gen: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draw the unmatched PFCs (pileup and fakes) of every event.

    Args:
        tables: the fitted tables.
        card: the detector card (PFC selection).
        n_gen: int (events,), the GEN multiplicity of each event.
        rng: the random generator.

    Returns:
        Flat PFC arrays as :func:`smear_particles` returns, plus ``event`` (the
        event index of each PFC, in increasing order).
    """
    n_unmatched = _draw_multiplicity(tables, n_gen, rng)
    kinematics = tables.unmatched_kinematics_counts
    if n_unmatched.sum() and kinematics.sum() == 0:
        log.warning("the smearing tables hold an unmatched multiplicity but no unmatched PFC; adding none")
        n_unmatched[:] = 0
    total = int(n_unmatched.sum())
    binning = tables.binning

    cumulative = np.cumsum(kinematics.ravel())
    cell = np.searchsorted(cumulative, rng.random(total) * cumulative[-1], side="right") if total else np.zeros(0, int)
    cls, ip, ie = np.unravel_index(cell, kinematics.shape)

    pt_limit, eta_limit = _selection_limits(card)
    log_pt = rng.uniform(np.log(binning.unmatched_pt_edges[ip]), np.log(binning.unmatched_pt_edges[ip + 1]))
    eta = rng.uniform(binning.unmatched_eta_edges[ie], binning.unmatched_eta_edges[ie + 1])
    phi = rng.uniform(-np.pi, np.pi, total)

    particles = {
        "pt": np.maximum(np.exp(log_pt), pt_limit),
        "eta": np.clip(eta, -eta_limit, eta_limit),
        "phi": ev.wrap_phi(phi),
        "class": cls.astype(np.int64),
        "event": np.repeat(np.arange(len(n_gen)), n_unmatched),
    }
    for axis, name in enumerate(("vx", "vy", "vz")):
        particles[name] = _draw_vertex(tables, cls, axis, rng)
    return particles


def _draw_multiplicity(tables: SmearingTables, n_gen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw the number of unmatched PFCs of each event from its GEN-multiplicity bin."""
    row = tables.binning.multiplicity_bin(n_gen)
    n_unmatched = np.zeros(len(n_gen), dtype=np.int64)
    for value in np.unique(row):
        events = np.flatnonzero(row == value)
        cdf = np.cumsum(tables.multiplicity_probability[value])
        draws = np.searchsorted(cdf, rng.random(len(events)) * cdf[-1], side="right")
        n_unmatched[events] = np.minimum(draws, tables.max_unmatched)
    return n_unmatched


def _draw_vertex(tables: SmearingTables, cls: np.ndarray, axis: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one vertex coordinate per unmatched PFC from its class's histogram.

    Inside a bin the value is uniform in asinh(v / VERTEX_SCALE), the variable in
    which the bins are uniform.
    """
    counts = tables.unmatched_vertex_counts[:, axis, :]
    n_bins = counts.shape[1]
    cumulative = np.cumsum(counts.ravel()).astype(np.float64)
    class_start = np.concatenate([[0.0], cumulative[n_bins - 1 :: n_bins][:-1]])
    class_total = counts.sum(axis=1).astype(np.float64)

    # A position uniform inside the class's share of the cumulative counts picks a bin of that class.
    position = class_start[cls] + rng.random(len(cls)) * class_total[cls]
    flat_bin = np.minimum(np.searchsorted(cumulative, position, side="right"), counts.size - 1)
    vertex_bin = flat_bin - cls * n_bins
    vertex_bin = np.clip(vertex_bin, 0, n_bins - 1)

    edges = np.arcsinh(tables.binning.vertex_edges / VERTEX_SCALE)
    u = rng.uniform(edges[vertex_bin], edges[vertex_bin + 1])
    values = VERTEX_SCALE * np.sinh(u)
    # A class without any unmatched vertex entry is never drawn; guard against it anyway.
    return np.where(class_total[cls] > 0, values, 0.0)


def _selection_limits(card: DetectorCard) -> tuple[float, float]:
    """Return pT (GeV) and |eta| limits strictly inside the card's PFC selection."""
    pt_min = card.pfc_selection.pt_min
    pt_limit = pt_min * (1 + SELECTION_MARGIN) if pt_min > 0 else 0.0
    eta_max = card.pfc_selection.abs_eta_max
    eta_limit = eta_max * (1 - SELECTION_MARGIN) if np.isfinite(eta_max) else np.inf
    return pt_limit, eta_limit


def _assemble(n_events: int, parts: list[dict[str, np.ndarray]]) -> ak.Array:
    """Join flat PFC arrays with event indices into jagged particle records, one list per event."""
    event = np.concatenate([part["event"] for part in parts])
    order = np.argsort(event, kind="stable")
    counts = np.bincount(event, minlength=n_events)
    jagged = {
        name: ak.unflatten(np.concatenate([part[name] for part in parts])[order], counts)
        for name in ("pt", "eta", "phi", "vx", "vy", "vz", "class")
    }
    return ev.make_particles(**{("cls" if name == "class" else name): values for name, values in jagged.items()})
