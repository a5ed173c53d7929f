"""The flow-matching backend: PARNASSUS (F) of arXiv:2503.19981 in PyTorch.

Two conditional flow-matching models on the straight path
x_t = (1 - t) x_data + t eps (t = 0 data, t = 1 noise):

- event stage (:mod:`.event_model`): a residual network that samples the PFC
  event quantities (HT, N, MET_x, MET_y) from the GEN particles;
- particle stage (:mod:`.particle_model`): a cross-attention transformer (CA-DiT)
  that samples the N PFCs (pT/HT, eta, sin phi, cos phi, vertex, class).

Importing this module does not import PyTorch: every method imports it when
called, and raises :class:`parnassus.exceptions.MissingDependencyError` when it
is not installed.

Example (Python API)::

    from parnassus.core.plugins import load_backend, load_detector
    card = load_detector("cmslike")
    backend = load_backend("flow-matching")
    backend.train([Path("train.parquet")], card, Path("model"), preset="small")
    model = backend.load(Path("model"), card)
    events, report = model.sample(card.preprocess(gen_events)[0], seed=1)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from parnassus.core.backend import GenerativeBackend, TrainedModel
from parnassus.core.detector import DetectorCard

log = logging.getLogger(__name__)


class FlowMatchingBackend(GenerativeBackend):
    """Two-stage conditional flow matching with a residual event network and a CA-DiT particle network."""

    name = "flow-matching"
    description = "PyTorch two-stage conditional flow matching, PARNASSUS (F) of arXiv:2503.19981"
    extra = "torch"

    @classmethod
    def train(
        cls,
        data,
        card: DetectorCard,
        out_dir: Path,
        *,
        preset: str = "small",
        validation=None,
        epochs: int | None = None,
        resume: bool = False,
        device: str | None = None,
        seed: int = 0,
        config_overrides: dict[str, Any] | None = None,
    ) -> Path:
        """Train both stages on (GEN, PFC) events and write a checkpoint folder.

        Args:
            data: training files (ROOT, Parquet) or an awkward Array of events.
            card: the detector card; its preprocessing is applied to every chunk.
            out_dir: the checkpoint folder, written after every epoch.
            preset: ``paper``, ``small`` or ``tiny`` (see :mod:`.presets`).
            validation: validation files or events; their loss is logged per epoch.
            epochs: total epochs; the preset's when None.
            resume: continue the checkpoint in ``out_dir`` from its last epoch.
            device: ``cpu``, ``cuda`` or ``cuda:N``; CUDA when available if None.
            seed: the random seed of initialisation, shuffling and noise.
            config_overrides: settings of the preset to change (see :mod:`.presets`).

        Returns:
            ``out_dir``.
        """
        from parnassus.backends.flow_matching.training import train

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
        """Load the EMA weights of a checkpoint for sampling.

        Raises:
            CheckpointError: the folder is not a flow-matching checkpoint for
                ``card``, was written by an incompatible version, or its weights
                are missing, corrupted or do not match its configuration.
        """
        from parnassus.backends.flow_matching import persistence as store
        from parnassus.backends.flow_matching.runtime import build_networks, import_torch, select_device
        from parnassus.backends.flow_matching.sampling import FlowMatchingModel
        from parnassus.core.checkpoint import normalisation_from_dict
        from parnassus.exceptions import CheckpointError

        import_torch()
        directory = Path(directory)
        info = store.read_info(directory, card.name)
        torch_device = select_device(device)
        try:
            event_net, particle_net = build_networks(info["config"])
            norm = normalisation_from_dict(info["normalisation"])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{directory / 'model.yaml'} has an invalid configuration: {error}") from error
        epoch = int(info["epochs_completed"])
        store.load_module(event_net, directory, store.EVENT_EMA, epoch, "cpu")
        store.load_module(particle_net, directory, store.PARTICLE_EMA, epoch, "cpu")
        log.info("loaded flow-matching checkpoint %s (epoch %d) on %s", directory, epoch, torch_device)
        return FlowMatchingModel(
            card, info["config"], norm, event_net.to(torch_device), particle_net.to(torch_device), torch_device, info
        )


__all__ = ["FlowMatchingBackend"]
