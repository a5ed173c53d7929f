"""The diffusion backend, PARNASSUS (D) of arXiv:2503.19981, in TensorFlow and Keras 3.

Two stages, both v-prediction diffusion models on the cosine path
alpha_t = cos(pi t / 2), sigma_t = sin(pi t / 2):

1. event stage (:mod:`.event_model`): the PFC multiplicity of each of the five
   classes, HT, MET_x and MET_y given the GEN event;
2. particle stage (:mod:`.particle_model`): the kinematics and vertex of every PFC
   given its class, the GEN particles and both event vectors (EdgeConv with k = 3
   in (eta, phi), then four DiT blocks with adaLN-zero).

Importing this module imports neither TensorFlow nor Keras: :meth:`DiffusionBackend.train`
and :meth:`DiffusionBackend.load` do, and raise
:class:`~parnassus.exceptions.MissingDependencyError` when TensorFlow is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from parnassus.core.backend import GenerativeBackend, TrainedModel
from parnassus.core.detector import DetectorCard


class DiffusionBackend(GenerativeBackend):
    """PARNASSUS (D): two-stage v-prediction diffusion model (TensorFlow/Keras)."""

    name = "diffusion"
    description = "PARNASSUS (D): two-stage v-prediction diffusion, EdgeConv + DiT, TensorFlow/Keras 3"
    extra = "tensorflow"

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
        """Train both stages on (GEN, PFC) files and write a checkpoint folder after every epoch.

        See :func:`parnassus.backends.diffusion.training.train` for the arguments.

        Returns:
            The checkpoint folder ``out_dir``.
        """
        from parnassus.backends.diffusion.runtime import import_tensorflow

        import_tensorflow()
        from parnassus.backends.diffusion.training import train

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
        """Load a checkpoint folder written by :meth:`train` for ``card``.

        Args:
            directory: the checkpoint folder.
            card: the detector card it must have been trained for.
            device: ``auto`` (None: a GPU when TensorFlow finds one), ``cpu`` or ``gpu``.

        Raises:
            CheckpointError: the folder is not a diffusion checkpoint for ``card``, or
                a weight file is missing, corrupted or from another model.
            MissingDependencyError: TensorFlow is not installed.
        """
        from parnassus.backends.diffusion.runtime import import_tensorflow

        import_tensorflow()
        from parnassus.backends.diffusion.sampling import load

        return load(directory, card, device=device)


__all__ = ["DiffusionBackend"]
