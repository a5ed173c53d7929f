"""Training of the smearing backend: stream the (GEN, PFC) files once, fit, write the checkpoint.

The fit is one pass over the data with histograms and moments filled chunk by
chunk, so memory does not grow with the data. There are no epochs, no network
and no device: ``epochs``, ``device`` and ``seed`` have no effect, and ``resume``
restarts the pass from the beginning. The preset sets only the bin layout.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Any

from parnassus.backends.smearing.binning import Binning
from parnassus.backends.smearing.config import SmearingConfig
from parnassus.backends.smearing.fit import SmearingAccumulator, fit_tables
from parnassus.backends.smearing.storage import BACKEND_NAME, save_tables, selection_summary
from parnassus.backends.smearing.validation import compare_with_validation
from parnassus.core.checkpoint import MODEL_YAML, write_model_yaml
from parnassus.core.detector import DetectorCard
from parnassus.core.progress import RateLogger, progress_bar
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)


def train(
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
    """Fit the smearing tables on (GEN, PFC) files and write a checkpoint folder.

    Args:
        data: training files with GEN and PFC (any format ``parnassus.core.io`` reads).
        card: the detector card; its ``preprocess`` is applied to every chunk.
        out_dir: the checkpoint folder; an existing smearing checkpoint there is replaced.
        preset: ``paper``, ``small`` or ``tiny``: the GEN (pT, |eta|) bin layout.
        validation: files to compare the fitted tables with (summary in ``model.yaml``).
        epochs: no effect (one pass).
        resume: no effect beyond a log line; the pass restarts.
        device: no effect (numpy on the CPU).
        seed: no effect on the fit, which draws no random numbers; recorded in ``model.yaml``.
        config_overrides: settings of :class:`SmearingConfig` to override.

    Returns:
        ``out_dir``.

    Raises:
        InvalidInputError: no file is given, a file is missing, contains no event or
            lacks PFCs, or a setting is invalid.
    """
    config = SmearingConfig.from_preset(preset, config_overrides)
    training_files = _check_files(data, "training")
    validation_files = _check_files(validation or [], "validation", allow_empty=True)
    _log_ignored_options(epochs=epochs, resume=resume, device=device)

    binning = Binning.build(config, card)
    log.info(
        "fitting smearing tables for %s: %d GEN pT x %d |eta| bins, matching Delta R < %g",
        card.name,
        binning.n_pt,
        binning.n_eta,
        config.match_delta_r,
    )
    accumulator = accumulate(training_files, card, binning, config, what="training")
    if accumulator.events == 0:
        raise InvalidInputError(f"the training files {', '.join(map(str, training_files))} contain no event")
    tables = fit_tables(
        accumulator,
        min_entries_efficiency=config.min_entries_efficiency,
        min_entries_resolution=config.min_entries_resolution,
        min_events_multiplicity=config.min_events_multiplicity,
        clip_sigmas=config.clip_sigmas,
    )

    validation_summary = None
    if validation_files:
        held_out = accumulate(validation_files, card, binning, config, what="validation")
        validation_summary = compare_with_validation(tables, held_out)
        _log_validation(validation_summary)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / MODEL_YAML).exists():
        log.warning("replacing the checkpoint in %s", out_dir)
    info = {
        "backend": BACKEND_NAME,
        "detector": card.name,
        "preset": preset,
        "config": config.to_dict(),
        "selection": selection_summary(card),
        "binning": binning.summary(),
        # The tables are written before model.yaml, so a folder with a model.yaml
        # contains its tables (their digest is checked on load).
        "tables": save_tables(tables, out_dir),
        "training_data": {"files": [str(path) for path in training_files], **accumulator.summary()},
        "seed": seed,
        "command": shlex.join(sys.argv),
    }
    if validation_summary is not None:
        info["validation"] = {"files": [str(path) for path in validation_files], **validation_summary}
    write_model_yaml(out_dir, info)
    log.info("wrote the smearing checkpoint %s", out_dir)
    return out_dir


def accumulate(
    paths: list[Path], card: DetectorCard, binning: Binning, config: SmearingConfig, *, what: str
) -> SmearingAccumulator:
    """Stream the files chunk by chunk through ``card.preprocess`` into a new accumulator.

    Args:
        paths: files with GEN and PFC.
        card: the detector card.
        binning: the bin layout.
        config: the fit settings (matching cone, chunk size).
        what: ``training`` or ``validation``, for progress and log lines.

    Returns:
        The filled accumulator.
    """
    from parnassus.core import io

    accumulator = SmearingAccumulator(binning, card, config.match_delta_r)
    total = sum(io.count_events(path) for path in paths)
    rate = RateLogger(log, total, f"smearing fit ({what})")
    with progress_bar(total, f"fitting smearing tables ({what})") as bar:
        for path in paths:
            for chunk in io.iter_events(path, step_size=config.step_size, require_pfc=True):
                chunk, _ = card.preprocess(chunk, source=str(path))
                accumulator.update(chunk, source=str(path))
                bar.update(len(chunk))
                rate.update(len(chunk))
    rate.finish()
    return accumulator


def _check_files(paths: list[Path] | None, what: str, allow_empty: bool = False) -> list[Path]:
    files = [Path(path) for path in paths or []]
    if not files and not allow_empty:
        raise InvalidInputError(f"no {what} file given: pass at least one file with GEN and PFC")
    for path in files:
        if not path.is_file():
            raise InvalidInputError(f"{what} file {path} not found")
    return files


def _log_ignored_options(*, epochs: int | None, resume: bool, device: str | None) -> None:
    if epochs is not None:
        log.info("the smearing fit is one pass over the data: epochs=%s has no effect", epochs)
    if resume:
        log.info("the smearing fit is one pass over the data: --resume restarts it from the beginning")
    if device is not None:
        log.info("the smearing backend runs on numpy: device=%s has no effect", device)


def _log_validation(summary: dict) -> None:
    for label, entry in summary["gen_classes"].items():
        matched = entry["matched_fraction"]
        log.info(
            "validation, GEN %s: matched fraction expected %.4f, observed %.4f",
            label,
            matched["expected"],
            matched["observed"],
        )
    unmatched = summary["mean_unmatched_pfc_per_event"]
    if unmatched:
        log.info(
            "validation: unmatched PFCs per event expected %.3f, observed %.3f",
            unmatched["expected"],
            unmatched["observed"],
        )
