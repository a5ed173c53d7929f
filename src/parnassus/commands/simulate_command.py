"""`parnassus simulate`: run a detector card's reference simulation on GEN events.

Reads GEN events chunk by chunk, overlays pileup from a minimum-bias file, simulates
the detector and writes GEN and PFC to the output (ROOT evt_tree layout, Parquet).
Each chunk gets its own random stream derived from (seed, chunk index), so the output
does not depend on anything but the input, the seed and the step size.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def register(subparsers):
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a detector (GEN -> PFC) with a card's reference simulation",
        description=(
            "Turn GEN events into particle-flow candidates with the reference simulation of a detector "
            "card (cmslike), overlaying minimum-bias pileup, and write GEN and PFC to OUT. The suffix of "
            "OUT picks the format (.root in the evt_tree layout, .parquet)."
        ),
    )
    parser.add_argument("--detector", default="cmslike", help="detector card with a reference simulation (default: cmslike)")
    parser.add_argument("-i", "--input", required=True, metavar="GEN", help="input GEN events (ROOT evt_tree, Parquet or HepMC3)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output file with GEN and PFC; replaced if it exists")
    parser.add_argument(
        "--pileup",
        metavar="MINBIAS",
        help="minimum-bias GEN events to draw pileup interactions from (any input format); without it no pileup is added",
    )
    parser.add_argument(
        "--mean-pileup",
        type=float,
        default=6.35,
        metavar="MU",
        help="mean of the Poisson number of pileup interactions per event (default: 6.35, CMS 2011)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed and step size give the same output (default: 0)")
    parser.add_argument(
        "--step-size",
        type=int,
        default=1000,
        metavar="N",
        help="events simulated per chunk; bounds the memory used (default: 1000 events)",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from parnassus.core.io import EventWriter, count_events, iter_events, read_events
    from parnassus.core.plugins import load_detector
    from parnassus.core.progress import RateLogger, progress_bar
    from parnassus.exceptions import InvalidInputError

    if args.step_size < 1:
        raise InvalidInputError(f"--step-size must be at least 1 event, got {args.step_size}")
    if args.mean_pileup < 0:
        raise InvalidInputError(f"--mean-pileup must be 0 or more interactions, got {args.mean_pileup}")
    if args.seed < 0:
        raise InvalidInputError(f"--seed must be 0 or a positive integer, got {args.seed}")
    card = load_detector(args.detector)
    if not card.has_simulation:
        raise InvalidInputError(f"detector {args.detector!r} has no reference simulation; use --detector cmslike")

    library = None
    if args.pileup:
        from parnassus.detectors.cmslike.pileup import PileupLibrary

        library = PileupLibrary(read_events(args.pileup), source=str(args.pileup))
        log.info("pileup: Poisson mean %.2f interactions per event from %s", args.mean_pileup, args.pileup)
    else:
        log.warning("no --pileup file given: simulating without pileup")

    total = count_events(args.input)
    log.info("simulating %d events of %s with detector %s, seed %d", total, args.input, args.detector, args.seed)
    rate = RateLogger(log, total, "simulate")
    with progress_bar(total, "simulate") as bar, EventWriter(args.output) as writer:
        for index, chunk in enumerate(iter_events(args.input, step_size=args.step_size)):
            chunk_seed = int(np.random.SeedSequence([args.seed, index]).generate_state(1)[0])
            writer.write(card.simulate(chunk, seed=chunk_seed, pileup=library, mean_pileup=args.mean_pileup))
            bar.update(len(chunk))
            rate.update(len(chunk))
    rate.finish()
    log.info("wrote %d events to %s", writer.events_written, args.output)
    return 0
