"""Align a sample with the reference event by event, and check that both hold the same GEN events.

A sample is comparable with the reference only on the same GEN events. The
evaluation pairs events by ``event_number``, so every reference event must be in
the sample exactly once and the sample must contain no other event. The GEN
particles of each pair must agree.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from parnassus.exceptions import InvalidInputError

#: How many event numbers an error message lists.
LISTED_EVENTS = 5

#: Largest relative difference of the GEN scalar pT sum of one event between two files.
#: Files store pT as float32 (relative precision 6e-8 per value), so the sum of a few
#: hundred values agrees to far better than this.
GEN_HT_TOLERANCE = 1e-4


def _listing(numbers: np.ndarray) -> str:
    shown = ", ".join(str(int(n)) for n in numbers[:LISTED_EVENTS])
    more = f", ... ({len(numbers)} in all)" if len(numbers) > LISTED_EVENTS else ""
    return shown + more


def _check_unique(event_number: np.ndarray, what: str) -> None:
    values, counts = np.unique(event_number, return_counts=True)
    duplicated = values[counts > 1]
    if len(duplicated):
        raise InvalidInputError(
            f"{what} has duplicate event numbers: {len(duplicated)} occur more than once ({_listing(duplicated)}); "
            "event numbers must be unique to pair events"
        )


def align(reference: ak.Array, sample: ak.Array, reference_name: str, sample_name: str) -> ak.Array:
    """Return the sample's events in the order of the reference's event numbers.

    Args:
        reference: reference events with ``gen`` and ``event_number``.
        sample: sample events with ``gen``, ``pfc`` and ``event_number``.
        reference_name: how to name the reference in errors (its file).
        sample_name: how to name the sample in errors (its name and file).

    Returns:
        The sample's events, reordered so that event i has the reference's event number i.

    Raises:
        InvalidInputError: when event numbers repeat, when the sample lacks reference
            events or holds extra ones (the message lists the first event numbers and
            the counts), or when the GEN particles of an event differ.
    """
    reference_numbers = ak.to_numpy(reference.event_number).astype(np.int64)
    sample_numbers = ak.to_numpy(sample.event_number).astype(np.int64)
    _check_unique(reference_numbers, reference_name)
    _check_unique(sample_numbers, sample_name)

    missing = np.setdiff1d(reference_numbers, sample_numbers)
    extra = np.setdiff1d(sample_numbers, reference_numbers)
    if len(missing) or len(extra):
        problems = []
        if len(missing):
            problems.append(f"lacks {len(missing)} events of the reference (event numbers {_listing(missing)})")
        if len(extra):
            problems.append(f"has {len(extra)} events that are not in the reference (event numbers {_listing(extra)})")
        raise InvalidInputError(
            f"{sample_name} {' and '.join(problems)}; {reference_name} has {len(reference_numbers)} events. "
            "Simulate the sample from the reference's GEN events, or limit both with --max-events"
        )

    sample_order = np.argsort(sample_numbers)
    position = sample_order[np.searchsorted(sample_numbers[sample_order], reference_numbers)]
    aligned = sample[position]
    check_same_gen(reference, aligned, reference_name, sample_name)
    return aligned


def check_same_gen(reference: ak.Array, sample: ak.Array, reference_name: str, sample_name: str) -> None:
    """Check that two aligned event batches hold the same GEN particles.

    Compares the number of GEN particles and the scalar sum of their pT (relative
    tolerance :data:`GEN_HT_TOLERANCE`) event by event.

    Raises:
        InvalidInputError: naming the first event that differs and how many do.
    """
    numbers = ak.to_numpy(reference.event_number)
    reference_counts = ak.to_numpy(ak.num(reference.gen, axis=1))
    sample_counts = ak.to_numpy(ak.num(sample.gen, axis=1))
    different = np.flatnonzero(reference_counts != sample_counts)
    if len(different):
        first = different[0]
        raise InvalidInputError(
            f"{sample_name} and {reference_name} have different GEN particles: event {int(numbers[first])} has "
            f"{int(sample_counts[first])} GEN particles in the sample and {int(reference_counts[first])} in the "
            f"reference ({len(different)} events differ: {_listing(numbers[different])}). "
            "A sample must be simulated from the reference's GEN events"
        )

    reference_ht = ak.to_numpy(ak.sum(reference.gen.pt, axis=1)).astype(np.float64)
    sample_ht = ak.to_numpy(ak.sum(sample.gen.pt, axis=1)).astype(np.float64)
    scale = np.maximum(np.abs(reference_ht), 1e-9)
    different = np.flatnonzero(np.abs(sample_ht - reference_ht) > GEN_HT_TOLERANCE * scale)
    if len(different):
        first = different[0]
        raise InvalidInputError(
            f"{sample_name} and {reference_name} have different GEN particles: event {int(numbers[first])} has a "
            f"GEN scalar pT sum of {sample_ht[first]:.6g} GeV in the sample and {reference_ht[first]:.6g} GeV in "
            f"the reference ({len(different)} events differ: {_listing(numbers[different])}). "
            "A sample must be simulated from the reference's GEN events"
        )
