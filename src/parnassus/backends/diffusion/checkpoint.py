"""Checkpoint folder of the diffusion backend: networks, weights and ``model.yaml``.

Files (all weights in Keras ``.weights.h5`` files, which hold arrays only, so
loading never runs code):

- ``model.yaml``: backend, detector, parnassus version, preset, configuration,
  normalisation, training data summary, epochs and losses;
- ``event.weights.h5``, ``particle.weights.h5``: the trained networks;
- ``event_ema.weights.h5``, ``particle_ema.weights.h5``: their exponential moving
  averages, which sampling uses;
- ``event_optimizer.weights.h5``, ``particle_optimizer.weights.h5``: Lion state
  (step counter and momenta) for resuming training.

Every file is written under a temporary name and renamed when complete;
``model.yaml`` is written last, so a folder whose ``model.yaml`` names epoch n
contains complete weights of epoch n.

Imports TensorFlow: import this module only inside functions of the backend.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from parnassus.core.checkpoint import normalisation_from_dict, read_model_yaml
from parnassus.core.detector import Standardisation
from parnassus.exceptions import CheckpointError
from parnassus.backends.diffusion import event_model, particle_model

log = logging.getLogger(__name__)

BACKEND_NAME = "diffusion"
NETWORKS = ("event", "particle")
WEIGHT_FILES = {
    "event": "event.weights.h5",
    "particle": "particle.weights.h5",
    "event_ema": "event_ema.weights.h5",
    "particle_ema": "particle_ema.weights.h5",
}
OPTIMIZER_FILES = {"event": "event_optimizer.weights.h5", "particle": "particle_optimizer.weights.h5"}


def build_networks(config: dict[str, Any], table: dict[str, Standardisation]) -> dict[str, Any]:
    """Create the event and particle networks of a configuration and build their weights.

    Returns:
        dict with ``event`` (:class:`EventNet`) and ``particle`` (:class:`ParticleNet`).
    """
    event = event_model.EventNet(**config["event"], name="event_net")
    particle = particle_model.ParticleNet(
        **config["particle"], eta_mean=table["eta"].mean, eta_std=table["eta"].std, name="particle_net"
    )
    event(event_model.dummy_inputs())
    particle(particle_model.dummy_inputs())
    return {"event": event, "particle": particle}


def copy_weights(source, target) -> None:
    """Copy every weight of ``source`` into ``target`` (same architecture)."""
    for to, value in zip(target.weights, source.weights, strict=True):
        to.assign(value)


def _replace_atomically(write, target: Path) -> None:
    # Keras only writes files whose names end in ".weights.h5", so the temporary
    # name keeps that ending.
    temporary = target.with_name(f".partial-{os.getpid()}-{target.name}")
    try:
        write(temporary)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()


def save_weights(directory: Path, networks: dict[str, Any]) -> None:
    """Write the weights of ``networks`` (keys of :data:`WEIGHT_FILES`) to ``directory``."""
    for key, network in networks.items():
        _replace_atomically(network.save_weights, Path(directory) / WEIGHT_FILES[key])


def save_optimizer(directory: Path, key: str, optimizer) -> None:
    """Write the state variables of a Keras optimizer to an HDF5 file (arrays only)."""

    def write(path: Path) -> None:
        with h5py.File(path, "w") as stream:
            for index, variable in enumerate(optimizer.variables):
                dataset = stream.create_dataset(f"{index:05d}", data=np.asarray(variable.numpy()))
                dataset.attrs["name"] = variable.path if hasattr(variable, "path") else variable.name

    _replace_atomically(write, Path(directory) / OPTIMIZER_FILES[key])


def load_optimizer(directory: Path, key: str, optimizer) -> None:
    """Restore optimizer state written by :func:`save_optimizer` (the optimizer must be built).

    Raises:
        CheckpointError: the file is missing, unreadable or does not match the optimizer.
    """
    path = Path(directory) / OPTIMIZER_FILES[key]
    if not path.is_file():
        raise CheckpointError(f"cannot resume from {directory}: {path.name} not found")
    try:
        with h5py.File(path, "r") as stream:
            names = sorted(stream.keys())
            variables = optimizer.variables
            if len(names) != len(variables):
                raise CheckpointError(
                    f"{path} contains {len(names)} optimizer variables, but the {key} network's optimizer has {len(variables)}; "
                    "the checkpoint does not match its configuration"
                )
            for name, variable in zip(names, variables):
                value = stream[name][()]
                if tuple(value.shape) != tuple(variable.shape):
                    raise CheckpointError(
                        f"{path}: optimizer variable {stream[name].attrs.get('name', name)} has shape "
                        f"{value.shape}, expected {tuple(variable.shape)}"
                    )
                variable.assign(value)
    except (OSError, KeyError) as error:
        raise CheckpointError(f"{path} is corrupted or not an optimizer state file: {error}") from error


def load_weights(directory: Path, key: str, network) -> None:
    """Load one ``.weights.h5`` file into a built network.

    Raises:
        CheckpointError: the file is missing, corrupted or made for another architecture.
    """
    path = Path(directory) / WEIGHT_FILES[key]
    if not path.is_file():
        raise CheckpointError(f"{directory} is incomplete: {path.name} not found")
    try:
        with h5py.File(path, "r"):
            pass
    except OSError as error:
        raise CheckpointError(f"{path} is corrupted (not a readable HDF5 file): {error}") from error
    before = [np.array(weight.numpy()) for weight in network.weights]
    try:
        network.load_weights(str(path))
    except (ValueError, OSError, KeyError, TypeError) as error:
        raise CheckpointError(
            f"{path} does not match the {key} network described in model.yaml "
            f"(corrupted, or from another model): {error}"
        ) from error
    # Keras warns instead of failing when a file lacks some layers; an untouched
    # weight after loading means the file was made for another architecture.
    if before and all(np.array_equal(old, new.numpy()) for old, new in zip(before, network.weights)):
        raise CheckpointError(f"{path} did not set any weight of the {key} network; it was made for another model")
    for weight in network.weights:
        if not np.all(np.isfinite(weight.numpy())):
            raise CheckpointError(f"{path} contains non-finite values in {weight.path}; the training diverged or the file is corrupted")


def read_info(directory: Path, detector: str) -> dict[str, Any]:
    """Read and check ``model.yaml`` of a diffusion checkpoint.

    Raises:
        CheckpointError: not a checkpoint, or made for another backend, detector or
            format version, or lacking a key this backend needs.
    """
    info = read_model_yaml(directory, backend=BACKEND_NAME, detector=detector)
    for key in ("config", "normalisation", "epochs_completed"):
        if key not in info:
            raise CheckpointError(f"{Path(directory) / 'model.yaml'} lacks the key {key!r}; the checkpoint is incomplete")
    return info


def load_table(info: dict[str, Any], directory: Path) -> dict[str, Standardisation]:
    """Return the normalisation table stored in ``model.yaml``."""
    from parnassus.backends.diffusion.features import EXTRA_KEYS
    from parnassus.core.detector import NORMALISATION_KEYS

    try:
        table = normalisation_from_dict(info["normalisation"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{Path(directory) / 'model.yaml'} has an invalid normalisation table: {error}") from error
    missing = [key for key in NORMALISATION_KEYS + EXTRA_KEYS if key not in table]
    if missing:
        raise CheckpointError(f"{Path(directory) / 'model.yaml'}: normalisation lacks {', '.join(missing)}")
    return table
