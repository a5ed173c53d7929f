"""Delta R and one-to-one matching of two particle (or jet) collections per event.

The matching is the optimal assignment (Hungarian algorithm,
:func:`scipy.optimize.linear_sum_assignment`) on the Delta R cost matrix of each
event, with pairs farther apart than a maximum Delta R forbidden, as used for
the GEN-PFC and GEN-jet-PFC-jet comparisons of arXiv:2503.19981.

Forbidden pairs get a cost larger than any sum of allowed costs, so the
assignment first maximises the number of allowed pairs and then, among those,
minimises the summed Delta R. Pairs that still land on a forbidden entry (when
some object has no partner in reach) are discarded.

Only numpy, scipy and awkward are used: no fastjet, no torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import awkward as ak
import numpy as np
from scipy.optimize import linear_sum_assignment

log = logging.getLogger(__name__)


def delta_phi(phi1, phi2):
    """Return phi1 - phi2 wrapped into [-pi, pi) (rad).

    Works on numpy arrays, scalars and awkward arrays (broadcasting as they do).
    """
    return (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi


def delta_r(eta1, phi1, eta2, phi2):
    """Return Delta R = sqrt((eta1 - eta2)^2 + (Delta phi)^2), Delta phi wrapped into [-pi, pi).

    Args:
        eta1, phi1: pseudorapidity and azimuth (rad) of the first objects.
        eta2, phi2: the same for the second objects; broadcast against the first.

    Returns:
        Delta R with the broadcast shape of the inputs.

    >>> round(float(delta_r(0.0, 3.1, 0.0, -3.1)), 4)
    0.0832
    """
    d_eta = eta1 - eta2
    d_phi = delta_phi(phi1, phi2)
    return np.sqrt(d_eta * d_eta + d_phi * d_phi)


def delta_r_matrix(eta1: np.ndarray, phi1: np.ndarray, eta2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """Return the Delta R matrix of shape ``(len(eta1), len(eta2))`` between two sets of objects."""
    return delta_r(
        np.asarray(eta1, dtype=np.float64)[:, None],
        np.asarray(phi1, dtype=np.float64)[:, None],
        np.asarray(eta2, dtype=np.float64)[None, :],
        np.asarray(phi2, dtype=np.float64)[None, :],
    )


@dataclass(frozen=True)
class Matching:
    """Matched pairs of a per-event one-to-one matching between GEN and PFC objects.

    All jagged arrays have one list per event and are aligned: the k-th pair of
    event i is ``(gen_index[i][k], pfc_index[i][k])`` at distance
    ``delta_r[i][k]``. Pairs are sorted by GEN index within an event. Indices
    point into the per-event lists that were passed to :func:`match_particles`.

    Attributes:
        gen_index: jagged int64, index of the matched GEN object.
        pfc_index: jagged int64, index of the matched PFC object.
        delta_r: jagged float64, Delta R of each pair.
        n_gen: int64 array (events,), number of GEN objects per event.
        n_pfc: int64 array (events,), number of PFC objects per event.
        max_delta_r: the largest Delta R allowed for a pair.
    """

    gen_index: ak.Array
    pfc_index: ak.Array
    delta_r: ak.Array
    n_gen: np.ndarray
    n_pfc: np.ndarray
    max_delta_r: float

    def __len__(self) -> int:
        return len(self.n_gen)

    @property
    def n_pairs(self) -> np.ndarray:
        """Number of matched pairs per event, int64 array (events,)."""
        return ak.to_numpy(ak.num(self.gen_index, axis=1)).astype(np.int64)

    def gen_matched(self) -> ak.Array:
        """Jagged bool with the structure of the GEN input: True where the GEN object is matched."""
        return _matched_mask(self.gen_index, self.n_gen)

    def pfc_matched(self) -> ak.Array:
        """Jagged bool with the structure of the PFC input: True where the PFC object is matched."""
        return _matched_mask(self.pfc_index, self.n_pfc)


def _matched_mask(index: ak.Array, counts: np.ndarray) -> ak.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat_mask = np.zeros(offsets[-1], dtype=bool)
    pair_counts = ak.to_numpy(ak.num(index, axis=1))
    event_of_pair = np.repeat(np.arange(len(counts)), pair_counts)
    flat_mask[offsets[event_of_pair] + ak.to_numpy(ak.flatten(index))] = True
    return ak.unflatten(flat_mask, counts)


def _flat_eta_phi(objects: ak.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = ak.to_numpy(ak.num(objects, axis=1)).astype(np.int64)
    eta = ak.to_numpy(ak.flatten(objects.eta)).astype(np.float64)
    phi = ak.to_numpy(ak.flatten(objects.phi)).astype(np.float64)
    return counts, eta, phi


def match_event(
    gen_eta: np.ndarray, gen_phi: np.ndarray, pfc_eta: np.ndarray, pfc_phi: np.ndarray, max_delta_r: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Match the objects of one event one-to-one, minimising the summed Delta R.

    Args:
        gen_eta, gen_phi: arrays (n_gen,) of the first collection.
        pfc_eta, pfc_phi: arrays (n_pfc,) of the second collection.
        max_delta_r: pairs with Delta R > max_delta_r are forbidden.

    Returns:
        ``(gen_index, pfc_index, delta_r)``, each of shape (pairs,), sorted by GEN index.
    """
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    if len(gen_eta) == 0 or len(pfc_eta) == 0:
        return empty

    distance = delta_r_matrix(gen_eta, gen_phi, pfc_eta, pfc_phi)
    allowed = distance <= max_delta_r

    # Objects without any partner in reach cannot be matched: dropping them first
    # shrinks the matrix (the Hungarian algorithm is cubic) without changing the result.
    rows = np.flatnonzero(allowed.any(axis=1))
    columns = np.flatnonzero(allowed.any(axis=0))
    if len(rows) == 0:
        return empty
    distance = distance[np.ix_(rows, columns)]
    allowed = allowed[np.ix_(rows, columns)]

    # A forbidden pair costs more than the largest possible sum of allowed pairs,
    # so no assignment trades an allowed pair for a forbidden one.
    forbidden_cost = 1.0 + max_delta_r * min(distance.shape) * 2.0
    cost = np.where(allowed, distance, forbidden_cost)
    row_index, column_index = linear_sum_assignment(cost)

    keep = allowed[row_index, column_index]
    gen_index = rows[row_index[keep]]
    pfc_index = columns[column_index[keep]]
    return gen_index, pfc_index, distance[row_index[keep], column_index[keep]]


def match_particles(gen: ak.Array, pfc: ak.Array, max_delta_r: float) -> Matching:
    """Match GEN and PFC objects one-to-one in every event (Hungarian algorithm on Delta R).

    Args:
        gen: jagged records with ``eta`` and ``phi`` fields, one list per event
            (GEN particles or GEN jets).
        pfc: jagged records with ``eta`` and ``phi``, the same number of events
            (PFCs or PFC jets).
        max_delta_r: the largest Delta R of an allowed pair; farther pairs are
            never matched.

    Returns:
        A :class:`Matching` with the aligned jagged pair indices and distances.

    Raises:
        ValueError: when the two collections have different numbers of events or
            max_delta_r is not positive.
    """
    if len(gen) != len(pfc):
        raise ValueError(f"cannot match {len(gen)} GEN events with {len(pfc)} PFC events")
    if not max_delta_r > 0:
        raise ValueError(f"max_delta_r must be positive, got {max_delta_r}")

    n_gen, gen_eta, gen_phi = _flat_eta_phi(gen)
    n_pfc, pfc_eta, pfc_phi = _flat_eta_phi(pfc)
    gen_offsets = np.concatenate([[0], np.cumsum(n_gen)])
    pfc_offsets = np.concatenate([[0], np.cumsum(n_pfc)])

    n_events = len(n_gen)
    pair_counts = np.zeros(n_events, dtype=np.int64)
    gen_parts, pfc_parts, distance_parts = [], [], []
    for event in np.flatnonzero((n_gen > 0) & (n_pfc > 0)):
        g = slice(gen_offsets[event], gen_offsets[event + 1])
        p = slice(pfc_offsets[event], pfc_offsets[event + 1])
        gen_index, pfc_index, distance = match_event(gen_eta[g], gen_phi[g], pfc_eta[p], pfc_phi[p], max_delta_r)
        pair_counts[event] = len(gen_index)
        gen_parts.append(gen_index)
        pfc_parts.append(pfc_index)
        distance_parts.append(distance)

    def jagged(parts, dtype):
        flat = np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype)
        return ak.unflatten(flat, pair_counts)

    return Matching(
        gen_index=jagged(gen_parts, np.int64),
        pfc_index=jagged(pfc_parts, np.int64),
        delta_r=jagged(distance_parts, np.float64),
        n_gen=n_gen,
        n_pfc=n_pfc,
        max_delta_r=float(max_delta_r),
    )
