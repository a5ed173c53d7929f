"""`parnassus convert IN OUT`: copy events between ROOT (evt_tree), Parquet and HepMC3.

The input format comes from the file's content, the output format from the
suffix of OUT. The events stream chunk by chunk, so any file size fits in
memory, and OUT appears only when the conversion has finished.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def register(subparsers):
    parser = subparsers.add_parser(
        "convert",
        help="convert events between ROOT (evt_tree), Parquet and HepMC3",
        description=(
            "Copy the events of IN to OUT, checking them on the way. IN may be a ROOT file with the "
            "evt_tree layout, a Parquet file or a HepMC3 ASCII file (plain or gzip); its content decides. "
            "The suffix of OUT picks the output format: .root, .parquet, .hepmc, .hepmc3, .hepmc.gz. "
            "HepMC3 files contain GEN particles only, so PFCs are not written there."
        ),
    )
    parser.add_argument("input", metavar="IN", help="input event file")
    parser.add_argument("output", metavar="OUT", help="output event file; replaced if it exists")
    parser.add_argument(
        "--step-size",
        type=int,
        default=10000,
        metavar="N",
        help="events read and written per chunk; bounds the memory used (default: 10000 events)",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    from parnassus.core.io import EventWriter, count_events, format_from_suffix, iter_events
    from parnassus.core.progress import RateLogger, progress_bar
    from parnassus.exceptions import InvalidInputError

    if args.step_size < 1:
        raise InvalidInputError(f"--step-size must be at least 1 event, got {args.step_size}")
    output_format = format_from_suffix(args.output)

    total = count_events(args.input)
    log.info("converting %d events from %s to %s (%s)", total, args.input, args.output, output_format)

    rate = RateLogger(log, total, "convert")
    with progress_bar(total, "convert") as bar, EventWriter(args.output) as writer:
        for chunk in iter_events(args.input, step_size=args.step_size):
            writer.write(chunk)
            bar.update(len(chunk))
            rate.update(len(chunk))
    rate.finish()
    return 0
