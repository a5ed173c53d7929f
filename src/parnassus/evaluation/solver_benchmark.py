"""Solver benchmark: speed and fidelity of one trained model for every (solver, steps) pair.

The reference file holds GEN and PFC (a reference simulation such as the
``cmslike`` card's, or the CMS Open Simulation files). Both pass through the
detector card's preprocessing, the same as training data, so the model is
compared with what it was trained to produce. The model is loaded once. For
each (solver, steps) pair it samples PFCs for the reference's GEN events with
the same seed, so the runs differ only by the solver and its steps. Each run is
timed (wall clock around ``model.sample``), and the samples are then evaluated
together against the reference with :func:`parnassus.evaluation.pipeline.evaluate_process`,
paired by event number.

Score: the median over all observables of W1(sample, reference) / floor, where the
floor is W1 between two halves of the reference (see :mod:`parnassus.evaluation.metrics`).
Lower is better; a sample statistically identical to the reference scores below 1.

Backends that sample without an ODE (``uses_solver = False``, the smearing
baseline) run once, whatever the solvers and steps requested.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import awkward as ak

from parnassus.core import events as ev
from parnassus.core import plugins
from parnassus.core.backend import SamplingReport
from parnassus.core.io.atomic import atomic_output
from parnassus.core.progress import progress_bar
from parnassus.evaluation.metrics import json_safe
from parnassus.evaluation.pipeline import Settings, evaluate_process
from parnassus.exceptions import InvalidInputError, InvalidSettingError

log = logging.getLogger(__name__)

#: Observables whose distance to the reference gets its own column: column suffix -> observable key.
#: N and the relative HT and leading-jet C2 residuals are the headline distributions of
#: arXiv:2503.19981 (its Figure 2 shows the HT and C2 residuals).
HEADLINE_OBSERVABLES = {
    "n": "event/n",
    "ht_residual": "event_residual/ht",
    "c2_residual": "jet_residual/c2",
}

#: Suffixes of the three tables; ``-o`` names the Markdown one.
TABLE_SUFFIXES = (".md", ".csv", ".json")

#: Events sampled once, untimed, before the first run, so one-time costs (thread pools,
#: kernel selection) do not count against the first solver.
DEFAULT_WARMUP_EVENTS = 16

#: Columns of the CSV table, in order.
COLUMNS = (
    "solver",
    "steps",
    "nfe",
    "events",
    "seconds",
    "events_per_second",
    "event_stage_seconds",
    "particle_stage_seconds",
    "redraws",
    "score",
    *(f"distance_{name}" for name in HEADLINE_OBSERVABLES),
    *(f"ratio_{name}" for name in HEADLINE_OBSERVABLES),
)


# --- the plan: which runs, validated before anything heavy is loaded ---------------------------


@dataclass(frozen=True)
class Run:
    """One sampling run of the benchmark.

    Attributes:
        solver: the registered solver name; None for a backend without an ODE.
        steps: solver steps; None for a backend without an ODE.
        nfe: velocity evaluations (network calls) per integration, ``solver.nfe(steps)``;
            None when the solver defines no ``nfe`` method or there is no ODE.
    """

    solver: str | None
    steps: int | None
    nfe: int | None = None

    @property
    def name(self) -> str:
        """The run's sample name in the evaluation: ``SOLVER@STEPS``, or ``no-solver``."""
        return "no-solver" if self.solver is None else f"{self.solver}@{self.steps}"


def _tokens(text: str, option: str) -> list[str]:
    tokens = [token.strip() for token in text.split(",")]
    for position, token in enumerate(tokens, start=1):
        if not token:
            raise InvalidSettingError(f"{option} {text!r} has an empty entry at position {position}; write a comma-separated list")
    duplicated = sorted({token for token in tokens if tokens.count(token) > 1})
    if duplicated:
        raise InvalidSettingError(f"{option} {text!r} lists {', '.join(repr(t) for t in duplicated)} more than once")
    return tokens


def parse_solvers(text: str) -> list[str]:
    """Parse a comma-separated list of solver names and check that each is registered.

    >>> parse_solvers("euler, dpm-solver++2m")
    ['euler', 'dpm-solver++2m']

    Args:
        text: for example ``"euler,dpm-solver++2m"``.

    Returns:
        The names, in the order given.

    Raises:
        PluginNotFoundError: a name is not registered (the message lists the registered solvers).
        InvalidSettingError: an empty or repeated entry.
    """
    names = _tokens(text, "--solver")
    for name in names:
        plugins.load_solver(name)
    return names


def parse_steps(text: str) -> list[int]:
    """Parse a comma-separated list of positive step counts.

    >>> parse_steps("4,8,16,25")
    [4, 8, 16, 25]

    Raises:
        InvalidSettingError: naming the entry that is not a positive integer, or a repeated one.
    """
    steps = []
    for token in _tokens(text, "--steps"):
        try:
            value = int(token)
        except ValueError:
            raise InvalidSettingError(
                f"--steps entry {token!r} is not an integer; expected positive integers such as 4,8,16,25"
            ) from None
        if value < 1:
            raise InvalidSettingError(f"--steps entry {token!r} is not positive; expected positive integers such as 4,8,16,25")
        steps.append(value)
    return steps


def plan_runs(solvers: list[str], steps: list[int], uses_solver: bool = True) -> list[Run]:
    """Return one :class:`Run` per (solver, steps) pair, solvers outermost.

    Args:
        solvers: registered solver names (see :func:`parse_solvers`).
        steps: positive step counts (see :func:`parse_steps`).
        uses_solver: False for a backend that samples without an ODE: one run without solver.

    Raises:
        InvalidSettingError: a step count below the minimum of a solver (PNDM needs 4),
            naming the solver and the minimum.
    """
    runs = []
    for name in solvers:
        solver = plugins.load_solver(name)
        for count in steps:
            checked = solver.check_steps(count)
            runs.append(Run(name, checked, _nfe(solver, checked)))
    if uses_solver:
        return runs
    return [Run(None, None, None)]


def _nfe(solver, steps: int) -> int | None:
    # Plugin solvers need not subclass Solver, so nfe() is optional.
    method = getattr(solver, "nfe", None)
    if method is None:
        return None
    try:
        return int(method(steps))
    except (TypeError, ValueError, NotImplementedError):
        return None


def table_paths(output: str | os.PathLike) -> dict[str, Path]:
    """Return the paths of the Markdown, CSV and JSON tables for ``-o OUTPUT``.

    ``bench.md``, ``bench.csv``, ``bench.json`` and ``bench`` all give the three
    files ``bench.md``, ``bench.csv`` and ``bench.json``.

    Raises:
        InvalidInputError: another suffix.
    """
    output = Path(output)
    if output.suffix in TABLE_SUFFIXES:
        stem = output.with_suffix("")
    elif output.suffix == "":
        stem = output
    else:
        raise InvalidInputError(
            f"-o {output} has the suffix {output.suffix!r}; name the Markdown table (.md), "
            "and the .csv and .json tables are written beside it"
        )
    return {suffix[1:]: stem.with_name(stem.name + suffix) for suffix in TABLE_SUFFIXES}


# --- sampling and evaluation ---------------------------------------------------------------------


@dataclass
class RunResult:
    """Speed and fidelity of one run.

    Attributes:
        run: the solver and steps.
        events: events sampled.
        seconds: wall time of ``model.sample`` (s).
        report: the model's :class:`SamplingReport` (stage times in s, redraws).
        score: median distance / floor over all observables.
        distances: observable key -> W1 to the reference (unit of the observable).
        ratios: observable key -> W1 / floor.
    """

    run: Run
    events: int
    seconds: float
    report: SamplingReport
    score: float = float("nan")
    distances: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class BenchmarkResult:
    """All runs of a benchmark and what they ran on.

    Attributes:
        runs: one :class:`RunResult` per run, in the planned order.
        context: backend, weights, detector, input, events, seed, device, batch size.
        note: a remark shown under the table (for example, why there is one run only).
        floors: headline observable key -> the reference's statistical floor.
    """

    runs: list[RunResult]
    context: dict[str, object]
    note: str = ""
    floors: dict[str, float] = field(default_factory=dict)


def prepare_events(events: ak.Array, card, source: str) -> tuple[ak.Array, ak.Array]:
    """Return the reference (GEN and PFC after the card's preprocessing) and its GEN-only copy to sample from.

    Raises:
        InvalidInputError: the events hold no PFCs.
    """
    if not ev.has_pfc(events):
        raise InvalidInputError(f"{source} has no PFCs; the benchmark reference must hold GEN and PFC")
    reference, _ = card.preprocess(events, source=source)
    gen_only = ev.make_events(events.gen, None, events.event_number)
    prepared_gen, _ = card.preprocess(gen_only, source=source)
    return reference, prepared_gen


def sample_run(
    model, prepared_gen: ak.Array, run: Run, seed: int, batch_size: int | None, repeat: int = 1
) -> tuple[ak.Array, RunResult]:
    """Sample one run ``repeat`` times with the same seed and keep the fastest timing.

    The minimum wall time over repetitions is the least disturbed by other jobs on the
    machine, as in :mod:`timeit`. The stage times and redraws are those of the fastest
    repetition.

    Returns:
        (sampled events with GEN and PFC from the first repetition,
        the :class:`RunResult` without fidelity figures).
    """
    sampled, best_seconds, best_report = None, float("inf"), None
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        events, report = model.sample(prepared_gen, solver=run.solver, steps=run.steps, seed=seed, batch_size=batch_size)
        seconds = time.perf_counter() - start
        if sampled is None:
            sampled = events
        if seconds < best_seconds:
            best_seconds, best_report = seconds, report
    return sampled, RunResult(run, len(prepared_gen), best_seconds, best_report)


def run_benchmark(
    model,
    card,
    reference: ak.Array,
    prepared_gen: ak.Array,
    runs: list[Run],
    settings: Settings,
    *,
    seed: int = 0,
    batch_size: int | None = None,
    warmup_events: int = DEFAULT_WARMUP_EVENTS,
    repeat: int = 1,
    process: str = "benchmark",
    reference_name: str = "the reference",
) -> tuple[list[RunResult], dict[str, float]]:
    """Sample every run with one loaded model and evaluate all samples against the reference.

    Args:
        model: a loaded :class:`~parnassus.core.backend.TrainedModel`.
        card: its detector card (postprocessing hooks and plugin observables use it).
        reference: preprocessed events with GEN and PFC (see :func:`prepare_events`).
        prepared_gen: the same events, GEN only.
        runs: the planned runs.
        settings: acceptance, jets and metric settings of the evaluation.
        seed: sampling seed, the same for every run.
        batch_size: events per network batch; the backend's choice when None.
        warmup_events: events sampled untimed before the first run (0: none).
        repeat: timed repetitions of each run; the fastest counts (see :func:`sample_run`).
        process: the process name in logs.
        reference_name: how to name the reference in errors (its file).

    Returns:
        (one :class:`RunResult` per run with its speed and fidelity,
        headline observable key -> the reference's statistical floor).
    """
    if warmup_events > 0 and runs:
        warmup = prepared_gen[:warmup_events]
        log.info("warm-up: sampling %d events untimed with %s", len(warmup), runs[0].name)
        model.sample(warmup, solver=runs[0].solver, steps=runs[0].steps, seed=seed, batch_size=batch_size)

    samples, results = {}, []
    with progress_bar(len(prepared_gen) * len(runs) * max(repeat, 1), "benchmark sampling") as bar:
        for position, run in enumerate(runs, start=1):
            log.info("run %d/%d: %s, nfe %s, %d events", position, len(runs), run.name, run.nfe, len(prepared_gen))
            sampled, result = sample_run(model, prepared_gen, run, seed, batch_size, repeat)
            # The postprocessing hooks belong to what `parnassus run` writes, but not to the model's speed.
            samples[run.name] = plugins.postprocess(sampled, card)
            results.append(result)
            bar.update(len(prepared_gen) * max(repeat, 1))
            log.info(
                "run %d/%d: %s: %.1f events/s (%.2f s; event stage %.2f s, particle stage %.2f s; %d redraws)",
                position,
                len(runs),
                run.name,
                result.events_per_second,
                result.seconds,
                result.report.event_stage_seconds,
                result.report.particle_stage_seconds,
                result.report.redraws,
            )

    labels = {run.name: f"sample {run.name!r}" for run in runs}
    evaluation = evaluate_process(process, reference, samples, settings, card, reference_name=reference_name, sample_names=labels)
    comparison = evaluation.comparison
    for result in results:
        distances = comparison.distances[result.run.name]
        result.score = comparison.score(result.run.name)
        result.distances = {key: d.value for key, d in distances.items()}
        result.ratios = {key: d.ratio for key, d in distances.items()}
        log.info("%s: score %.3f", result.run.name, result.score)
    return results, {key: comparison.floors[key].value for key in HEADLINE_OBSERVABLES.values() if key in comparison.floors}


def benchmark_file(
    path: str | os.PathLike,
    card,
    backend,
    weights: str | os.PathLike,
    runs: list[Run],
    settings: Settings,
    *,
    max_events: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | None = None,
    warmup_events: int = DEFAULT_WARMUP_EVENTS,
    repeat: int = 1,
) -> BenchmarkResult:
    """Read a reference file, load the model once and benchmark every run on its events.

    Args:
        path: the reference file with GEN and PFC (ROOT ``evt_tree`` or Parquet).
        card: the detector card.
        backend: the :class:`~parnassus.core.backend.GenerativeBackend` subclass.
        weights: its checkpoint folder.
        runs: planned runs (see :func:`plan_runs`).
        settings: the evaluation settings.
        max_events: use the first N events of the file (all when None).
        seed: sampling seed.
        batch_size: events per network batch.
        device: compute device (``cpu``, ``cuda``); the backend's choice when None.
        warmup_events: events sampled untimed before the first run.
        repeat: timed repetitions of each run; the fastest counts.

    Raises:
        InvalidInputError: a missing file, a file without PFCs, or fewer than 2 events
            (the statistical floor splits the reference into halves).
    """
    from parnassus.core.io import read_events

    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"reference file {path} not found")
    log.info("reading %s", path)
    # NOTE: the whole reference (or its first max_events) and every run's sample are kept in
    # memory, because the evaluation pairs all events at once.
    events = read_events(path, entry_stop=max_events, require_pfc=True)
    if len(events) < 2:
        raise InvalidInputError(
            f"{path} has {len(events)} events; the benchmark needs at least 2, because the statistical floor "
            "compares two halves of the reference"
        )
    reference, prepared_gen = prepare_events(events, card, str(path))

    log.info("loading %s weights from %s", backend.name, weights)
    model = backend.load(Path(weights), card, device=device)
    results, floors = run_benchmark(
        model,
        card,
        reference,
        prepared_gen,
        runs,
        settings,
        seed=seed,
        batch_size=batch_size,
        warmup_events=warmup_events,
        repeat=repeat,
        process=path.name.split(".")[0],
        reference_name=str(path),
    )

    note = ""
    if not getattr(backend, "uses_solver", True):
        note = f"The {backend.name} backend samples without an ODE solver, so solver and steps have no effect and it ran once."
    context = {
        "backend": backend.name,
        "weights": str(weights),
        "detector": card.name,
        "input": str(path),
        "events": len(reference),
        "seed": seed,
        "batch_size": batch_size,
        "device": device or "default",
        "cpu_count": os.cpu_count(),
        "bootstrap": settings.n_bootstrap,
        "repeat": repeat,
    }
    return BenchmarkResult(results, context, note, floors)


# --- tables ----------------------------------------------------------------------------------------


def table_rows(result: BenchmarkResult) -> list[dict]:
    """Return one row per run with the keys of :data:`COLUMNS` (None where a value does not apply)."""
    rows = []
    for run in result.runs:
        row = {
            "solver": run.run.solver,
            "steps": run.run.steps,
            "nfe": run.run.nfe,
            "events": run.events,
            "seconds": run.seconds,
            "events_per_second": run.events_per_second,
            "event_stage_seconds": run.report.event_stage_seconds,
            "particle_stage_seconds": run.report.particle_stage_seconds,
            "redraws": run.report.redraws,
            "score": run.score,
        }
        for name, key in HEADLINE_OBSERVABLES.items():
            row[f"distance_{name}"] = run.distances.get(key, float("nan"))
            row[f"ratio_{name}"] = run.ratios.get(key, float("nan"))
        rows.append(row)
    return rows


def _cell(value, digits: str = ".3g") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if value != value else format(value, digits)
    return str(value)


def markdown_table(result: BenchmarkResult) -> str:
    """Return the benchmark as a Markdown table with a header line of context and the definitions."""
    context = result.context
    lines = [
        f"Solver benchmark: backend {context['backend']}, detector {context['detector']}, "
        f"{context['events']} events of {context['input']}, seed {context['seed']}, device {context['device']}, "
        f"{context['cpu_count']} CPU cores, fastest of {context['repeat']} timed repetitions per run.",
        "",
        "| solver | steps | NFE | events/s | event stage [s] | particle stage [s] | redraws | score "
        "| W1 N | W1 HT residual | W1 C2 residual |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in table_rows(result):
        cells = [
            _cell(row["solver"]),
            _cell(row["steps"]),
            _cell(row["nfe"]),
            _cell(row["events_per_second"], ".1f"),
            _cell(row["event_stage_seconds"], ".2f"),
            _cell(row["particle_stage_seconds"], ".2f"),
            _cell(row["redraws"]),
            _cell(row["score"], ".2f"),
        ]
        for name in HEADLINE_OBSERVABLES:
            text = _cell(row[f"distance_{name}"])
            if row[f"ratio_{name}"] == row[f"ratio_{name}"]:
                text += f" ({row[f'ratio_{name}']:.2f})"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")

    lines += [
        "",
        "NFE: velocity evaluations per integration of the stage the solver drives. "
        "Score: median over all observables of W1 to the reference / statistical floor (lower is better; "
        "below 1 is statistically indistinguishable). W1 columns: distance (distance / floor).",
    ]
    if result.note:
        lines += ["", result.note]
    return "\n".join(lines) + "\n"


def _csv_text(result: BenchmarkResult) -> str:
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in table_rows(result):
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return stream.getvalue()


def _json_text(result: BenchmarkResult) -> str:
    document = {
        "context": result.context,
        "note": result.note,
        "definition": {
            "score": "median over all observables of W1(sample, reference) / floor; lower is better",
            "floor": "W1 between two halves of the reference events",
            "nfe": "velocity evaluations per integration of the stage the solver drives",
            "headline_observables": HEADLINE_OBSERVABLES,
        },
        "floors": result.floors,
        "rows": table_rows(result),
    }
    return json.dumps(json_safe(document), indent=1) + "\n"


def write_tables(result: BenchmarkResult, output: str | os.PathLike) -> dict[str, Path]:
    """Write the Markdown, CSV and JSON tables, each to a temporary name renamed when complete.

    Returns:
        Suffix (``md``, ``csv``, ``json``) -> the written path.
    """
    paths = table_paths(output)
    texts = {"md": markdown_table(result), "csv": _csv_text(result), "json": _json_text(result)}
    for kind, path in paths.items():
        with atomic_output(path) as temporary:
            Path(temporary).write_text(texts[kind])
        log.info("wrote %s", path)
    return paths
