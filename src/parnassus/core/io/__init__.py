"""Event files: read, stream, write and count ROOT (evt_tree), Parquet and HepMC3.

Reading recognises the format from the file's content, writing from the suffix
(.root, .parquet, .hepmc, .hepmc3, .hepmc.gz, .hepmc3.gz). Every reader streams in
chunks of a given number of events, and every writer writes to a temporary name
that is renamed only when the file is complete.

>>> import awkward as ak, tempfile, pathlib
>>> from parnassus.core import events as ev
>>> gen = ev.make_particles(*[ak.Array([[1.0, 2.0], [3.0]])] * 6, ak.Array([[0, 4], [2]]))
>>> path = pathlib.Path(tempfile.mkdtemp()) / "events.parquet"
>>> write_events(ev.make_events(gen), path)
>>> count_events(path), read_events(path).gen.pt.tolist()
(2, [[1.0, 2.0], [3.0]])
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import awkward as ak

from parnassus.core.io import detect, validation
from parnassus.core.io.atomic import atomic_output
from parnassus.core.io.detect import detect_format, format_from_suffix
from parnassus.core.io.validation import InputReport
from parnassus.exceptions import InvalidInputError

__all__ = [
    "EventWriter",
    "InputReport",
    "atomic_output",
    "count_events",
    "detect_format",
    "format_from_suffix",
    "iter_events",
    "read_events",
    "write_events",
]

log = logging.getLogger(__name__)

#: Events per chunk when :func:`read_events` reads a whole file.
_READ_ALL_STEP = 100_000


def _reader(fmt: str):
    # Import per format, so reading ROOT does not import pyhepmc and the reverse.
    if fmt == detect.ROOT:
        from parnassus.core.io.root import iter_root

        return iter_root
    if fmt == detect.PARQUET:
        from parnassus.core.io.parquet import iter_parquet

        return iter_parquet
    from parnassus.core.io.hepmc import iter_hepmc

    return iter_hepmc


def _writer(fmt: str):
    if fmt == detect.ROOT:
        from parnassus.core.io.root import RootWriter

        return RootWriter
    if fmt == detect.PARQUET:
        from parnassus.core.io.parquet import ParquetWriter

        return ParquetWriter
    from parnassus.core.io.hepmc import HepMCWriter

    return HepMCWriter


def iter_events(
    path: str | os.PathLike,
    step_size: int = 10000,
    *,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    require_pfc: bool = False,
    report: InputReport | None = None,
) -> Iterator[ak.Array]:
    """Stream the events of a file in chunks.

    Each chunk is checked (see :mod:`parnassus.core.io.validation`): invalid values
    raise an error naming the file, branch and event; phi outside (-pi, pi] is
    wrapped. The corrections are logged as warnings when the iteration ends.

    Args:
        path: a ROOT (evt_tree), Parquet or HepMC3 file; the content decides the format.
        step_size: events per chunk (the last chunk may be shorter).
        entry_start, entry_stop: the range of events to read, as entry numbers (None: all).
        require_pfc: raise an error when the file has no PFCs.
        report: an :class:`InputReport` to collect the corrections in (optional).

    Yields:
        ak.Array of events ``{gen, [pfc], event_number}`` (see :mod:`parnassus.core.events`).

    Raises:
        InputFileNotFoundError, UnknownFormatError, MissingTreeError, MissingBranchError,
        InvalidInputError.
    """
    if int(step_size) < 1:
        raise ValueError(f"step_size must be at least 1 event, got {step_size}")
    for name, value in (("entry_start", entry_start), ("entry_stop", entry_stop)):
        if value is not None and int(value) < 0:
            raise ValueError(f"{name} must be a non-negative entry number, got {value}")
    fmt = detect_format(path)
    report = report if report is not None else InputReport(str(path))
    log.debug("reading %s as %s in chunks of %d events", path, fmt, step_size)

    chunks = _reader(fmt)(path, int(step_size), entry_start, entry_stop, require_pfc, report)
    try:
        yield from chunks
    finally:
        chunks.close()
        report.log()


def read_events(
    path: str | os.PathLike,
    *,
    entry_start: int | None = None,
    entry_stop: int | None = None,
    require_pfc: bool = False,
    report: InputReport | None = None,
) -> ak.Array:
    """Read the events of a file (or a range of entries) into memory.

    Args and errors as :func:`iter_events`.

    Returns:
        ak.Array of events ``{gen, [pfc], event_number}``; a file without events
        gives an empty GEN-only array.
    """
    chunks = list(
        iter_events(path, _READ_ALL_STEP, entry_start=entry_start, entry_stop=entry_stop,
                    require_pfc=require_pfc, report=report)
    )
    if not chunks:
        return validation.empty_events()
    return chunks[0] if len(chunks) == 1 else ak.concatenate(chunks)


def count_events(path: str | os.PathLike) -> int:
    """Return the number of events of a file without reading the particles.

    ROOT and Parquet read the metadata only; HepMC3 counts the event header lines.
    """
    fmt = detect_format(path)
    if fmt == detect.ROOT:
        from parnassus.core.io.root import count_root

        return count_root(path)
    if fmt == detect.PARQUET:
        from parnassus.core.io.parquet import count_parquet

        return count_parquet(path)
    from parnassus.core.io.hepmc import count_hepmc

    return count_hepmc(path)


class EventWriter:
    """Stream event batches into one file that appears only when it is complete.

    The data go to a temporary name beside ``path``; :meth:`close` renames it.
    When a write fails, or the ``with`` block raises, the temporary file is
    removed and no output exists.

    >>> with EventWriter("out.root") as writer:  # doctest: +SKIP
    ...     for chunk in iter_events("in.hepmc"):
    ...         writer.write(chunk)

    Attributes:
        path: the output file.
        format: "root", "parquet" or "hepmc", from the suffix.
        events_written: events written so far.
        report: corrections made to the written events (phi wrapped, empty events).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.format = format_from_suffix(self.path)
        self.events_written = 0
        self.report = InputReport(f"events written to {self.path}")
        self._atomic = None
        self._backend = None
        self._state = "new"

    def _open(self) -> None:
        self._atomic = atomic_output(self.path)
        temporary = self._atomic.__enter__()
        try:
            self._backend = _writer(self.format)(temporary, str(self.path))
        except BaseException as error:
            self._abort(error)
            raise
        self._state = "open"

    def _abort(self, error: BaseException) -> None:
        self._state = "failed"
        if self._backend is not None:
            try:
                self._backend.abort()
            except Exception as close_error:  # the original error matters more
                log.debug("closing the partial %s failed: %s", self.path, close_error)
        if self._atomic is not None:
            try:
                self._atomic.__exit__(type(error), error, error.__traceback__)
            except BaseException as cleanup_error:
                if cleanup_error is not error:
                    raise
        # The caller reports the error itself, so this line only records what happened to the file.
        level = logging.WARNING if self.events_written else logging.DEBUG
        log.log(level, "writing %s failed after %d events; no output was kept", self.path, self.events_written)

    def write(self, events: ak.Array) -> None:
        """Check an event batch and append it to the file.

        Raises:
            InvalidInputError: the batch contains invalid values, or other fields than
                the first batch; the partial output is removed.
        """
        if self._state == "new":
            self._open()
        if self._state != "open":
            raise InvalidInputError(f"the writer of {self.path} is {self._state}; open a new EventWriter")

        try:
            context = validation.ChunkContext(self.report.path, self.events_written)
            checked = validation.check_events(events, context, self.report)
            self._backend.write(checked)
        except BaseException as error:
            self._abort(error)
            raise
        self.events_written += len(checked)

    def close(self) -> None:
        """Finish the file and rename it to :attr:`path`."""
        if self._state == "closed":
            return
        if self._state == "failed":
            raise InvalidInputError(f"writing {self.path} failed earlier; no output was kept")
        if self._state == "new":
            self._open()
        try:
            self._backend.close()
            self._atomic.__exit__(None, None, None)
        except BaseException as error:
            self._abort(error)
            raise
        self._state = "closed"
        self.report.log(include_empty=False)
        log.info("wrote %d events to %s", self.events_written, self.path)

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            self.close()
        elif self._state in ("new", "open"):
            self._abort(exc)
        return False


def write_events(events: ak.Array, path: str | os.PathLike) -> None:
    """Write an event batch to a new file, atomically; the suffix picks the format.

    Args:
        events: ak.Array of events ``{gen, [pfc], event_number}``.
        path: .root (evt_tree), .parquet, .hepmc, .hepmc3, .hepmc.gz or .hepmc3.gz.

    Raises:
        UnknownFormatError: the suffix names no format.
        InvalidInputError: the events hold invalid values (NaN, class outside 0-4).
    """
    with EventWriter(path) as writer:
        writer.write(events)
