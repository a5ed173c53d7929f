"""One Pythia 8 instance that generates GEN events of a process, block by block.

Pythia is imported here and nowhere else in parnassus, when a generator is made.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import awkward as ak

from parnassus.core import events as ev
from parnassus.exceptions import MissingDependencyError, ParnassusError
from parnassus.generation.gen_record import gen_particles
from parnassus.generation.processes import Process, get_process
from parnassus.generation.seeding import BlockTask, event_numbers, pythia_seed, validate_seed

log = logging.getLogger(__name__)

#: Events per ``nextBatch`` call and per yielded chunk, unless the caller sets it.
DEFAULT_STEP_SIZE = 500

# nextBatch makes at most this many attempts per requested event. Pythia itself
# retries failed steps, so a failed event is rare.
_MAX_TRIALS_PER_EVENT = 2.0


class GenerationError(ParnassusError, RuntimeError):
    """Pythia rejected a setting, failed to initialise or failed to generate events."""


def _import_pythia():
    try:
        import pythia8mc
    except ImportError as error:
        raise MissingDependencyError(
            "event generation needs Pythia 8 (the pythia8mc package): pip install 'parnassus[generation]'"
        ) from error
    return pythia8mc


class PythiaGenerator:
    """A Pythia 8 instance set up for one process and one user seed.

    Every block of the seed's stream starts from its own Pythia seed (see
    :mod:`parnassus.generation.seeding`), so :meth:`generate` returns the same
    events for a block whatever was generated before.

    Args:
        process: a :class:`Process` or its name.
        seed: the user seed, 0 .. :data:`parnassus.generation.seeding.MAX_SEED`.
    """

    def __init__(self, process: Process | str, seed: int):
        self.process = get_process(process) if isinstance(process, str) else process
        self.seed = validate_seed(seed)
        pythia8mc = _import_pythia()

        # The second argument switches off the banner printed on construction.
        self._pythia = pythia8mc.Pythia("", False)
        # Initialisation draws random numbers, and its results change the later
        # events even after a reseed, so every job initialises with block 0's seed.
        settings = [*self.process.pythia_settings(), "Random:setSeed = on", f"Random:seed = {pythia_seed(self.seed, 0)}"]
        for line in settings:
            if not self._pythia.readString(line):
                raise GenerationError(f"Pythia rejected the setting {line!r} of process {self.process.name!r}")
        if not self._pythia.init():
            raise GenerationError(f"Pythia failed to initialise process {self.process.name!r} (seed {self.seed})")
        log.debug("initialised Pythia for %s, seed %d", self.process.name, self.seed)

    def next_batch(self, n_events: int) -> ak.Array:
        """Generate ``n_events`` raw Pythia events (the ``nextBatch`` record), continuing the current stream."""
        batch = self._pythia.nextBatch(n_events, _MAX_TRIALS_PER_EVENT)
        if batch is None or len(batch) != n_events:
            got = 0 if batch is None else len(batch)
            raise GenerationError(
                f"Pythia generated {got} of {n_events} {self.process.name} events (seed {self.seed}): "
                "too many failed events; rerun with another seed"
            )
        return batch

    def generate(self, task: BlockTask, step_size: int = DEFAULT_STEP_SIZE) -> Iterator[ak.Array]:
        """Generate the events of one block task, in chunks of at most ``step_size`` events.

        Args:
            task: the block, the events to skip at its start and the events to keep.
            step_size: events per ``nextBatch`` call; the events do not depend on it.

        Yields:
            GEN event batches ``{gen, event_number}`` with event numbers
            ``seed * MAX_EVENTS_PER_SEED + stream index``.
        """
        self._pythia.rndm.init(pythia_seed(self.seed, task.block))

        skipped = 0
        while skipped < task.skip:
            n_events = min(step_size, task.skip - skipped)
            self.next_batch(n_events)
            skipped += n_events

        done = 0
        while done < task.count:
            n_events = min(step_size, task.count - done)
            gen = gen_particles(self.next_batch(n_events))
            numbers = event_numbers(self.seed, task.first_event + done, n_events)
            yield ev.make_events(gen, event_number=numbers)
            done += n_events
