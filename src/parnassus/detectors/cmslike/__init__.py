"""The ``cmslike`` detector card: a CMS-2011-like detector simulated by parnassus itself.

Same classes and selections as ``cms2011`` (GEN pT > 0.25 GeV, PFC pT > 1 GeV, |eta| < 2.7,
evaluation |eta| < 2.5, at most 400 particles), plus a reference simulation
(:meth:`CmsLikeCard.simulate`) that turns GEN events into PFCs on any machine, so training
data for this card can be made without the CMS Open Simulation files. The model and its
validation are described in ``docs/cmslike.md``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import awkward as ak
import numpy as np
import yaml

from parnassus.core import events as ev
from parnassus.core.checkpoint import normalisation_from_dict
from parnassus.core.detector import DetectorCard, Selection
from parnassus.detectors.cmslike import constants
from parnassus.detectors.cmslike.pileup import PileupLibrary

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent

__all__ = ["card", "CmsLikeCard", "PileupLibrary"]


def _load_normalisation():
    path = _HERE / "normalisation.yaml"
    if not path.is_file():
        return {}
    with open(path) as stream:
        return normalisation_from_dict(yaml.safe_load(stream))


class CmsLikeCard(DetectorCard):
    """Detector card with the ``cmslike`` reference simulation."""

    def simulate(self, gen_events: ak.Array, seed: int, pileup=None, mean_pileup: float = constants.MEAN_PILEUP) -> ak.Array:
        """Simulate the detector response to GEN events.

        GEN particles outside the card's GEN selection (pT > 0.25 GeV, |eta| < 2.7) are removed
        first, and their number is logged; the returned GEN is that selected list. Pileup
        particles enter the PFCs only. PFCs are selected with pT > 1 GeV and |eta| < 2.7 and
        sorted by decreasing pT, and neutral PFCs have the vertex (0, 0, 0). Neither list is
        truncated to ``max_particles`` here, because :meth:`preprocess` does that for training.

        Args:
            gen_events: event batch with a ``gen`` field (fields pt, eta, phi, vx, vy, vz, class
                and optionally pdgid) and optionally ``event_number``.
            seed: seed of the random generator; the same seed and input give the same output.
            pileup: a :class:`PileupLibrary`, an event batch of minimum-bias GEN events, or None
                for no pileup.
            mean_pileup: mean of the Poisson number of pileup interactions per event.

        Returns:
            event batch ``{gen, pfc, event_number}``.
        """
        # Imported here so that loading the card does not import numba.
        from parnassus.detectors.cmslike.simulation import candidates_to_events, check_gen, simulate_chunk

        gen = check_gen(gen_events)
        n_events = len(gen)
        selected = self.gen_selection.apply(gen)
        removed = int(ak.sum(ak.num(gen)) - ak.sum(ak.num(selected)))
        if removed:
            log.info("removed %d GEN particles outside pT > %g GeV, |eta| < %g before the simulation",
                     removed, self.gen_selection.pt_min, self.gen_selection.abs_eta_max)
        library = pileup
        if library is not None and not isinstance(library, PileupLibrary):
            library = PileupLibrary(library)
        if library is None:
            log.debug("simulating %d events without pileup", n_events)

        rng = np.random.default_rng(seed)
        result = simulate_chunk(selected, rng, library, mean_pileup)
        pfc = candidates_to_events(result.candidates, n_events)
        pfc = self.pfc_selection.apply(pfc)
        numbers = gen_events.event_number if "event_number" in ak.fields(gen_events) else None
        return ev.make_events(selected, pfc, numbers)


card = CmsLikeCard(
    name="cmslike",
    description="CMS-2011-like detector with a parnassus reference simulation (pileup, tracking, calorimeters, particle flow)",
    gen_selection=Selection(pt_min=0.25, abs_eta_max=2.7),
    pfc_selection=Selection(pt_min=1.0, abs_eta_max=2.7),
    eval_abs_eta_max=2.5,
    max_particles=400,
    normalisation=_load_normalisation(),
    zero_neutral_vertex=True,
    weights_dir=_HERE / "weights",
    training_hint=(
        "make training data with `parnassus simulate --detector cmslike -i gen.root --pileup minbias.root -o full.root`, "
        "train with `parnassus train --detector cmslike --backend BACKEND --data full.root -o DIR` and pass --weights DIR"
    ),
)
