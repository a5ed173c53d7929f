"""Turn Pythia's event records into GEN particles, vectorised over a whole batch.

The GEN record of an event is what the CMS Open Simulation files used by
arXiv:2503.19981 keep of the generator output: final-state particles (Pythia
status > 0) with pT > 0.25 GeV and |eta| < 2.7, without neutrinos, sorted by
decreasing pT, each with its production vertex in cm, its particle class and its
PDG id.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from parnassus.core import events as ev

#: GEN selection of the CMS Open Simulation files of arXiv:2503.19981.
GEN_PT_MIN_GEV = 0.25
GEN_ABS_ETA_MAX = 2.7

_MM_PER_CM = 10.0
_PI32 = np.float32(np.pi)


def _flat(array: ak.Array) -> np.ndarray:
    return ak.to_numpy(ak.flatten(array, axis=1))


def _flat_vertex(final: ak.Array, component: str) -> np.ndarray:
    # Pythia leaves vProd empty (None) when the vertex is exactly (0, 0, 0, 0).
    return _flat(ak.fill_none(final["vProd"][component], 0.0))


def gen_particles(batch: ak.Array, pt_min: float = GEN_PT_MIN_GEV, abs_eta_max: float = GEN_ABS_ETA_MAX) -> ak.Array:
    """Select the GEN particles of a batch of Pythia events.

    pT = sqrt(px^2 + py^2), eta = asinh(pz / pT), phi = atan2(py, px) wrapped into
    (-pi, pi] (also after rounding to float32), vertex = Pythia's production
    vertex / 10 (mm -> cm), class from :func:`parnassus.core.events.pdgid_to_class`.

    Args:
        batch: the output of ``pythia8mc.Pythia.nextBatch``: records with a
            jagged field ``prt`` (``id``, ``status``, ``p`` with px, py, pz in GeV,
            ``vProd`` with px, py, pz = x, y, z in mm, None at the origin).
        pt_min: keep particles with pT above this (GeV).
        abs_eta_max: keep particles with |eta| below this.

    Returns:
        Jagged particle records (see :func:`parnassus.core.events.make_particles`)
        with the ``pdgid`` field, one list per event, sorted by decreasing pT.
    """
    particles = batch["prt"]
    final = particles[particles["status"] > 0]
    counts = ak.to_numpy(ak.num(final, axis=1))

    pdgid = _flat(final["id"])
    px = _flat(final["p"]["px"])
    py = _flat(final["p"]["py"])
    pz = _flat(final["p"]["pz"])
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(pz / pt)
    cls = ev.pdgid_to_class(pdgid)

    # Cut on the float32 values that are stored, so that a particle at the edge
    # (eta = 2.69999999 rounds to float32(2.7)) cannot fail the same cut later.
    pt = pt.astype(np.float32)
    eta = eta.astype(np.float32)
    keep = (cls != ev.NOT_VISIBLE) & (pt > np.float32(pt_min)) & (np.abs(eta) < np.float32(abs_eta_max))
    event_index = np.repeat(np.arange(len(counts)), counts)[keep]
    kept_counts = np.bincount(event_index, minlength=len(counts))

    # Decreasing pT within each event. lexsort is stable, so ties keep Pythia's order.
    order = np.lexsort((-pt[keep], event_index))
    index = np.flatnonzero(keep)[order]

    phi = np.arctan2(py[index], px[index]).astype(np.float32)
    # arctan2 returns -pi for (x < 0, y = -0.0), and values just above -pi in float64
    # can round to float32(-pi): both belong at +pi.
    phi[phi <= -_PI32] = _PI32

    def jagged(values):
        return ak.unflatten(values, kept_counts)

    return ev.make_particles(
        pt=jagged(pt[index]),
        eta=jagged(eta[index]),
        phi=jagged(phi),
        vx=jagged(_flat_vertex(final, "px")[index] / _MM_PER_CM),
        vy=jagged(_flat_vertex(final, "py")[index] / _MM_PER_CM),
        vz=jagged(_flat_vertex(final, "pz")[index] / _MM_PER_CM),
        cls=jagged(cls[index]),
        pdgid=jagged(pdgid[index]),
    )
