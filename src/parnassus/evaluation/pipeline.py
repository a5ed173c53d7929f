"""Evaluate samples against a reference, one process at a time.

For each process, the pipeline aligns every sample with the reference by event
number and checks that their GEN particles agree. It applies the evaluation
acceptance and clusters the GEN jets once. Then it computes the observables of
the reference and of each sample (built-in and plugin ones), and finally the
distances to the reference and the statistical floor.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import awkward as ak

from parnassus.core import events as ev
from parnassus.core.progress import progress_bar
from parnassus.evaluation.alignment import align
from parnassus.evaluation.jets import DEFAULT_JET_PT_MIN
from parnassus.evaluation.metrics import DEFAULT_BOOTSTRAP, DEFAULT_CLIP_QUANTILE, DEFAULT_MAX_VALUES, Comparison, compare
from parnassus.evaluation.observables import (
    Values,
    add_extra_observables,
    apply_acceptance,
    gen_level,
    gen_values,
    sample_values,
)
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)

#: How many events of each process are kept for the event display.
DISPLAY_EVENTS = 1


@dataclass(frozen=True)
class Settings:
    """Settings of an evaluation.

    Attributes:
        abs_eta_max: the evaluation acceptance |eta| < abs_eta_max (from the detector card).
        jet_pt_min: minimum jet pT in GeV.
        n_bootstrap: bootstrap replicas per distance.
        max_values: distributions with more values are subsampled to this many.
        clip_quantile: values are clipped to the reference's [q, 1 - q] quantile range
            before distances are taken; 0 disables the clipping.
        seed: seed of the bootstrap, the floor splits and the subsampling.
        training_abs_eta_max: |eta| of the GEN selection, drawn in the event display.
        detector: name of the detector card, recorded in the report.
    """

    abs_eta_max: float = 2.5
    jet_pt_min: float = DEFAULT_JET_PT_MIN
    n_bootstrap: int = DEFAULT_BOOTSTRAP
    max_values: int = DEFAULT_MAX_VALUES
    clip_quantile: float = DEFAULT_CLIP_QUANTILE
    seed: int = 0
    training_abs_eta_max: float = 2.7
    detector: str = ""


@dataclass
class ProcessResult:
    """Everything the report shows for one process.

    Attributes:
        process: the process name.
        gen: GEN spectra.
        reference: the reference's observables.
        samples: sample name -> observables.
        comparison: distances and floors.
        display: sample name (and ``reference``) -> the first events with GEN and PFC,
            inside the acceptance of the GEN selection, for the event display.
        seconds: wall time of the evaluation of this process.
    """

    process: str
    gen: Values
    reference: Values
    samples: dict[str, Values]
    comparison: Comparison
    display: dict[str, ak.Array] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def n_events(self) -> int:
        return self.reference.n_events


def evaluate_process(
    process: str,
    reference: ak.Array,
    samples: dict[str, ak.Array],
    settings: Settings = Settings(),
    card=None,
    reference_name: str = "the reference",
    sample_names: dict[str, str] | None = None,
) -> ProcessResult:
    """Evaluate every sample of one process against its reference.

    Args:
        process: the process name.
        reference: reference events with ``gen`` and ``pfc``.
        samples: sample name -> events with ``gen`` and ``pfc`` (any order of events).
        settings: acceptance, jets, metrics.
        card: the :class:`DetectorCard` passed to plugin observables (None: no plugins run).
        reference_name: how to name the reference in errors (its file).
        sample_names: sample name -> how to name it in errors (name and file).

    Returns:
        The :class:`ProcessResult`.

    Raises:
        InvalidInputError: when a file has no PFCs, when events do not pair up or their GEN differs.
    """
    start = time.perf_counter()
    sample_names = sample_names or {}
    if not ev.has_pfc(reference):
        raise InvalidInputError(f"{reference_name} has no PFCs; the reference must hold GEN and PFC")
    if len(reference) == 0:
        raise InvalidInputError(f"{reference_name} has no events")

    aligned = {}
    for name, events in samples.items():
        label = sample_names.get(name, f"sample {name!r}")
        if not ev.has_pfc(events):
            raise InvalidInputError(f"{label} has no PFCs; a sample must hold GEN and PFC")
        aligned[name] = align(reference, events, reference_name, label)

    log.info("%s: %d events, %d samples; clustering GEN jets", process, len(reference), len(aligned))
    accepted_reference = apply_acceptance(reference, settings.abs_eta_max)
    gen = gen_level(accepted_reference.gen, settings.jet_pt_min)

    # One bar over the reference and every sample, advanced per file: events/s and ETA.
    with progress_bar(len(reference) * (1 + len(aligned)), f"evaluating {process}") as bar:
        reference_values = _evaluate_one(process, "reference", accepted_reference, gen, settings, card)
        bar.update(len(reference))
        values = {}
        for name, events in aligned.items():
            values[name] = _evaluate_one(process, name, apply_acceptance(events, settings.abs_eta_max), gen, settings, card)
            bar.update(len(events))

    log.info("%s: computing distances (%d bootstrap replicas)", process, settings.n_bootstrap)
    comparison = compare(
        process,
        reference_values,
        values,
        settings.n_bootstrap,
        max_values=settings.max_values,
        clip_quantile=settings.clip_quantile,
        seed=settings.seed,
    )

    display_source = {"reference": reference, **aligned}
    display = {
        name: apply_acceptance(events[:DISPLAY_EVENTS], settings.training_abs_eta_max)
        for name, events in display_source.items()
    }
    seconds = time.perf_counter() - start
    log.info("%s: evaluated in %.1f s", process, seconds)
    return ProcessResult(process, gen_values(gen), reference_values, values, comparison, display, seconds)


def _evaluate_one(process: str, name: str, events: ak.Array, gen, settings: Settings, card) -> Values:
    start = time.perf_counter()
    values = sample_values(events.pfc, gen, settings.jet_pt_min)
    if card is not None:
        add_extra_observables(values, events, card)
    seconds = time.perf_counter() - start
    log.info("%s: %s evaluated, %d events in %.1f s (%.0f events/s)", process, name, len(events), seconds, len(events) / max(seconds, 1e-9))
    return values
