"""Checkpoint folders of the flow-matching backend.

A folder contains

- ``model.yaml`` (:mod:`parnassus.core.checkpoint`): backend, detector, versions,
  preset and configuration, normalisation, training data summary, completed
  epochs, losses per epoch and the command;
- ``event.safetensors`` and ``particle.safetensors``: the trained weights;
- ``event_ema.safetensors`` and ``particle_ema.safetensors``: their exponential
  moving averages, which sampling uses;
- ``optimizer.safetensors``: the Lion momenta, for ``--resume``.

Every weights file records the epoch it was written after in its metadata, and
loading checks it against ``model.yaml``, so a folder whose files come from
different epochs (an interrupted save) is rejected instead of mixing weights.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from parnassus.core.checkpoint import read_model_yaml
from parnassus.exceptions import CheckpointError

log = logging.getLogger(__name__)

BACKEND_NAME = "flow-matching"
#: Layout of the weight files; bump when the networks change incompatibly.
LAYOUT_VERSION = 1

EVENT = "event.safetensors"
PARTICLE = "particle.safetensors"
EVENT_EMA = "event_ema.safetensors"
PARTICLE_EMA = "particle_ema.safetensors"
OPTIMIZER = "optimizer.safetensors"


def save_tensors(directory: Path, filename: str, tensors: dict, epoch: int) -> None:
    """Write ``tensors`` to ``directory/filename`` atomically, with the epoch in the metadata."""
    from safetensors.torch import save_file

    contiguous = {name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{filename}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(contiguous, tmp, metadata={"epoch": str(epoch), "layout": str(LAYOUT_VERSION)})
        os.replace(tmp, Path(directory) / filename)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_tensors(directory: Path, filename: str, epoch: int, device) -> dict:
    """Read a weights file and check that it belongs to the checkpoint of ``epoch``.

    Raises:
        CheckpointError: the file is missing, unreadable or truncated, or was
            written at another epoch or with another layout.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(directory) / filename
    if not path.is_file():
        raise CheckpointError(f"checkpoint {directory} lacks {filename}; the folder is incomplete")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as stream:
            metadata = stream.metadata() or {}
            tensors = {name: stream.get_tensor(name) for name in stream.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path} is corrupted or not a safetensors file ({error}); retrain or copy it again") from error

    if metadata.get("layout") != str(LAYOUT_VERSION):
        raise CheckpointError(
            f"{path} has weight layout {metadata.get('layout')!r}, this parnassus reads layout {LAYOUT_VERSION}; retrain the model"
        )
    if metadata.get("epoch") != str(epoch):
        raise CheckpointError(
            f"{path} was written after epoch {metadata.get('epoch')!r} but model.yaml records epoch {epoch}; "
            "the checkpoint was saved incompletely: resume training to rewrite it"
        )
    return tensors


def load_module(module, directory: Path, filename: str, epoch: int, device) -> None:
    """Load a network's weights strictly (every name, every shape) from a checkpoint file."""
    tensors = load_tensors(directory, filename, epoch, device)
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"{Path(directory) / filename} does not match the network described in model.yaml: {error}"
        ) from error


def read_info(directory: Path, detector: str) -> dict:
    """Read and check ``model.yaml`` of a flow-matching checkpoint for ``detector``."""
    info = read_model_yaml(Path(directory), backend=BACKEND_NAME, detector=detector)
    for key in ("config", "normalisation", "epochs_completed"):
        if key not in info:
            raise CheckpointError(f"{Path(directory) / 'model.yaml'} lacks {key!r}; the checkpoint is incomplete")
    if info.get("layout_version") != LAYOUT_VERSION:
        raise CheckpointError(
            f"{directory} has flow-matching layout {info.get('layout_version')!r}; "
            f"this parnassus reads layout {LAYOUT_VERSION}: retrain the model"
        )
    return info
