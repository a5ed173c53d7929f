"""Checkpoint folder of the smearing backend: ``model.yaml`` plus ``tables.npz``.

The tables are plain numeric arrays in a compressed ``.npz`` file, read with
``allow_pickle=False`` so that loading never runs code. ``model.yaml`` records the
file's SHA-256 digest, so a truncated, edited or swapped tables file is rejected
before it is parsed.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from parnassus.backends.smearing.model import SmearingModel, SmearingTables
from parnassus.core.checkpoint import read_model_yaml
from parnassus.core.detector import DetectorCard
from parnassus.core.io.atomic import atomic_output
from parnassus.exceptions import CheckpointError

log = logging.getLogger(__name__)

BACKEND_NAME = "smearing"
TABLES_FILE = "tables.npz"

#: Version of the layout of ``tables.npz``; bump it when the tables change incompatibly.
LAYOUT_VERSION = 1


def sha256_of(path: Path) -> str:
    """Return the hexadecimal SHA-256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_tables(tables: SmearingTables, directory: Path) -> dict[str, Any]:
    """Write ``tables.npz`` atomically into ``directory``.

    Returns:
        The ``tables`` entry of ``model.yaml``: file name, SHA-256 digest and layout version.
    """
    target = Path(directory) / TABLES_FILE
    with atomic_output(target) as temporary:
        np.savez_compressed(temporary, **tables.to_arrays())
    return {"file": TABLES_FILE, "sha256": sha256_of(target), "layout_version": LAYOUT_VERSION}


def load_checkpoint(directory: Path, card: DetectorCard) -> SmearingModel:
    """Load a smearing checkpoint folder for ``card``.

    Raises:
        CheckpointError: the folder is not a smearing checkpoint for this detector
            and version, the tables file is missing, corrupted or changed since
            training, or its tables are inconsistent.
    """
    directory = Path(directory)
    info = read_model_yaml(directory, backend=BACKEND_NAME, detector=card.name)

    entry = info.get("tables")
    if not isinstance(entry, dict) or not {"file", "sha256", "layout_version"} <= set(entry):
        raise CheckpointError(f"{directory}/model.yaml lacks the 'tables' entry (file, sha256, layout_version)")
    if entry["layout_version"] != LAYOUT_VERSION:
        raise CheckpointError(
            f"{directory} contains smearing tables of layout {entry['layout_version']}, but this parnassus "
            f"reads layout {LAYOUT_VERSION}: refit the model with `parnassus train --backend smearing`"
        )
    name = entry["file"]
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".npz"):
        raise CheckpointError(f"{directory}/model.yaml names an invalid tables file {name!r}")

    path = directory / name
    if not path.is_file():
        raise CheckpointError(f"{directory} is incomplete: the tables file {name} is missing")
    if sha256_of(path) != entry["sha256"]:
        raise CheckpointError(
            f"{path} is corrupted or was changed after training (its SHA-256 digest differs from "
            "the one in model.yaml): refit the model or restore the file"
        )

    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in stored.files}
        tables = SmearingTables.from_arrays(arrays)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path} is not a valid smearing tables file: {error}") from error

    _warn_on_changed_selection(info, card)
    log.info("loaded smearing tables from %s", directory)
    return SmearingModel(card, tables, info)


def selection_summary(card: DetectorCard) -> dict[str, Any]:
    """Return the card settings the fit depends on, for ``model.yaml``."""
    return {
        "gen_pt_min_gev": float(card.gen_selection.pt_min),
        "gen_abs_eta_max": float(card.gen_selection.abs_eta_max),
        "pfc_pt_min_gev": float(card.pfc_selection.pt_min),
        "pfc_abs_eta_max": float(card.pfc_selection.abs_eta_max),
        "max_particles": int(card.max_particles),
    }


def _warn_on_changed_selection(info: dict[str, Any], card: DetectorCard) -> None:
    recorded = info.get("selection")
    current = selection_summary(card)
    if isinstance(recorded, dict) and recorded != current:
        log.warning(
            "detector %r has changed its selection since the smearing tables were fitted "
            "(fitted with %s, now %s); the efficiencies may not match the new cuts",
            card.name,
            recorded,
            current,
        )
