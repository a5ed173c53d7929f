"""Generate GEN events into memory or into a file, with progress and logging."""

from __future__ import annotations

import logging
import os
from contextlib import closing
from pathlib import Path

import awkward as ak

from parnassus.core.progress import RateLogger, progress_bar
from parnassus.generation.parallel import GenerationPool, iter_generated
from parnassus.generation.processes import Process, get_process
from parnassus.generation.pythia_gen import DEFAULT_STEP_SIZE
from parnassus.generation.seeding import DEFAULT_BLOCK_SIZE, validate_seed, validate_stream_range

log = logging.getLogger(__name__)


def generate_events(
    process: Process | str,
    n_events: int,
    seed: int,
    *,
    first_event: int = 0,
    jobs: int = 1,
    step_size: int = DEFAULT_STEP_SIZE,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> ak.Array:
    """Generate GEN events into memory.

    Same seed, range and block size give bitwise the same events, for any number of
    jobs and any step size.

    Args:
        process: a process name (ttbar, h4l, qcd-470-600, qcd-600-800, minbias) or
            a :class:`parnassus.generation.processes.Process`.
        n_events: events to generate.
        seed: the user seed, 0 .. 89,999 (see :mod:`parnassus.generation.seeding`).
        first_event: stream index of the first event.
        jobs: worker processes.
        step_size: events per Pythia ``nextBatch`` call.
        block_size: events per random-number block (the events depend on it).

    Returns:
        ak.Array of ``{gen, event_number}`` records, ``n_events`` long. GEN
        particles carry ``pdgid``; event numbers are ``seed * 10**7 + stream index``.
    """
    chunks = iter_generated(
        process, n_events, seed, first_event=first_event, jobs=jobs, step_size=step_size, block_size=block_size
    )
    return ak.concatenate(list(chunks))


def generate_file(
    path: str | os.PathLike,
    process: Process | str,
    n_events: int,
    seed: int,
    *,
    first_event: int = 0,
    jobs: int = 1,
    step_size: int = DEFAULT_STEP_SIZE,
    block_size: int = DEFAULT_BLOCK_SIZE,
    pool: GenerationPool | None = None,
) -> int:
    """Generate GEN events into an event file, streaming chunk by chunk.

    The format follows the suffix (.root, .parquet, .hepmc, .hepmc3, .hepmc.gz).
    The file is written under a temporary name and renamed when complete, so an
    error or Ctrl-C leaves no partial output. Progress (events/s, ETA) goes to a
    bar on a terminal and to the log every 10 s.

    Args:
        path: the output file.
        process, n_events, seed, first_event, jobs, step_size, block_size: as for
            :func:`generate_events`.
        pool: worker processes to reuse over several calls
            (:class:`parnassus.generation.parallel.GenerationPool`), in place of ``jobs``.

    Returns:
        The number of events written.

    Raises:
        InvalidInputError: for an unknown process, invalid counts or seed, or an
            unknown output suffix, before anything is generated.
    """
    from parnassus.core.io import EventWriter, format_from_suffix

    # Check every argument before Pythia starts, not after an hour of generation.
    path = Path(path)
    format_from_suffix(path)
    process = get_process(process) if isinstance(process, str) else process
    validate_seed(seed)
    validate_stream_range(first_event, n_events, block_size)

    description = f"generate {process.name}"
    rate = RateLogger(log, n_events, description)
    written = 0
    chunks = iter_generated(
        process, n_events, seed, first_event=first_event, jobs=jobs, step_size=step_size, block_size=block_size, pool=pool
    )
    # closing() stops the workers at once when writing fails, not when the
    # traceback that keeps this frame alive is gone.
    with progress_bar(n_events, description) as bar, EventWriter(path) as writer, closing(chunks):
        for chunk in chunks:
            writer.write(chunk)
            written += len(chunk)
            bar.update(len(chunk))
            rate.update(len(chunk))
    rate.finish()
    log.info("wrote %d %s events (seed %d) to %s", written, process.name, seed, path)
    return written
