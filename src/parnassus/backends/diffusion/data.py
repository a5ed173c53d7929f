"""Training batches of the diffusion backend, streamed from event files.

Files are read chunk by chunk with :func:`parnassus.core.io.iter_events`, so
memory is bounded by one chunk (``chunk_size`` events) and its batches,
whatever the size of the files. Every chunk goes through ``card.preprocess``
(cuts, pT ordering, truncation to ``max_particles``).

Inside a chunk, events are grouped by PFC multiplicity (ties broken at random)
and each batch is padded only to its own largest GEN and PFC multiplicity, which
for a typical spread of multiplicities saves most of the work that padding every
event to 400 slots would cost.

A batch is a dict of numpy arrays (B = events, G = GEN slots, P = PFC slots):

- ``gen`` (B, G, 12), ``gen_mask`` (B, G), ``gen_globals`` (B, 9);
- ``pfc`` (B, P, 7), ``pfc_class`` (B, P, 5) one-hot, ``pfc_mask`` (B, P);
- ``n_per_class`` (B, 5), ``ht``, ``met_x``, ``met_y`` (B,) of the PFCs (GeV);
- ``particle_globals`` (B, 17): GEN globals and the normalised PFC event vector.

Masks are 1.0 for real particles and 0.0 for padding; padded feature values are 0.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.core.detector import DetectorCard, Standardisation
from parnassus.backends.diffusion import features as ft

log = logging.getLogger(__name__)


def pad_jagged(jagged: ak.Array, length: int, width: int | None = None) -> np.ndarray:
    """Pad a jagged ``(events, particles[, width])`` array with zeros to ``length`` slots."""
    padded = ak.fill_none(ak.pad_none(jagged, length, axis=1, clip=True), 0.0 if width is None else [0.0] * width, axis=1)
    array = ak.to_numpy(padded)
    return np.asarray(array, dtype=np.float32)


def mask_of(counts: np.ndarray, length: int) -> np.ndarray:
    """Return a ``(events, length)`` float32 mask with the first ``counts[i]`` slots set."""
    return (np.arange(length)[None, :] < np.asarray(counts)[:, None]).astype(np.float32)


def one_hot(classes: np.ndarray) -> np.ndarray:
    """One-hot encode integer classes into the last axis (5 values)."""
    return np.eye(ft.N_CLASSES, dtype=np.float32)[np.asarray(classes, dtype=np.int64)]


def gen_inputs(gen: ak.Array, table: dict[str, Standardisation]) -> tuple[ak.Array, np.ndarray, np.ndarray]:
    """Return the jagged GEN features ``(events, particles, 12)``, the GEN globals and multiplicities."""
    kinematics = ft.particle_kinematics(gen, table)
    classes = ak.values_astype(gen["class"], np.int64)
    eye = np.eye(ft.N_CLASSES, dtype=np.float32)
    flat_onehot = eye[ak.to_numpy(ak.flatten(classes))]
    onehot = ak.unflatten(flat_onehot, ak.num(classes))
    features = ak.concatenate([kinematics, onehot], axis=2)
    return features, ft.gen_globals(gen, table), ev.multiplicity(gen)


@dataclass
class Chunk:
    """The features of one preprocessed chunk, jagged, ready to be cut into batches."""

    gen: ak.Array
    gen_n: np.ndarray
    gen_globals: np.ndarray
    pfc: ak.Array
    pfc_class: ak.Array
    pfc_n: np.ndarray
    n_per_class: np.ndarray
    ht: np.ndarray
    met_x: np.ndarray
    met_y: np.ndarray
    particle_globals: np.ndarray

    def __len__(self) -> int:
        return len(self.gen_n)


def make_chunk(events: ak.Array, table: dict[str, Standardisation]) -> Chunk:
    """Compute the features of preprocessed (GEN, PFC) events."""
    gen, gen_globals, gen_n = gen_inputs(events.gen, table)
    quantities = ev.event_quantities(events.pfc)
    event_vector = ft.pfc_event_vector(
        quantities["n_per_class"].astype(np.float64), quantities["ht"], quantities["met_x"], quantities["met_y"], table
    )
    return Chunk(
        gen=gen,
        gen_n=gen_n,
        gen_globals=gen_globals,
        pfc=ft.particle_kinematics(events.pfc, table),
        pfc_class=ak.values_astype(events.pfc["class"], np.int64),
        pfc_n=quantities["n"],
        n_per_class=quantities["n_per_class"].astype(np.float32),
        ht=quantities["ht"].astype(np.float32),
        met_x=quantities["met_x"].astype(np.float32),
        met_y=quantities["met_y"].astype(np.float32),
        particle_globals=np.concatenate([gen_globals, event_vector], axis=1),
    )


def batch_from_chunk(chunk: Chunk, index: np.ndarray) -> dict[str, np.ndarray]:
    """Cut the events ``index`` out of a chunk and pad them to their largest multiplicities.

    Every batch has at least one GEN and one PFC slot, so that empty events still
    give well-formed tensors (their masks are all zero).
    """
    gen_n = chunk.gen_n[index]
    pfc_n = chunk.pfc_n[index]
    gen_length = max(int(gen_n.max(initial=0)), 1)
    pfc_length = max(int(pfc_n.max(initial=0)), 1)

    pfc_class = ak.fill_none(ak.pad_none(chunk.pfc_class[index], pfc_length, axis=1, clip=True), 0, axis=1)
    pfc_mask = mask_of(pfc_n, pfc_length)
    return {
        "gen": pad_jagged(chunk.gen[index], gen_length, ft.F_GEN),
        "gen_mask": mask_of(gen_n, gen_length),
        "gen_globals": chunk.gen_globals[index],
        "pfc": pad_jagged(chunk.pfc[index], pfc_length, ft.F_KIN),
        "pfc_class": one_hot(ak.to_numpy(pfc_class)) * pfc_mask[:, :, None],
        "pfc_mask": pfc_mask,
        "n_per_class": chunk.n_per_class[index],
        "ht": chunk.ht[index],
        "met_x": chunk.met_x[index],
        "met_y": chunk.met_y[index],
        "particle_globals": chunk.particle_globals[index],
    }


def grouped_batches(multiplicity: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Split event indices into batches of similar multiplicity.

    Events are ordered by ``multiplicity`` (ties broken at random when ``rng`` is
    given), cut into consecutive groups of ``batch_size``, and the groups are
    shuffled. Without ``rng`` the order is deterministic (validation).
    """
    multiplicity = np.asarray(multiplicity, dtype=np.float64)
    jitter = rng.uniform(0.0, 0.5, size=len(multiplicity)) if rng is not None else 0.0
    order = np.argsort(multiplicity + jitter, kind="stable")
    groups = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if rng is not None:
        rng.shuffle(groups)
    return groups


@dataclass
class EventStream:
    """Streams (GEN, PFC) events from files as preprocessed chunks.

    Attributes:
        paths: event files with GEN and PFC (any format parnassus reads).
        card: the detector card whose ``preprocess`` is applied.
        chunk_size: events read at a time; bounds the memory.
        max_events: use only the first N events of the files, in the given file
            order (None: all); the subset stays the same when the order is shuffled.
    """

    paths: list[Path]
    card: DetectorCard
    chunk_size: int = 8192
    max_events: int | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def __iter__(self) -> Iterator[ak.Array]:
        return self.chunks(None)

    def chunks(self, rng: np.random.Generator | None) -> Iterator[ak.Array]:
        """Yield preprocessed chunks; the file order is shuffled when ``rng`` is given.

        NOTE: events are shuffled inside a chunk only, so files should not be
        sorted by process or multiplicity over more than a chunk.
        """
        from parnassus.core.io import iter_events

        limits = self._file_limits()
        order = [position for position in range(len(self.paths)) if limits[position] != 0]
        if rng is not None:
            rng.shuffle(order)
        for position in order:
            path = self.paths[position]
            remaining = limits[position]
            for events in iter_events(path, step_size=self.chunk_size, require_pfc=True):
                if remaining is not None:
                    events = events[:remaining]
                    remaining -= len(events)
                if len(events):
                    processed, _ = self.card.preprocess(events, source=str(path))
                    yield processed
                if remaining is not None and remaining <= 0:
                    break

    def _file_limits(self) -> list[int | None]:
        """Return how many events to read from each file: None for all of them."""
        if self.max_events is None:
            return [None] * len(self.paths)
        limits = []
        remaining = self.max_events
        for path in self.paths:
            take = min(remaining, self._count_file(path))
            limits.append(take)
            remaining -= take
        return limits

    def _count_file(self, path: Path) -> int:
        from parnassus.core.io import count_events

        key = str(path)
        if key not in self.counts:
            self.counts[key] = int(count_events(path))
        return self.counts[key]

    def count(self) -> int:
        """Return the number of events streamed: all in the files, or ``max_events`` if fewer."""
        total = sum(self._count_file(path) for path in self.paths)
        return total if self.max_events is None else min(total, self.max_events)

    def first_events(self, limit: int) -> ak.Array:
        """Return up to ``limit`` preprocessed events from the start of the files."""
        parts = []
        total = 0
        for events in self.chunks(None):
            parts.append(events[: limit - total])
            total += len(parts[-1])
            if total >= limit:
                break
        if not parts:
            raise ValueError(f"no events found in {', '.join(map(str, self.paths))}")
        return ak.concatenate(parts) if len(parts) > 1 else parts[0]


def iterate_batches(
    stream: EventStream,
    table: dict[str, Standardisation],
    batch_size: int,
    rng: np.random.Generator | None,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield padded batches from a stream; shuffled when ``rng`` is given, deterministic otherwise."""
    for events in stream.chunks(rng):
        chunk = make_chunk(events, table)
        for index in grouped_batches(chunk.pfc_n, batch_size, rng):
            yield batch_from_chunk(chunk, index)


def summarise(stream: EventStream, events: ak.Array) -> dict:
    """Describe the training data for ``model.yaml``: files, event count, mean multiplicities."""
    gen_n = ev.multiplicity(events.gen)
    pfc_counts = ev.multiplicity_per_class(events.pfc)
    return {
        "files": [str(path) for path in stream.paths],
        "events": stream.count(),
        "summary_events": len(events),
        "mean_gen_multiplicity": float(gen_n.mean()) if len(gen_n) else 0.0,
        "mean_pfc_multiplicity_per_class": [float(value) for value in pfc_counts.mean(axis=0)] if len(pfc_counts) else [],
    }
