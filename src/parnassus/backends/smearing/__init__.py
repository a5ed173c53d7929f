"""The ``smearing`` backend: a DELPHES-style fast simulation fitted to (GEN, PFC) pairs.

The classical baseline beside the generative backends. It is fitted to the same
training pairs: per GEN class and (pT, |eta|) bin, the efficiency and class
migration of the GEN particles, log-normal pT and Gaussian eta, phi and vertex
resolutions, and histograms of the unmatched PFCs (pileup and fakes). Sampling
treats each GEN particle on its own and adds the unmatched PFCs. Only numpy,
scipy and awkward are used. The model is described in ``docs/smearing.md``.

Example:

>>> from parnassus.backends.smearing import SmearingBackend
>>> SmearingBackend.name
'smearing'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from parnassus.core.backend import GenerativeBackend, TrainedModel
from parnassus.core.detector import DetectorCard


class SmearingBackend(GenerativeBackend):
    """Fitted efficiency, class-migration and resolution tables plus unmatched-PFC histograms."""

    name: ClassVar[str] = "smearing"
    description: ClassVar[str] = (
        "DELPHES-style smearing tables fitted in one pass to (GEN, PFC) pairs (numpy); "
        "presets set the bin layout, epochs and device do not apply"
    )
    extra: ClassVar[str] = ""
    uses_solver: ClassVar[bool] = False

    @classmethod
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
        """Fit the tables on (GEN, PFC) files and write a checkpoint folder.

        The fit is one pass: ``epochs``, ``device`` and ``seed`` have no effect and
        ``resume`` restarts the pass; ``preset`` sets the bin layout. See
        :func:`parnassus.backends.smearing.training.train` for the arguments.

        Returns:
            The checkpoint folder (``out_dir``).
        """
        from parnassus.backends.smearing.training import train

        return train(
            data,
            card,
            out_dir,
            preset=preset,
            validation=validation,
            epochs=epochs,
            resume=resume,
            device=device,
            seed=seed,
            config_overrides=config_overrides,
        )

    @classmethod
    def load(cls, directory: Path, card: DetectorCard, *, device: str | None = None) -> TrainedModel:
        """Load a checkpoint folder written by :meth:`train` for ``card``; ``device`` has no effect.

        Raises:
            CheckpointError: the folder contains another backend's or detector's
                checkpoint, or its tables are missing or corrupted.
        """
        from parnassus.backends.smearing.storage import load_checkpoint

        return load_checkpoint(directory, card)
