"""Generate a range of a seed's event stream in one process or in several, in order.

The range is cut into random-number blocks (:func:`parnassus.generation.seeding.plan_blocks`).
With ``jobs > 1`` a pool of worker processes generates the blocks, each worker
with its own Pythia instance, and the results come back in block order. The
workers are started with ``spawn``, so ``fork`` copies no Pythia state. Because each block restarts
Pythia's random numbers from its own seed, the events are the same for any
number of jobs.

As with any ``spawn`` pool, a script that generates with ``jobs > 1`` must call
it under ``if __name__ == "__main__":``, because every worker imports the
script's main module again.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import awkward as ak

from parnassus.exceptions import InvalidInputError
from parnassus.generation.processes import Process, get_process
from parnassus.generation.pythia_gen import DEFAULT_STEP_SIZE, PythiaGenerator
from parnassus.generation.seeding import DEFAULT_BLOCK_SIZE, BlockTask, plan_blocks, validate_seed

log = logging.getLogger(__name__)

# One generator per worker process, kept between blocks of the same process and
# seed. Making it in a pool initializer instead would make a failing Pythia
# initialisation look like a broken pool.
_worker_generator: PythiaGenerator | None = None


def _ignore_interrupt() -> None:
    # Ctrl-C reaches every process of the terminal's group. Only the parent
    # handles it, by terminating the pool.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _generate_block(arguments: tuple[Process, int, int, BlockTask]) -> ak.Array:
    global _worker_generator
    process, seed, step_size, task = arguments
    generator = _worker_generator
    if generator is None or generator.process != process or generator.seed != seed:
        # Free the old Pythia instance before initialising the new one.
        generator = _worker_generator = None
        generator = _worker_generator = PythiaGenerator(process, seed)
    return ak.concatenate(list(generator.generate(task, step_size)))


def validate_jobs(jobs) -> int:
    """Return ``jobs`` after checking it is a positive integer.

    Raises:
        InvalidInputError: (a ValueError) otherwise.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InvalidInputError(f"the number of jobs must be a positive integer, got {jobs!r}")
    return jobs


class GenerationPool:
    """Worker processes that generate blocks and keep their Pythia instances between calls.

    Pass one pool to several :func:`iter_generated` calls (chunks of the same sample)
    to pay for starting the workers and initialising Pythia once per worker instead
    of once per call. Use it as a context manager: leaving the ``with`` block
    normally waits for the workers, leaving it with an exception stops them.

    Args:
        jobs: worker processes.
    """

    def __init__(self, jobs: int):
        self.jobs = validate_jobs(jobs)
        self._executor: ProcessPoolExecutor | None = None

    def imap(self, arguments: list[tuple[Process, int, int, BlockTask]]) -> Iterator[ak.Array]:
        """Start generating the blocks of ``arguments`` and return an iterator over their events, in block order."""
        if self._executor is None:
            # A ProcessPoolExecutor, unlike multiprocessing.Pool, raises BrokenProcessPool
            # when a worker dies (a crash inside Pythia, the out-of-memory killer)
            # instead of waiting for it forever.
            context = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(max_workers=self.jobs, mp_context=context, initializer=_ignore_interrupt)
        return self._executor.map(_generate_block, arguments)

    def close(self) -> None:
        """Wait for the workers to finish and stop them."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def terminate(self) -> None:
        """Stop the workers now: after an error, Ctrl-C or a consumer that stopped early."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # The executor can only cancel pending blocks, and running ones would finish
        # first, which takes seconds. Python 3.14 has terminate_workers() for this.
        workers = getattr(executor, "_processes", None) or {}
        processes = list(workers.values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join()
        log.debug("terminated %d generation worker(s)", len(processes))

    def __enter__(self) -> GenerationPool:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None:
            self.close()
        else:
            self.terminate()
        return False


def iter_generated(
    process: Process | str,
    n_events: int,
    seed: int,
    *,
    first_event: int = 0,
    jobs: int = 1,
    step_size: int = DEFAULT_STEP_SIZE,
    block_size: int = DEFAULT_BLOCK_SIZE,
    pool: GenerationPool | None = None,
) -> Iterator[ak.Array]:
    """Generate events ``first_event .. first_event + n_events - 1`` of a seed's stream, in order.

    Args:
        process: a :class:`Process` or its name (see :data:`parnassus.generation.processes.PROCESSES`).
        n_events: events to generate (at least 1).
        seed: the user seed, 0 .. :data:`parnassus.generation.seeding.MAX_SEED`.
        first_event: stream index of the first event; events ``i`` of the same
            seed are the same whichever range contains them.
        jobs: worker processes; 1 generates in this process. Ignored when ``pool``
            is given.
        step_size: events per Pythia ``nextBatch`` call, which bounds the memory of
            one chunk; the events do not depend on it.
        block_size: events per random-number block; the events depend on it, so
            keep the default unless a test needs small blocks.
        pool: worker processes to reuse (see :class:`GenerationPool`); on an error
            or an early stop the pool is terminated.

    Yields:
        GEN event batches ``{gen, event_number}``: at most ``step_size`` events
        each when generating in this process, one block each with workers.

    Raises:
        InvalidInputError: for an unknown process or an invalid count, seed, range,
            number of jobs or step size.
    """
    process = get_process(process) if isinstance(process, str) else process
    seed = validate_seed(seed)
    jobs = pool.jobs if pool is not None else validate_jobs(jobs)
    if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
        raise InvalidInputError(f"the step size must be a positive integer, got {step_size!r}")
    tasks = plan_blocks(first_event, n_events, block_size)

    log.info(
        "generating %d %s events (stream indices %d .. %d of seed %d) in %d block(s) with %d job(s)",
        n_events, process.name, first_event, first_event + n_events - 1, seed, len(tasks), min(jobs, len(tasks)),
    )
    if pool is None and (jobs == 1 or len(tasks) == 1):
        generator = PythiaGenerator(process, seed)
        for task in tasks:
            yield from generator.generate(task, step_size)
        return

    arguments = [(process, seed, step_size, task) for task in tasks]
    if pool is not None:
        yield from _iter_pool(pool, arguments)
        return
    with GenerationPool(min(jobs, len(tasks))) as own_pool:
        yield from _iter_pool(own_pool, arguments)


def _iter_pool(pool: GenerationPool, arguments) -> Iterator[ak.Array]:
    finished = False
    try:
        yield from pool.imap(arguments)
        finished = True
    finally:
        if not finished:
            pool.terminate()
