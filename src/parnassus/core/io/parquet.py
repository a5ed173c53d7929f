"""Parquet files in awkward's layout: one row per event, one row group per written batch.

The columns are the event records of :mod:`parnassus.core.events` as nested Arrow
types: ``gen`` (list of structs pt, eta, phi, vx, vy, vz: float32, class: int8,
optional pdgid: int32), ``pfc`` (the same, optional) and ``event_number``
(int64). ``ak.from_parquet`` reads the files back without parnassus.
Reading streams row group by row group, so memory stays at about one chunk.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import awkward as ak
import numpy as np
import pyarrow
import pyarrow.parquet as pq

from parnassus.core import events as ev
from parnassus.core.io import validation
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)

_READ_ERRORS = (OSError, ValueError, pyarrow.ArrowException)


def _metadata(path) -> dict:
    try:
        return ak.metadata_from_parquet(path)
    except _READ_ERRORS as error:
        raise InvalidInputError(f"cannot read the Parquet file {path}: {error}") from error


def _particle_fields(form) -> list[str]:
    """Return the record fields of a list-of-records form, or [] for any other form."""
    content = getattr(form, "content", None)
    return list(content.fields) if content is not None and content.is_record else []


def _check_fields(form, path, require_pfc: bool) -> tuple[list[str], bool]:
    """Return the particle collections of a file and whether GEN has pdgid; raise if fields are missing."""
    top = list(form.fields) if hasattr(form, "fields") else []
    if "gen" not in top:
        raise InvalidInputError(
            f"field 'gen' not found in {path}; fields that exist: {', '.join(top) or '(none)'}. "
            "parnassus reads Parquet files with the event records gen, pfc, event_number"
        )
    collections = ["gen"] + (["pfc"] if "pfc" in top or require_pfc else [])

    has_pdgid = False
    for collection in collections:
        if collection not in top:
            raise InvalidInputError(f"field {collection!r} not found in {path}; fields that exist: {', '.join(top)}")
        particle_fields = _particle_fields(form.contents[top.index(collection)])
        for name in ev.PARTICLE_FIELDS:
            if name not in particle_fields:
                raise InvalidInputError(
                    f"field '{collection}.{name}' not found in {path}; fields of {collection!r} that exist: "
                    f"{', '.join(particle_fields) or '(none: not a list of particle records)'}"
                )
        if collection == "gen":
            has_pdgid = ev.PDGID_FIELD in particle_fields
    return collections, has_pdgid


def _raw_chunks(path, metadata: dict, step_size: int, entry_start: int, entry_stop: int) -> Iterator[tuple[int, ak.Array]]:
    """Yield (first entry, rows) chunks of exactly ``step_size`` rows (the last may be shorter), row group by row group."""
    buffer: list[ak.Array] = []
    buffered = 0
    chunk_start = entry_start
    group_start = 0

    for group, group_rows in enumerate(metadata["col_counts"]):
        group_stop = group_start + group_rows
        lo, hi = max(group_start, entry_start), min(group_stop, entry_stop)
        if lo < hi:
            rows = ak.from_parquet(path, row_groups=[group])[lo - group_start : hi - group_start]
            buffer.append(rows)
            buffered += len(rows)
            while buffered >= step_size:
                joined = ak.concatenate(buffer) if len(buffer) > 1 else buffer[0]
                yield chunk_start, joined[:step_size]
                chunk_start += step_size
                buffer = [joined[step_size:]]
                buffered = len(buffer[0])
        group_start = group_stop
        if group_start >= entry_stop:
            break

    if buffered:
        yield chunk_start, ak.concatenate(buffer) if len(buffer) > 1 else buffer[0]


def iter_parquet(
    path: str | os.PathLike,
    step_size: int,
    entry_start: int | None,
    entry_stop: int | None,
    require_pfc: bool,
    report: validation.InputReport,
) -> Iterator[ak.Array]:
    """Yield event batches of ``step_size`` events (the last may be shorter).

    Args:
        path: the Parquet file.
        step_size: events per chunk.
        entry_start, entry_stop: the range of rows to read (None: all).
        require_pfc: raise InvalidInputError when the file has no ``pfc`` field.
        report: collects the corrections.
    """
    metadata = _metadata(path)
    collections, has_pdgid = _check_fields(metadata["form"], path, require_pfc)
    n_rows = int(metadata["num_rows"])
    start = 0 if entry_start is None else max(0, min(int(entry_start), n_rows))
    stop = n_rows if entry_stop is None else max(start, min(int(entry_stop), n_rows))

    has_number = "event_number" in metadata["form"].fields
    if not has_number:
        log.warning("%s has no 'event_number' field; numbering events by row", path)

    for first, rows in _raw_chunks(path, metadata, step_size, start, stop):
        numbers = ak.to_numpy(rows.event_number).astype(np.int64) if has_number else first + np.arange(len(rows), dtype=np.int64)
        context = validation.ChunkContext(str(path), first, numbers)

        particles = {}
        for collection in collections:
            fields = validation.particle_fields(collection, has_pdgid)
            columns = {name: rows[collection][name] for name in fields}
            names = {name: f"{collection}.{name}" for name in fields}
            particles[collection] = validation.build_particles(columns, names, context, report)

        yield validation.assemble_events(particles, numbers, context, report)


def count_parquet(path: str | os.PathLike) -> int:
    """Return the number of rows (events) from the Parquet footer."""
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except _READ_ERRORS as error:
        raise InvalidInputError(f"cannot read the Parquet file {path}: {error}") from error


class ParquetWriter:
    """Write event batches as row groups of one Parquet file.

    Every batch becomes one row group, so a reader can stream the file back in
    the chunks it was written in. All batches need the same fields.
    """

    def __init__(self, path: str | os.PathLike, name: str | None = None):
        self.path = str(path)
        self.name = name or self.path
        self._writer: pq.ParquetWriter | None = None

    def write(self, events: ak.Array) -> None:
        """Append a checked event batch as one row group."""
        table = ak.to_arrow_table(events, extensionarray=False)
        if self._writer is None:
            # Dictionary encoding only costs time on continuous values (about 4 times slower writes).
            self._writer = pq.ParquetWriter(self.path, table.schema, compression="zstd", use_dictionary=False)
        elif not table.schema.equals(self._writer.schema, check_metadata=False):
            raise InvalidInputError(
                f"{self.name}: a batch with the fields {events.type.content} cannot follow batches with "
                f"the schema {self._writer.schema}; every batch written to one file needs the same fields"
            )
        if len(events):
            self._writer.write_table(table, row_group_size=len(events))

    def close(self) -> None:
        """Close the file; a file without any batch gets the GEN-only schema and no rows."""
        if self._writer is None:
            self.write(validation.empty_events())
        self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
