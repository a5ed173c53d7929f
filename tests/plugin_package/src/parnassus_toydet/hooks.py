"""Evaluation and post-processing hooks of the toy plugin package."""

import awkward as ak
import numpy as np

from parnassus.core.plugins import hookimpl


@hookimpl
def parnassus_observables(events, card):
    """Add the scalar sum of PFC photon pT per event (GeV) to ``parnassus evaluate``."""
    photons = events.pfc[events.pfc["class"] == 4]
    return {"photon_ht": ak.to_numpy(ak.sum(photons.pt, axis=1)).astype(np.float64)}
