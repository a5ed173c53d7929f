"""Flattening of jagged particle collections into checked numpy arrays."""

from __future__ import annotations

import awkward as ak
import numpy as np

from parnassus.core.events import FLOAT_FIELDS, N_CLASSES, PARTICLE_FIELDS
from parnassus.exceptions import InvalidInputError


def flatten_particles(events: ak.Array, collection: str, source: str) -> dict[str, np.ndarray]:
    """Flatten one particle collection to float64/int64 numpy arrays, with counts and offsets per event.

    Args:
        events: an event batch.
        collection: ``gen`` or ``pfc``.
        source: the file name or another label for error messages.

    Returns:
        A dict with one flat array per particle field (``pt``, ``eta``, ``phi``, ``vx``,
        ``vy``, ``vz``, ``class``), plus ``counts`` (events,) and ``offsets`` (events + 1,).

    Raises:
        InvalidInputError: a field is missing, a class is outside 0-4, a pT is not
            positive or a value is not finite. The message names the event.
    """
    if collection not in ak.fields(events):
        raise InvalidInputError(f"{source}: the events have no {collection!r} field (fields: {ak.fields(events)})")
    particles = events[collection]
    missing = [name for name in PARTICLE_FIELDS if name not in ak.fields(particles)]
    if missing:
        raise InvalidInputError(f"{source}: {collection} particles lack the fields {', '.join(missing)}")

    counts = ak.to_numpy(ak.num(particles, axis=1)).astype(np.int64)
    flat: dict[str, np.ndarray] = {"counts": counts, "offsets": np.concatenate([[0], np.cumsum(counts)])}
    for name in FLOAT_FIELDS:
        flat[name] = ak.to_numpy(ak.flatten(particles[name])).astype(np.float64)
    flat["class"] = ak.to_numpy(ak.flatten(particles["class"])).astype(np.int64)

    problems = {
        "class": (flat["class"] < 0) | (flat["class"] >= N_CLASSES),
        "pt": ~(flat["pt"] > 0),
    }
    for name in FLOAT_FIELDS:
        problems[f"{name} (not finite)"] = ~np.isfinite(flat[name])
    for what, bad in problems.items():
        if np.any(bad):
            index = int(np.flatnonzero(bad)[0])
            event = int(np.searchsorted(flat["offsets"], index, side="right") - 1)
            if "event_number" in ak.fields(events):
                event = int(events.event_number[event])
            field = what.split(" ")[0]
            raise InvalidInputError(
                f"{source}: event {event} has a {collection} particle with {what} = {flat[field][index]}; "
                "classes must be 0-4, pT positive and every value finite: fix or drop the event"
            )
    return flat
