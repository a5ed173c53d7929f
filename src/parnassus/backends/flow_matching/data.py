"""Streaming training data: files -> preprocessed chunks -> padded batches.

Events are read in chunks with :func:`parnassus.core.io.iter_events`, so memory
stays bounded by the chunk size whatever the size of the files. Within a chunk
the events are shuffled, then grouped by PFC multiplicity into batches. Each
batch is padded only to its own largest GEN and PFC multiplicity, so it avoids
the attention cost of padding every event to 400 slots. The order of the batches
of a chunk is shuffled again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.core.detector import DetectorCard
from parnassus.backends.flow_matching import features as ft

log = logging.getLogger(__name__)

#: Training data: a list of files or (for the Python API and tests) an events array.
DataSource = Sequence[Path] | ak.Array


def iter_raw_chunks(source: DataSource, chunk_size: int) -> Iterator[tuple[str, ak.Array]]:
    """Yield ``(name, events)`` chunks of at most ``chunk_size`` events with GEN and PFC.

    Args:
        source: files readable by :mod:`parnassus.core.io`, or an awkward Array of events.
        chunk_size: events per chunk.
    """
    if isinstance(source, ak.Array):
        if not ev.has_pfc(source):
            from parnassus.exceptions import InvalidInputError

            raise InvalidInputError("training events have no pfc field; training needs (GEN, PFC) pairs")
        for start in range(0, len(source), chunk_size):
            yield "events array", source[start : start + chunk_size]
        return

    from parnassus.core.io import iter_events

    for path in source:
        for chunk in iter_events(path, step_size=chunk_size, require_pfc=True):
            yield str(path), chunk


def count_source_events(source: DataSource) -> int:
    """Return the number of events in the training data (before preprocessing)."""
    if isinstance(source, ak.Array):
        return len(source)
    from parnassus.core.io import count_events

    return sum(int(count_events(path)) for path in source)


def describe_source(source: DataSource) -> list[str]:
    """Return the names of the data files, for ``model.yaml``."""
    if isinstance(source, ak.Array):
        return [f"in-memory events array ({len(source)} events)"]
    return [str(Path(path).resolve()) for path in source]


def preprocess_training_chunk(chunk: ak.Array, card: DetectorCard, name: str) -> tuple[ak.Array, int]:
    """Apply the card's preprocessing and drop events without any PFC.

    Events without PFC cannot be targets of the event stage (N >= 1 is required
    at sampling time), so they are left out of training and counted.

    Returns:
        The usable events and the number of events left out.
    """
    events, _ = card.preprocess(chunk, source=name)
    keep = ak.to_numpy(ak.num(events.pfc)) > 0
    dropped = int((~keep).sum())
    return events[keep], dropped


@dataclass
class Batch:
    """A padded training batch (numpy), ready for :meth:`to_torch`.

    Attributes:
        gen: ``(batch, gen slots, 12)``; gen_mask: ``(batch, gen slots)`` bool.
        pfc: ``(batch, pfc slots, 12)``; pfc_mask: ``(batch, pfc slots)`` bool.
        event_globals: ``(batch, 16)``; particle_globals: ``(batch, 20)``.
        event_target: normalised PFC ``[HT, N, MET_x, MET_y]``, ``(batch, 4)``.
    """

    gen: np.ndarray
    gen_mask: np.ndarray
    pfc: np.ndarray
    pfc_mask: np.ndarray
    event_globals: np.ndarray
    particle_globals: np.ndarray
    event_target: np.ndarray

    def __len__(self) -> int:
        return len(self.gen)

    def to_torch(self, device):
        """Return a dict of tensors on ``device`` with the same names."""
        import torch

        return {name: torch.from_numpy(np.ascontiguousarray(value)).to(device) for name, value in vars(self).items()}


def make_batch(features: ft.ChunkFeatures, index: np.ndarray) -> Batch:
    """Pad the events ``index`` of a chunk into one batch."""
    gen, gen_mask = ft.pad(features.gen_flat, features.gen_offsets[index], features.gen_counts[index])
    pfc, pfc_mask = ft.pad(features.pfc_flat, features.pfc_offsets[index], features.pfc_counts[index])
    return Batch(
        gen=gen,
        gen_mask=gen_mask,
        pfc=pfc,
        pfc_mask=pfc_mask,
        event_globals=features.event_globals(index).astype(np.float32),
        particle_globals=features.particle_globals(index),
        event_target=features.pfc_event[index].astype(np.float32),
    )


def batches_by_multiplicity(counts: np.ndarray, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Split event indices into batches of similar multiplicity.

    With ``rng``, events of equal multiplicity are ordered randomly and the batch
    order is shuffled; without it the split is deterministic (validation).
    """
    order = rng.permutation(len(counts)) if rng is not None else np.arange(len(counts))
    order = order[np.argsort(counts[order], kind="stable")]
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


class BatchStream:
    """Iterate over training batches of one pass through the data.

    Args:
        source: files or an events array.
        card: the detector card (preprocessing).
        norm: the normalisation table.
        batch_size: events per batch.
        chunk_size: events read at a time; bounds the memory.
        max_events: stop after this many raw events (None: all).
    """

    def __init__(
        self,
        source: DataSource,
        card: DetectorCard,
        norm: ft.Normalisation,
        batch_size: int,
        chunk_size: int,
        max_events: int | None = None,
    ):
        self.source = source
        self.card = card
        self.norm = norm
        self.batch_size = batch_size
        self.chunk_size = chunk_size
        self.max_events = max_events
        self.dropped_events = 0
        # Data that fits in one chunk is featurised once and kept, which costs no
        # more memory than one chunk. Larger data is read again on every pass.
        self._single_chunk: ft.ChunkFeatures | None = None

    def __call__(self, rng: np.random.Generator | None) -> Iterator[Batch]:
        """Yield batches; shuffled with ``rng``, in a fixed order when it is None."""
        for features in self._chunks():
            for index in batches_by_multiplicity(features.pfc_counts, self.batch_size, rng):
                yield make_batch(features, index)

    def _chunks(self) -> Iterator[ft.ChunkFeatures]:
        if self._single_chunk is not None:
            yield self._single_chunk
            return
        self.dropped_events = 0
        seen, yielded, last = 0, 0, None
        for name, chunk in iter_raw_chunks(self.source, self.chunk_size):
            if self.max_events is not None:
                if seen >= self.max_events:
                    break
                chunk = chunk[: self.max_events - seen]
            seen += len(chunk)

            events, dropped = preprocess_training_chunk(chunk, self.card, name)
            self.dropped_events += dropped
            if dropped:
                log.info("%s: left out %d events without any PFC", name, dropped)
            if len(events) == 0:
                continue
            last = ft.chunk_features(events, self.norm)
            yielded += 1
            yield last
        # Keep the data only when one chunk held all of it. Files shorter than a chunk
        # are read as separate chunks, so the count of chunks decides, not the event count.
        if yielded == 1:
            self._single_chunk = last


def read_fit_events(source: DataSource, card: DetectorCard, max_events: int, chunk_size: int) -> ak.Array:
    """Read up to ``max_events`` preprocessed training events for fitting the normalisation."""
    parts, total = [], 0
    for name, chunk in iter_raw_chunks(source, chunk_size):
        events, _ = preprocess_training_chunk(chunk[: max_events - total], card, name)
        parts.append(events)
        total += len(chunk[: max_events - total])
        if total >= max_events:
            break
    return ak.concatenate(parts) if parts else None
