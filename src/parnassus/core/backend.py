"""The generative-backend contract: a two-stage conditional model.

Every backend (flow matching, diffusion, smearing) implements both stages of
PARNASSUS (arXiv:2503.19981):

1. event stage: sample the PFC event quantities (HT, N, MET_x, MET_y; N per class
   for the diffusion backend) given the GEN particles and GEN event quantities;
2. particle stage: sample N PFCs given the GEN particles and the GEN and sampled
   PFC event quantities.

Rules every backend keeps:

- sampling never drops an event; invalid event-stage draws (N outside
  [1, max_particles], HT <= 0) are redrawn and counted in :class:`SamplingReport`;
- output contains real particles only, in physical units, with pT > 0, phi wrapped,
  an integer class and neutral vertices as the card says
  (:meth:`parnassus.core.detector.DetectorCard.finalise_pfc`);
- the same seed gives the same output on the same machine.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import awkward as ak

from parnassus.core import events as ev
from parnassus.core.detector import DetectorCard

log = logging.getLogger(__name__)

#: Training presets every backend understands.
PRESETS = ("paper", "small", "tiny")


@dataclass
class SamplingReport:
    """Sampling statistics: event count, redraws and time spent per stage (s)."""

    events: int = 0
    redraws: int = 0
    event_stage_seconds: float = 0.0
    particle_stage_seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def merge(self, other: "SamplingReport") -> None:
        self.events += other.events
        self.redraws += other.redraws
        self.event_stage_seconds += other.event_stage_seconds
        self.particle_stage_seconds += other.particle_stage_seconds


def sampled_pfc(card: DetectorCard, counts, pt, eta, phi, vx, vy, vz, cls) -> ak.Array:
    """Build the PFC records of sampled particles in the card's conventions.

    The flat per-particle arrays are cut into events by ``counts``, the particles of each
    event are sorted by decreasing pT (a stable sort) and passed through
    :meth:`parnassus.core.detector.DetectorCard.finalise_pfc`, which leaves pT unchanged.

    Args:
        card: the detector card of the model.
        counts: PFCs per event, shape ``(events,)``.
        pt, eta, phi, vx, vy, vz: per-particle values in physical units (GeV, rad, cm),
            shape ``(sum(counts),)``, the particles of event 0 first.
        cls: per-particle class (0-4), shape ``(sum(counts),)``.

    Returns:
        Jagged PFC records, one list per event.
    """

    def jagged(values):
        return ak.unflatten(values, counts)

    particles = ev.make_particles(*(jagged(values) for values in (pt, eta, phi, vx, vy, vz, cls)))
    return card.finalise_pfc(ev.sort_by_pt(particles))


class TrainedModel(abc.ABC):
    """A loaded two-stage model: load once, sample many batches."""

    card: DetectorCard

    @abc.abstractmethod
    def sample(
        self,
        gen_events: ak.Array,
        *,
        solver: str | None = None,
        steps: int | None = None,
        seed: int = 0,
        batch_size: int | None = None,
    ) -> tuple[ak.Array, SamplingReport]:
        """Sample PFCs for preprocessed GEN events.

        Args:
            gen_events: events with a ``gen`` field, already passed through
                ``card.preprocess``.
            solver: a registered solver name; the backend's default when None.
            steps: solver steps; the backend's default when None.
            seed: the random seed.
            batch_size: events per network batch; chosen from memory when None.

        Returns:
            The events with a ``pfc`` field added, and a report.
        """


class GenerativeBackend(abc.ABC):
    """A backend plugin. Subclasses import their framework inside methods only,
    so that listing plugins never imports PyTorch or TensorFlow."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: The extra of parnassus that installs the framework, for error messages.
    extra: ClassVar[str] = ""
    #: Whether sampling integrates an ODE, so that the ``solver`` and ``steps`` arguments of
    #: :meth:`TrainedModel.sample` take effect (False for the smearing baseline).
    uses_solver: ClassVar[bool] = True

    @classmethod
    @abc.abstractmethod
    def train(
        cls,
        data: list[Path],
        card: DetectorCard,
        out_dir: Path,
        *,
        preset: str = "small",
        validation: list[Path] | None = None,
        epochs: int | None = None,
        resume: bool = False,
        device: str | None = None,
        seed: int = 0,
        config_overrides: dict[str, Any] | None = None,
    ) -> Path:
        """Train both stages on (GEN, PFC) files and write a checkpoint folder.

        Returns:
            The checkpoint folder (``out_dir``).
        """

    @classmethod
    @abc.abstractmethod
    def load(cls, directory: Path, card: DetectorCard, *, device: str | None = None) -> TrainedModel:
        """Load a checkpoint folder written by :meth:`train` for ``card``."""
