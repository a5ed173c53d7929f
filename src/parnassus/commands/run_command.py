"""``parnassus run``: turn GEN events into reconstructed PFC events with a trained model."""

from __future__ import annotations

import logging
from pathlib import Path


from parnassus.commands import _options
from parnassus.core import events as ev
from parnassus.core import io, plugins
from parnassus.core.backend import SamplingReport
from parnassus.core.progress import RateLogger
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)

#: Process and event count used when no input is given.
DEFAULT_PROCESS = "ttbar"
DEFAULT_GENERATED_EVENTS = 100

#: Events per chunk. Sampling costs about 0.1 to 1 s per event on a CPU, so a chunk
#: of this size keeps the progress log moving while reading stays cheap.
DEFAULT_STEP_SIZE = 100


def register(subparsers):
    parser = subparsers.add_parser(
        "run",
        help="sample reconstructed PFC events from GEN events",
        description="Sample the particle-flow candidates of every GEN event with a trained backend. "
        "Without --input, Pythia8 ttbar events at 7 TeV are generated first.",
    )
    _options.add_detector(parser, default="cmslike")
    _options.add_backend(parser)
    parser.add_argument(
        "-i",
        "--input",
        type=Path,
        help="GEN events: evt_tree ROOT, Parquet or HepMC3 (default: generate Pythia8 ttbar events)",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, help="output file; the suffix sets the format")
    parser.add_argument(
        "--events",
        type=_options.positive_int,
        help=f"number of events: the first N of the input, or how many to generate "
        f"(default: all, or {DEFAULT_GENERATED_EVENTS} generated)",
    )
    parser.add_argument("--weights", type=Path, help="checkpoint folder (default: the detector's shipped weights)")
    parser.add_argument("--solver", help="ODE solver name (see `parnassus list solvers`; default: the backend's)")
    parser.add_argument("--steps", type=_options.positive_int, help="solver steps (default: the backend's)")
    parser.add_argument(
        "--batch-size", type=_options.positive_int, help="events per network batch (default: the backend's)"
    )
    parser.add_argument(
        "--step-size",
        type=_options.positive_int,
        default=DEFAULT_STEP_SIZE,
        help=f"events read, sampled and written per chunk; progress is logged per chunk (default: {DEFAULT_STEP_SIZE})",
    )
    _options.add_device(parser)
    _options.add_seed(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    _check_files(args)
    card, backend = _options.load_card_and_backend(args.detector, args.backend)
    if args.solver:
        plugins.load_solver(args.solver)  # fail before the model loads if the name is wrong
    weights = args.weights if args.weights else card.require_weights(args.backend)
    model = backend.load(weights, card, device=args.device)
    log.info("loaded %s weights for %s from %s", args.backend, args.detector, weights)

    total = SamplingReport()
    progress = RateLogger(log, _expected_events(args), "sampled", interval=0.0)
    source = str(args.input) if args.input else "generated events"
    with io.EventWriter(args.output) as writer:
        for index, chunk in enumerate(_gen_chunks(args)):
            gen_only = ev.make_events(chunk.gen, None, chunk.event_number)
            prepared, _ = card.preprocess(gen_only, source=source)
            # Each chunk gets its own seed, so a long run does not repeat noise.
            sampled, report = model.sample(
                prepared,
                solver=args.solver,
                steps=args.steps,
                seed=args.seed * 1_000_003 + index,
                batch_size=args.batch_size,
            )
            sampled = plugins.postprocess(sampled, card)
            writer.write(sampled)
            total.merge(report)
            progress.update(len(sampled))

    rate = progress.finish()
    log.info(
        "wrote %d events to %s (%.1f events/s; event stage %.1f s, particle stage %.1f s; %d redraws)",
        total.events,
        args.output,
        rate,
        total.event_stage_seconds,
        total.particle_stage_seconds,
        total.redraws,
    )
    return 0


def _gen_chunks(args):
    """Yield GEN event chunks from the input file, or from Pythia8 when there is none."""
    if args.input is None:
        from parnassus.generation.parallel import iter_generated

        n_events = _expected_events(args)
        log.info("no input given: generating %d Pythia8 %s events at 7 TeV (seed %d)", n_events, DEFAULT_PROCESS, args.seed)
        yield from iter_generated(DEFAULT_PROCESS, n_events, args.seed, step_size=args.step_size)
        return

    remaining = args.events
    for chunk in io.iter_events(args.input, step_size=args.step_size):
        if remaining is not None:
            chunk = chunk[:remaining]
            remaining -= len(chunk)
        if len(chunk):
            yield chunk
        if remaining is not None and remaining <= 0:
            return


def _check_files(args) -> None:
    """Reject input and output files that cannot work before any model is loaded."""
    if io.format_from_suffix(args.output) == "hepmc":
        raise InvalidInputError(
            f"output {args.output}: HepMC3 files contain GEN particles only, so the sampled PFCs would be lost; "
            "write .root or .parquet"
        )
    if args.input is None:
        return
    if not args.input.is_file():
        raise InvalidInputError(f"input file {args.input} not found")
    io.detect_format(args.input)  # a file that is not ROOT, Parquet or HepMC3 fails here, by name
    if args.input.resolve() == args.output.resolve():
        raise InvalidInputError(f"output {args.output} is the input file; choose another output name")


def _expected_events(args) -> int:
    """Return the number of events the run will sample; log when --events exceeds the input."""
    if args.input is None:
        return args.events or DEFAULT_GENERATED_EVENTS
    available = io.count_events(args.input)
    if args.events is not None and args.events > available:
        log.info("%s contains %d events, fewer than --events %d: sampling all of them", args.input, available, args.events)
    return available if args.events is None else min(available, args.events)
