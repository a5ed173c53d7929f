"""Checkpoint folders: ``model.yaml`` plus weights that cannot run code when loaded.

``model.yaml`` records the backend, detector, parnassus version, preset and
configuration, normalisation, a summary of the training data, epochs and losses.
Loading checks the backend, detector and version before any weights are read.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

import parnassus
from parnassus.core.detector import Standardisation
from parnassus.exceptions import CheckpointError

MODEL_YAML = "model.yaml"

#: Checkpoints of this format version can be read. Bump it when a backend's
#: saved layout changes incompatibly.
FORMAT_VERSION = 1


def write_model_yaml(directory: Path, info: dict[str, Any]) -> Path:
    """Write ``model.yaml`` atomically (temporary name, then rename)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    info = {"format_version": FORMAT_VERSION, "parnassus_version": parnassus.__version__, **info}
    target = directory / MODEL_YAML
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".model.", suffix=".yaml.tmp")
    with os.fdopen(fd, "w") as stream:
        yaml.safe_dump(info, stream, sort_keys=False)
    os.replace(tmp, target)
    return target


def read_model_yaml(directory: Path, *, backend: str, detector: str) -> dict[str, Any]:
    """Read and check ``model.yaml``.

    Raises:
        CheckpointError: the folder or file is missing or unreadable, or the
            checkpoint was made for another backend, detector or format version.
    """
    path = Path(directory) / MODEL_YAML
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a parnassus checkpoint: {MODEL_YAML} not found")
    try:
        with open(path) as stream:
            info = yaml.safe_load(stream)
    except yaml.YAMLError as error:
        raise CheckpointError(f"{path} is not valid YAML: {error}") from error
    if not isinstance(info, dict):
        raise CheckpointError(f"{path} does not contain a mapping")

    for key in ("backend", "detector", "format_version"):
        if key not in info:
            raise CheckpointError(f"{path} lacks the key {key!r}; it was not written by parnassus")
    if info["backend"] != backend:
        raise CheckpointError(
            f"{directory} holds a {info['backend']!r} checkpoint, not {backend!r}; "
            f"run with --backend {info['backend']} or pass weights trained for {backend!r}"
        )
    if info["detector"] != detector:
        raise CheckpointError(
            f"{directory} was trained for detector {info['detector']!r}, not {detector!r}; "
            f"run with --detector {info['detector']} or train weights for {detector!r}"
        )
    if info["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{directory} has checkpoint format {info['format_version']} "
            f"(written by parnassus {info.get('parnassus_version', 'unknown')}); "
            f"this parnassus {parnassus.__version__} reads format {FORMAT_VERSION}: retrain the model"
        )
    return info


def normalisation_to_dict(table: dict[str, Standardisation]) -> dict[str, dict[str, float]]:
    return {key: {"mean": float(value.mean), "std": float(value.std)} for key, value in table.items()}


def normalisation_from_dict(data: dict[str, dict[str, float]]) -> dict[str, Standardisation]:
    return {key: Standardisation(float(value["mean"]), float(value["std"])) for key, value in data.items()}
