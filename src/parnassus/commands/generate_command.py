"""`parnassus generate`: generate GEN events of a physics process with Pythia 8."""

from __future__ import annotations

from parnassus.generation.processes import PROCESSES
from parnassus.generation.pythia_gen import DEFAULT_STEP_SIZE
from parnassus.generation.seeding import MAX_EVENTS_PER_SEED, MAX_SEED


def _process_list() -> str:
    return "; ".join(f"{name}: {process.description}" for name, process in PROCESSES.items())


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate GEN events (pp at 7 TeV) with Pythia 8",
        description=(
            "Generate pp collisions at sqrt(s) = 7 TeV with Pythia 8 and write their GEN record: final-state "
            "particles with pT > 0.25 GeV and |eta| < 2.7, neutrinos dropped, vertices in cm smeared with the "
            "2011 CMS beam spot, particles with c*tau > 10 mm left undecayed. Processes: " + _process_list()
        ),
    )
    parser.add_argument("--process", required=True, choices=list(PROCESSES), help="the physics process")
    parser.add_argument("--events", "-n", required=True, type=int, help="number of events to generate")
    parser.add_argument(
        "--seed",
        required=True,
        type=int,
        help=(
            f"random seed, 0 .. {MAX_SEED}; the same seed gives the same events, and event numbers are "
            f"seed * {MAX_EVENTS_PER_SEED} + index, so files of different seeds can be merged"
        ),
    )
    parser.add_argument(
        "--first-event",
        type=int,
        default=0,
        help="index of the first event within the seed's event stream, to generate a sample in pieces (default: %(default)s)",
    )
    parser.add_argument(
        "-o", "--output", required=True,
        help="output file; the suffix sets the format: .root, .parquet, .hepmc, .hepmc3 or .hepmc.gz",
    )
    parser.add_argument(
        "--jobs", "-j", type=int, default=1,
        help="worker processes, one Pythia instance each; the events do not depend on it (default: %(default)s)",
    )
    parser.add_argument(
        "--step-size", type=int, default=DEFAULT_STEP_SIZE,
        help="events generated and written per step, which bounds the memory used; the events do not depend on it "
        "(default: %(default)s)",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from parnassus.generation.api import generate_file

    generate_file(
        args.output,
        args.process,
        args.events,
        args.seed,
        first_event=args.first_event,
        jobs=args.jobs,
        step_size=args.step_size,
    )
    return 0
