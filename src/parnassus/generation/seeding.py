"""Seeds and event numbers: how one user seed becomes reproducible, independent Pythia streams.

A user seed ``S`` names an event stream of up to :data:`MAX_EVENTS_PER_SEED` events.
The stream is cut into blocks of ``block_size`` events (default
:data:`DEFAULT_BLOCK_SIZE`), and Pythia's random-number generator is restarted at
the start of every block with the seed

    pythia_seed(S, b) = 1 + S * MAX_BLOCKS_PER_SEED + b        (block b = 0, 1, ...)

Pythia's generator (Marsaglia-Zaman, as in Pythia's Rndm class) accepts seeds
1 .. 900,000,000; 0 would seed it from the clock. The map is one-to-one, so no two
blocks of any two user seeds share a random stream, and event ``i`` of seed ``S``
is the same whatever the number of parallel jobs, the step size, or the range of
the stream a call generates. The price is the seed range: 0 .. 89,999.

Event numbers are ``S * MAX_EVENTS_PER_SEED + i``, unique across seeds, so files
made with different seeds can be merged.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from parnassus.exceptions import InvalidInputError

#: The largest seed Pythia's random-number generator accepts.
PYTHIA_MAX_SEED = 900_000_000

#: Maximum number of events one user seed can name. Event numbers are seed * this + index.
MAX_EVENTS_PER_SEED = 10_000_000

#: Blocks (random-number restarts) one user seed can name.
MAX_BLOCKS_PER_SEED = 10_000

#: The largest user seed: every block seed must stay within Pythia's range.
MAX_SEED = PYTHIA_MAX_SEED // MAX_BLOCKS_PER_SEED - 1

#: Events per random-number block. The events of a seed depend on this value.
DEFAULT_BLOCK_SIZE = 1000


def validate_seed(seed) -> int:
    """Return ``seed`` as an int after checking it lies in 0 .. :data:`MAX_SEED`.

    Raises:
        InvalidInputError: (a ValueError) for a non-integer or out-of-range seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InvalidInputError(f"the seed must be an integer, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(
            f"seed {seed} is out of range: use 0 .. {MAX_SEED} (each seed names {MAX_BLOCKS_PER_SEED} "
            f"Pythia seeds within Pythia's range 1 .. {PYTHIA_MAX_SEED})"
        )
    return int(seed)


def validate_stream_range(first_event: int, n_events: int, block_size: int) -> None:
    """Check that events ``first_event .. first_event + n_events - 1`` fit in one seed's stream.

    Raises:
        InvalidInputError: for a non-positive count or block size, a negative first
            event, or a range beyond :data:`MAX_EVENTS_PER_SEED` events or
            :data:`MAX_BLOCKS_PER_SEED` blocks.
    """
    for name, value, minimum in (("number of events", n_events, 1), ("block size", block_size, 1), ("first event", first_event, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InvalidInputError(f"the {name} must be an integer, got {value!r}")
        if value < minimum:
            raise InvalidInputError(f"the {name} must be at least {minimum}, got {value}")

    stop = first_event + n_events
    if stop > MAX_EVENTS_PER_SEED:
        raise InvalidInputError(
            f"events {first_event} .. {stop - 1} exceed the {MAX_EVENTS_PER_SEED} events one seed can name; "
            "split the sample over several seeds"
        )
    last_block = (stop - 1) // block_size
    if last_block >= MAX_BLOCKS_PER_SEED:
        raise InvalidInputError(
            f"events up to {stop - 1} in blocks of {block_size} need {last_block + 1} random-number blocks, "
            f"more than the {MAX_BLOCKS_PER_SEED} one seed has; use a larger block size or several seeds"
        )


def pythia_seed(seed: int, block: int) -> int:
    """Return the Pythia seed (1 .. 900,000,000) of block ``block`` of user seed ``seed``."""
    if not 0 <= block < MAX_BLOCKS_PER_SEED:
        raise InvalidInputError(f"block {block} is outside 0 .. {MAX_BLOCKS_PER_SEED - 1}")
    return 1 + validate_seed(seed) * MAX_BLOCKS_PER_SEED + block


def event_numbers(seed: int, first_event: int, n_events: int) -> np.ndarray:
    """Return the event numbers ``seed * MAX_EVENTS_PER_SEED + i`` of events ``first_event ..`` (int64)."""
    return validate_seed(seed) * MAX_EVENTS_PER_SEED + np.arange(first_event, first_event + n_events, dtype=np.int64)


@dataclass(frozen=True)
class BlockTask:
    """The events of one random-number block that one call generates.

    Attributes:
        block: the block index within the seed's stream.
        skip: events generated and discarded at the start of the block, so that
            a range starting inside a block reproduces the same events.
        count: events kept after the skipped ones.
        first_event: the stream index of the first kept event.
    """

    block: int
    skip: int
    count: int
    first_event: int


def plan_blocks(first_event: int, n_events: int, block_size: int = DEFAULT_BLOCK_SIZE) -> list[BlockTask]:
    """Cut events ``first_event .. first_event + n_events - 1`` of a stream into block tasks, in order.

    >>> [(t.block, t.skip, t.count) for t in plan_blocks(1500, 1700, 1000)]
    [(1, 500, 500), (2, 0, 1000), (3, 0, 200)]
    """
    validate_stream_range(first_event, n_events, block_size)
    tasks = []
    start = first_event
    stop = first_event + n_events
    while start < stop:
        block = start // block_size
        block_stop = min((block + 1) * block_size, stop)
        tasks.append(BlockTask(block=block, skip=start - block * block_size, count=block_stop - start, first_event=start))
        start = block_stop
    return tasks
