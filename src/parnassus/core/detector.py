"""Detector cards: everything about a detector that is not a network.

A :class:`DetectorCard` gives the particle classes, the GEN and PFC selections,
the evaluation acceptance, the maximum multiplicity, the feature normalisation
and where the trained weights of each backend are. Cards that have a reference
simulation (``cmslike``) also implement :meth:`DetectorCard.simulate`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.exceptions import NoWeightsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selection:
    """A particle selection: pT > pt_min (GeV) and |eta| < abs_eta_max."""

    pt_min: float
    abs_eta_max: float

    def apply(self, particles: ak.Array) -> ak.Array:
        return ev.select(particles, self.pt_min, self.abs_eta_max)


@dataclass(frozen=True)
class Standardisation:
    """Shift and scale of one feature: x' = (x - mean) / std."""

    mean: float
    std: float

    def forward(self, x):
        return (x - self.mean) / self.std

    def inverse(self, x):
        return x * self.std + self.mean


#: Keys of a normalisation table: per-particle features and event quantities.
NORMALISATION_KEYS = ("ptrel", "eta", "phi", "vx", "vy", "vz", "ht", "n", "met_x", "met_y")


@dataclass
class PreprocessReport:
    """Counts of the corrections :meth:`DetectorCard.preprocess` made."""

    events: int = 0
    gen_removed_by_cuts: int = 0
    pfc_removed_by_cuts: int = 0
    gen_truncated_events: int = 0
    pfc_truncated_events: int = 0
    empty_gen_events: int = 0

    def log(self, source: str = "input") -> None:
        if self.gen_truncated_events or self.pfc_truncated_events:
            log.warning(
                "%s: %d events had more GEN and %d more PFC particles than the maximum; "
                "kept the hardest ones",
                source,
                self.gen_truncated_events,
                self.pfc_truncated_events,
            )
        if self.empty_gen_events:
            log.warning("%s: %d events have no GEN particle inside the cuts", source, self.empty_gen_events)
        log.info(
            "%s: %d events; cuts removed %d GEN and %d PFC particles",
            source,
            self.events,
            self.gen_removed_by_cuts,
            self.pfc_removed_by_cuts,
        )


def fit_normalisation(events: ak.Array) -> dict[str, Standardisation]:
    """Fit the mean and standard deviation of every normalised feature on training events.

    Particle features and event quantities (HT, N, MET_x, MET_y) are fitted on GEN
    and PFC together, so one table serves both collections. The authors'
    configuration of arXiv:2503.19981 does the same.
    """
    collections = [events.gen] + ([events.pfc] if ev.has_pfc(events) else [])
    values: dict[str, list[np.ndarray]] = {key: [] for key in NORMALISATION_KEYS}
    for particles in collections:
        quantities = ev.event_quantities(particles)
        ht = quantities["ht"]
        safe_ht = np.where(ht > 0, ht, 1.0)
        values["ptrel"].append(ak.to_numpy(ak.flatten(particles.pt / safe_ht)))
        for key in ("eta", "phi", "vx", "vy", "vz"):
            values[key].append(ak.to_numpy(ak.flatten(particles[key])))
        values["ht"].append(ht)
        values["n"].append(quantities["n"].astype(np.float64))
        values["met_x"].append(quantities["met_x"])
        values["met_y"].append(quantities["met_y"])

    table = {}
    for key, parts in values.items():
        data = np.concatenate(parts).astype(np.float64)
        std = float(np.std(data)) if data.size > 1 else 1.0
        table[key] = Standardisation(float(np.mean(data)) if data.size else 0.0, std if std > 0 else 1.0)
    return table


@dataclass
class DetectorCard:
    """Detector description: cuts, classes, acceptance, normalisation and weights.

    Attributes:
        name: the registry name (``cms2011``).
        description: one line for ``parnassus list``.
        gen_selection: GEN particles kept as model input.
        pfc_selection: PFCs kept as training targets.
        eval_abs_eta_max: the |eta| acceptance of the evaluation.
        max_particles: the maximum number of GEN and of PFC particles per event.
        normalisation: default feature standardisation; backends fit their own
            from training data and store it with the weights.
        zero_neutral_vertex: whether neutral PFCs (neutral hadrons, photons) carry
            the vertex (0, 0, 0), as in the CMS files.
        weights_dir: a folder with one subfolder of shipped weights per backend.
        training_hint: what to tell a user who asks for weights that do not exist.
    """

    name: str
    description: str
    gen_selection: Selection = Selection(0.25, 2.7)
    pfc_selection: Selection = Selection(1.0, 2.7)
    eval_abs_eta_max: float = 2.5
    max_particles: int = 400
    normalisation: dict[str, Standardisation] = field(default_factory=dict)
    zero_neutral_vertex: bool = True
    weights_dir: Path | None = None
    training_hint: str = ""

    @property
    def classes(self) -> type[ev.ParticleClass]:
        return ev.ParticleClass

    def weights(self, backend: str) -> Path | None:
        """Return the folder of shipped weights for ``backend``, or None."""
        if self.weights_dir is None:
            return None
        folder = Path(self.weights_dir) / backend
        return folder if (folder / "model.yaml").is_file() else None

    def require_weights(self, backend: str) -> Path:
        """Return the shipped weights for ``backend`` or raise :class:`NoWeightsError` with a hint."""
        folder = self.weights(backend)
        if folder is None:
            # Hints may name the backend with the placeholder BACKEND.
            hint = self.training_hint.replace("BACKEND", backend) or (
                f"train them with `parnassus train --detector {self.name} --backend {backend} ...` "
                "and pass the output folder with --weights"
            )
            raise NoWeightsError(f"detector {self.name!r} ships no weights for backend {backend!r}: {hint}")
        return folder

    def preprocess(self, events: ak.Array, source: str = "input") -> tuple[ak.Array, PreprocessReport]:
        """Apply the card's selections, sort by pT and truncate to ``max_particles``.

        Events over the maximum keep their hardest particles; the count of such
        events is returned in the report and logged. Events are never dropped.
        """
        report = PreprocessReport(events=len(events))
        fields = {}

        gen = self.gen_selection.apply(events.gen)
        report.gen_removed_by_cuts = int(ak.sum(ak.num(events.gen)) - ak.sum(ak.num(gen)))
        gen = ev.sort_by_pt(gen)
        report.gen_truncated_events = int(np.sum(ak.to_numpy(ak.num(gen)) > self.max_particles))
        gen = gen[:, : self.max_particles]
        report.empty_gen_events = int(np.sum(ak.to_numpy(ak.num(gen)) == 0))
        fields["gen"] = gen

        if ev.has_pfc(events):
            pfc = self.pfc_selection.apply(events.pfc)
            report.pfc_removed_by_cuts = int(ak.sum(ak.num(events.pfc)) - ak.sum(ak.num(pfc)))
            pfc = ev.sort_by_pt(pfc)
            report.pfc_truncated_events = int(np.sum(ak.to_numpy(ak.num(pfc)) > self.max_particles))
            fields["pfc"] = pfc[:, : self.max_particles]

        result = ev.make_events(fields["gen"], fields.get("pfc"), events.event_number)
        report.log(source)
        return result, report

    def finalise_pfc(self, pfc: ak.Array) -> ak.Array:
        """Put sampled PFCs in the card's conventions: neutral vertices zeroed, phi wrapped."""
        phi = ev.wrap_phi(pfc.phi)
        vx, vy, vz = pfc.vx, pfc.vy, pfc.vz
        if self.zero_neutral_vertex:
            neutral = pfc["class"] >= int(ev.ParticleClass.NEUTRAL_HADRON)
            vx = ak.where(neutral, 0.0, vx)
            vy = ak.where(neutral, 0.0, vy)
            vz = ak.where(neutral, 0.0, vz)
        return ev.make_particles(pfc.pt, pfc.eta, phi, vx, vy, vz, pfc["class"])

    def simulate(self, gen_events: ak.Array, seed: int, pileup: ak.Array | None = None) -> ak.Array:
        """Produce PFCs from GEN with the card's reference simulation.

        Only cards that have one implement it (``cmslike``).
        """
        raise NotImplementedError(f"detector {self.name!r} has no reference simulation")

    @property
    def has_simulation(self) -> bool:
        return type(self).simulate is not DetectorCard.simulate
