"""Jets for the evaluation: anti-kt clustering with fastjet, GEN-PFC jet matching,
and the C2 and D2 substructure of the leading jet.

The choices follow the evaluation of arXiv:2503.19981: anti-kt with R = 0.5, PFC
jets matched to GEN jets with the Hungarian algorithm on Delta R, pairs with
Delta R > 0.2 forbidden, C2 and D2 (beta = 1) of the leading jet only.

Particles are taken as massless four-vectors built from (pT, eta, phi), so a
particle's rapidity equals its pseudorapidity and fastjet's Delta R (in rapidity
and phi) is the Delta R of the particle records.

fastjet is imported inside the functions that cluster, so importing this module
is cheap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import awkward as ak
import numpy as np

from parnassus.core.matching import Matching, match_particles
from parnassus.exceptions import MissingDependencyError

log = logging.getLogger(__name__)

#: Anti-kt distance parameter of arXiv:2503.19981.
JET_RADIUS = 0.5

#: Largest Delta R of a GEN-PFC jet pair (arXiv:2503.19981).
JET_MATCH_MAX_DELTA_R = 0.2

#: Default minimum jet pT (GeV). arXiv:2503.19981 does not state its jet pT threshold.
DEFAULT_JET_PT_MIN = 10.0

#: The angular exponent of the energy correlation functions.
ECF_BETA = 1.0

# Cambridge/Aachen radius used to merge the constituents of one anti-kt jet back into a
# single exclusive jet for fastjet's energy correlators. Constituents of an R = 0.5 jet
# are at most 2R = 1.0 apart, so every pairwise merge happens before any beam merge.
_RECLUSTER_RADIUS = 1.5


def _fastjet():
    try:
        import fastjet
        import vector
    except ImportError as error:
        raise MissingDependencyError(
            f"jet clustering needs fastjet and vector ({error}); install them with "
            "`pip install 'parnassus[evaluation]'`"
        ) from error
    vector.register_awkward()
    return fastjet


def _four_vectors(particles: ak.Array) -> ak.Array:
    """Massless Momentum4D records (px, py, pz, E in GeV) from pT, eta, phi."""
    pt = ak.values_astype(particles.pt, np.float64)
    eta = ak.values_astype(particles.eta, np.float64)
    phi = ak.values_astype(particles.phi, np.float64)
    return ak.zip(
        {"px": pt * np.cos(phi), "py": pt * np.sin(phi), "pz": pt * np.sinh(eta), "E": pt * np.cosh(eta)},
        with_name="Momentum4D",
    )


@dataclass(frozen=True)
class Jets:
    """Jets of each event, sorted by decreasing pT.

    Attributes:
        pt: jagged (events, jets) jet pT in GeV.
        eta: jagged (events, jets) jet pseudorapidity.
        phi: jagged (events, jets) jet azimuth in rad, in (-pi, pi].
        mass: jagged (events, jets) jet mass in GeV.
        constituents: jagged (events, jets, constituents) indices into the event's
            particle list that was clustered.
        n_particles: int64 (events,), the number of particles that were clustered.
    """

    pt: ak.Array
    eta: ak.Array
    phi: ak.Array
    mass: ak.Array
    constituents: ak.Array
    n_particles: np.ndarray

    def __len__(self) -> int:
        return len(self.pt)

    @property
    def n_jets(self) -> np.ndarray:
        """Number of jets per event, int64 (events,)."""
        return ak.to_numpy(ak.num(self.pt, axis=1)).astype(np.int64)

    @property
    def n_constituents(self) -> ak.Array:
        """Jagged (events, jets) number of constituents of each jet."""
        return ak.num(self.constituents, axis=2)

    def records(self) -> ak.Array:
        """Jagged jet records with ``pt``, ``eta``, ``phi`` and ``mass``, usable by :func:`match_particles`."""
        return ak.zip({"pt": self.pt, "eta": self.eta, "phi": self.phi, "mass": self.mass})

    def in_jets(self) -> ak.Array:
        """Jagged bool with the structure of the clustered particles: True for jet constituents."""
        offsets = np.zeros(len(self.n_particles) + 1, dtype=np.int64)
        np.cumsum(self.n_particles, out=offsets[1:])
        flat = np.zeros(offsets[-1], dtype=bool)

        per_event = ak.flatten(self.constituents, axis=2)
        counts = ak.to_numpy(ak.num(per_event, axis=1))
        event_of_index = np.repeat(np.arange(len(counts)), counts)
        flat[offsets[event_of_index] + ak.to_numpy(ak.flatten(per_event))] = True
        return ak.unflatten(flat, self.n_particles)


def cluster_jets(particles: ak.Array, radius: float = JET_RADIUS, pt_min: float = DEFAULT_JET_PT_MIN) -> Jets:
    """Cluster the particles of each event into anti-kt jets with fastjet.

    Args:
        particles: jagged particle records with ``pt`` (GeV), ``eta``, ``phi`` (rad).
        radius: the anti-kt distance parameter R.
        pt_min: the minimum jet pT in GeV.

    Returns:
        :class:`Jets` sorted by decreasing pT, with the constituent indices.
    """
    fastjet = _fastjet()
    vectors = _four_vectors(particles)
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)
    sequence = fastjet.ClusterSequence(vectors, definition)

    jets = sequence.inclusive_jets(pt_min)
    constituents = sequence.constituent_index(pt_min)

    jets = ak.zip({"px": jets.px, "py": jets.py, "pz": jets.pz, "E": jets.E}, with_name="Momentum4D")
    order = ak.argsort(jets.pt, axis=1, ascending=False)
    jets = jets[order]
    constituents = ak.values_astype(constituents[order], np.int64)

    # An empty jet list has no 4-vector behaviour to compute eta from; pt > 0 for every
    # jet above pt_min, so eta and phi are well defined wherever a jet exists.
    return Jets(
        pt=ak.values_astype(jets.pt, np.float64),
        eta=ak.values_astype(jets.eta, np.float64),
        phi=ak.values_astype(jets.phi, np.float64),
        mass=ak.values_astype(jets.mass, np.float64),
        constituents=constituents,
        n_particles=ak.to_numpy(ak.num(particles, axis=1)).astype(np.int64),
    )


def match_jets(gen_jets: Jets, pfc_jets: Jets, max_delta_r: float = JET_MATCH_MAX_DELTA_R) -> Matching:
    """Match PFC jets to GEN jets per event (Hungarian on Delta R, pairs beyond max_delta_r forbidden)."""
    return match_particles(gen_jets.records(), pfc_jets.records(), max_delta_r)


def leading_jet_constituents(particles: ak.Array, jets: Jets) -> ak.Array:
    """Return the constituent particles of the leading jet of each event (empty list when no jet)."""
    first = ak.fill_none(ak.firsts(jets.constituents, axis=1), [], axis=0)
    return particles[ak.values_astype(first, np.int64)]


def substructure(constituents: ak.Array, beta: float = ECF_BETA) -> dict[str, np.ndarray]:
    """Compute C2 and D2 of one jet per event from its constituents, with fastjet's energy correlators.

    With the normalised energy correlation functions (pT and Delta R measure)

        e_N = sum_{i1 < ... < iN} (prod_a pT_ia / sum_k pT_k) (prod_{a<b} Delta R_ia,ib)^beta,

    C2 = e3 / e2^2 and D2 = e3 / e2^3 (arXiv:1305.0007, arXiv:1409.6298). fastjet's
    ``EnergyCorrelatorC2`` and ``EnergyCorrelatorD2`` (fjcontrib, measure pt_R)
    compute exactly these, and :func:`substructure_numpy` is the same in numpy.

    Args:
        constituents: jagged (events, constituents) particle records of one jet per event.
        beta: the angular exponent.

    Returns:
        dict with ``c2`` and ``d2``, float64 (events,): NaN where the jet has fewer than
        two constituents (undefined; fastjet cannot build exclusive jets there), and 0
        for two constituents (e3 = 0).
    """
    fastjet = _fastjet()
    n_events = len(constituents)
    c2 = np.full(n_events, np.nan)
    d2 = np.full(n_events, np.nan)

    counts = ak.to_numpy(ak.num(constituents, axis=1))
    usable = np.flatnonzero(counts >= 2)
    if len(usable) == 0:
        return {"c2": c2, "d2": d2}

    vectors = _four_vectors(constituents[usable])
    definition = fastjet.JetDefinition(fastjet.cambridge_algorithm, _RECLUSTER_RADIUS)
    sequence = fastjet.ClusterSequence(vectors, definition)
    c2[usable] = ak.to_numpy(sequence.exclusive_jets_energy_correlator(njets=1, beta=beta, func="c2"))
    d2[usable] = ak.to_numpy(sequence.exclusive_jets_energy_correlator(njets=1, beta=beta, func="d2"))
    return {"c2": c2, "d2": d2}


def substructure_numpy(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, beta: float = ECF_BETA) -> tuple[float, float]:
    """Compute C2 and D2 of one jet from its constituents in numpy (the definition of :func:`substructure`).

    Cost is O(n^3) in the number of constituents; used to cross-check fastjet.

    Args:
        pt, eta, phi: arrays (constituents,), pT in GeV and angles in rad.
        beta: the angular exponent.

    Returns:
        (C2, D2); NaN for fewer than two constituents.
    """
    from parnassus.core.matching import delta_r_matrix

    pt = np.asarray(pt, dtype=np.float64)
    if len(pt) < 2:
        return float("nan"), float("nan")
    z = pt / pt.sum()
    angle = delta_r_matrix(eta, phi, eta, phi) ** beta

    # e2 sums every unordered pair once: half the full double sum (diagonal is 0).
    e2 = 0.5 * np.einsum("i,j,ij->", z, z, angle)

    # e3 over unordered triples: the full triple sum counts each triple 3! times, and
    # terms with a repeated index vanish because the diagonal angle is 0.
    e3 = np.einsum("i,j,k,ij,ik,jk->", z, z, z, angle, angle, angle, optimize=True) / 6.0
    return float(e3 / e2**2), float(e3 / e2**3)
