"""Pileup overlay: minimum-bias interactions drawn from a library and placed at their own vertices.

For each hard event the number of pileup interactions is N ~ Poisson(mean). Each is
a library event drawn at random with replacement. It is rotated by a uniform random
azimuth, as DELPHES' PileUpMerger does, and moved to its own vertex drawn from the
2011 beam spot. Pileup particles enter the detector simulation, and so the PFCs,
but never the GEN output.
"""

from __future__ import annotations

import logging

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.detectors.cmslike import constants as c
from parnassus.detectors.cmslike.particles import ParticleTable, from_events
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)


class PileupLibrary:
    """Minimum-bias GEN events, flattened once, from which pileup interactions are drawn.

    Args:
        events: an event batch with a ``gen`` field, or jagged particle records.
        source: a name for messages (the file the library was read from).
        pt_min, abs_eta_max: selection applied to the library particles (GeV), by default the
            GEN selection of the cmslike card (pT > 0.25 GeV, |eta| < 2.7), so hard-scatter and
            pileup particles enter the simulation with the same cuts.
    """

    def __init__(self, events: ak.Array, source: str = "pileup library", pt_min: float = 0.25, abs_eta_max: float = 2.7):
        if "gen" not in ak.fields(events) and "pt" not in ak.fields(events):
            raise InvalidInputError(f"{source}: the pileup events have no 'gen' collection (fields: {ak.fields(events)})")
        particles = events.gen if "gen" in ak.fields(events) else events
        missing = [name for name in ev.PARTICLE_FIELDS if name not in ak.fields(particles)]
        if missing:
            raise InvalidInputError(f"{source}: the pileup events lack the GEN fields {missing}; expected {list(ev.PARTICLE_FIELDS)}")
        particles = ev.select(particles, pt_min, abs_eta_max)
        counts = ak.to_numpy(ak.num(particles, axis=1)).astype(np.int64)
        if len(counts) == 0 or counts.sum() == 0:
            raise InvalidInputError(f"{source}: the pileup library contains no particles; generate minimum-bias events first "
                                    "(for example with `parnassus generate --process minbias`)")
        self.source = source
        self.n_events = len(counts)
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        # Library indices are fixed, so pdgid inference for class-only files uses a fixed seed.
        self.table = from_events(particles, np.random.default_rng(0), pileup=True)
        self.reference_vertex = self._reference_vertices()
        log.info("pileup library %s: %d events, %.1f particles per event", source, self.n_events, counts.mean())

    def _reference_vertices(self) -> np.ndarray:
        """Median production vertex of each library event (cm), shape (events, 3): its primary vertex."""
        result = np.zeros((self.n_events, 3))
        order_event = self.table.event
        for axis, name in enumerate(("vx", "vy", "vz")):
            values = getattr(self.table, name)
            # Median per event through a lexicographic sort (event, value).
            order = np.lexsort((values, order_event))
            middle = self.offsets[:-1] + self.counts // 2
            nonempty = self.counts > 0
            result[nonempty, axis] = values[order][middle[nonempty]]
        return result

    def overlay(self, n_hard: int, mean: float, rng: np.random.Generator) -> tuple[ParticleTable, np.ndarray]:
        """Draw pileup interactions for ``n_hard`` events.

        Returns:
            the pileup particles (``event`` is the index of the hard event) and the
            number of interactions per hard event, shape (n_hard,).
        """
        n_pileup = rng.poisson(mean, n_hard)
        total = int(n_pileup.sum())
        chosen = rng.integers(0, self.n_events, total)
        hard_event = np.repeat(np.arange(n_hard), n_pileup)

        # Beam-spot vertex and azimuthal rotation per interaction.
        centre = np.asarray(c.BEAM_SPOT_CENTRE_CM)
        vertex = np.column_stack([
            rng.normal(centre[0], c.BEAM_SPOT_SIGMA_XY_CM, total),
            rng.normal(centre[1], c.BEAM_SPOT_SIGMA_XY_CM, total),
            rng.normal(centre[2], c.BEAM_SPOT_SIGMA_Z_CM, total),
        ])
        rotation = rng.uniform(-np.pi, np.pi, total)

        # Row indices of all particles of the chosen library events.
        sizes = self.counts[chosen]
        interaction = np.repeat(np.arange(total), sizes)
        starts = np.repeat(self.offsets[chosen] - np.cumsum(sizes) + sizes, sizes)
        rows = starts + np.arange(int(sizes.sum()))
        particles = self.table.subset(rows)

        ref = self.reference_vertex[chosen[interaction]]
        dx, dy = particles.vx - ref[:, 0], particles.vy - ref[:, 1]
        cos_r, sin_r = np.cos(rotation[interaction]), np.sin(rotation[interaction])
        particles.vx = vertex[interaction, 0] + cos_r * dx - sin_r * dy
        particles.vy = vertex[interaction, 1] + sin_r * dx + cos_r * dy
        particles.vz = vertex[interaction, 2] + particles.vz - ref[:, 2]
        particles.phi = ev.wrap_phi(particles.phi + rotation[interaction])
        particles.event = hard_event[interaction]
        return particles, n_pileup
