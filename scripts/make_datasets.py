"""Make the standard parnassus data sets: GEN with Pythia 8, then PFC with ``parnassus simulate``.

The pieces, after arXiv:2503.19981 (Table I: 1.4M training events per process,
50k test events per process):

    pileup       minbias        minimum-bias library for the pileup overlay
    validation   ttbar, qcd-470-600   (half of --validation-events each)
    test         ttbar, qcd-470-600   in-distribution test (--test-events each)
    test-ood     h4l, qcd-600-800     out-of-distribution test (--test-events each)
    train        ttbar, qcd-470-600   (half of --train-events each)

Each piece is generated in chunk files of --chunk-size events; every GEN chunk is
then simulated with

    parnassus simulate --detector cmslike -i GEN_CHUNK --pileup PILEUP -o FULL_CHUNK

A chunk is finished when its final file exists (all writes are atomic), so a run
that stops, for any reason, resumes where it stopped when started again with
the same options. Output folder layout (``--output``, default ``data``)::

    make_datasets.log                          the log of every run
    datasets.yaml                              what was made, written at the end
    gen/<piece>/<process>_<first>-<last>.root  GEN chunks (event indices in the name)
    full/<piece>/<process>_<first>-<last>.root GEN + PFC chunks
    pileup/minbias.root                        the merged minimum-bias library

Run it in the background, detached from the terminal, with ``--background``
(the same as ``nohup python scripts/make_datasets.py ... &``); follow it with
``tail -f data/make_datasets.log``.

    python scripts/make_datasets.py --output data --background
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

import parnassus
from parnassus.core.io import EventWriter, count_events, iter_events
from parnassus.core.io.atomic import atomic_output
from parnassus.core.progress import RateLogger
from parnassus.generation import MAX_EVENTS_PER_SEED, MAX_SEED, generate_file
from parnassus.generation.parallel import GenerationPool
from parnassus.generation.processes import PROCESSES

log = logging.getLogger("make_datasets")

LOG_NAME = "make_datasets.log"
MANIFEST_NAME = "datasets.yaml"
LOCK_NAME = ".make_datasets.lock"

#: Piece names, in the order they are made: the pileup library first (every
#: simulation needs it), the small sets next so that problems show early.
PIECE_ORDER = ("pileup", "validation", "test", "test-ood", "train")

# Each (piece, process) has a fixed seed offset from --seed, so a piece keeps its
# events when other pieces are resized, added or left out.
_SEED_OFFSETS = {
    ("pileup", "minbias"): 0,
    ("validation", "ttbar"): 1,
    ("validation", "qcd-470-600"): 2,
    ("test", "ttbar"): 3,
    ("test", "qcd-470-600"): 4,
    ("test-ood", "h4l"): 5,
    ("test-ood", "qcd-600-800"): 6,
    ("train", "ttbar"): 7,
    ("train", "qcd-470-600"): 8,
}


@dataclass(frozen=True)
class Sample:
    """One process of one piece: its events come from one seed's event stream."""

    piece: str
    process: str
    events: int
    seed: int

    def chunks(self, chunk_size: int) -> list[tuple[int, int]]:
        """Return the (first event, number of events) of each chunk."""
        return [(first, min(chunk_size, self.events - first)) for first in range(0, self.events, chunk_size)]

    def chunk_name(self, first: int, count: int, suffix: str) -> str:
        return f"{self.process}_{first:07d}-{first + count - 1:07d}{suffix}"


def plan_samples(args) -> list[Sample]:
    """Return the samples of the requested pieces, in the order they are made."""
    sizes = {
        ("pileup", "minbias"): args.minbias_events,
        ("validation", "ttbar"): args.validation_events // 2,
        ("validation", "qcd-470-600"): args.validation_events - args.validation_events // 2,
        ("test", "ttbar"): args.test_events,
        ("test", "qcd-470-600"): args.test_events,
        ("test-ood", "h4l"): args.test_events,
        ("test-ood", "qcd-600-800"): args.test_events,
        ("train", "ttbar"): args.train_events // 2,
        ("train", "qcd-470-600"): args.train_events - args.train_events // 2,
    }
    pieces = set(args.pieces)
    if pieces - {"pileup"} and not args.skip_simulation:
        pieces.add("pileup")  # the simulation overlays pileup from it
    samples = []
    for piece in PIECE_ORDER:
        for (sample_piece, process), events in sizes.items():
            if sample_piece == piece and piece in pieces and events > 0:
                samples.append(Sample(piece, process, events, args.seed + _SEED_OFFSETS[(piece, process)]))
    return samples


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Make the standard parnassus data sets (GEN with Pythia 8, PFC with parnassus simulate), resumably.",
        epilog="Pieces: " + ", ".join(PIECE_ORDER) + ". See the module docstring for the layout of the output folder.",
    )
    parser.add_argument("--output", type=Path, default=Path("data"), help="output folder (default: %(default)s)")
    parser.add_argument(
        "--train-events", type=int, default=2_800_000,
        help="training events, half ttbar and half QCD 470-600 GeV (default: %(default)s, as arXiv:2503.19981)",
    )
    parser.add_argument(
        "--validation-events", type=int, default=100_000,
        help="validation events, half ttbar and half QCD 470-600 GeV (default: %(default)s)",
    )
    parser.add_argument(
        "--test-events", type=int, default=50_000,
        help="test events per process: ttbar, QCD 470-600, h4l, QCD 600-800 GeV (default: %(default)s, as arXiv:2503.19981)",
    )
    parser.add_argument(
        "--minbias-events", type=int, default=100_000,
        help="minimum-bias events in the pileup library (default: %(default)s)",
    )
    parser.add_argument(
        "--chunk-size", type=int, default=5000,
        help="events per chunk file; a multiple of 1000 (the random-number block) avoids generating and "
        "discarding the start of a block (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=1000,
        help=f"seed of the first piece; the others use seed + 1 .. seed + 8 (default: %(default)s, at most {MAX_SEED - 8})",
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="Pythia worker processes (default: the CPU count, %(default)s)")
    parser.add_argument(
        "--pieces", nargs="+", choices=PIECE_ORDER, default=list(PIECE_ORDER),
        help="pieces to make (default: all); the pileup library is added when a simulated piece needs it",
    )
    parser.add_argument("--format", choices=("root", "parquet"), default="root", help="file format of the chunks (default: %(default)s)")
    parser.add_argument("--detector", default="cmslike", help="detector card of parnassus simulate (default: %(default)s)")
    parser.add_argument(
        "--mean-pileup", type=float, default=6.35,
        help="mean number of pileup interactions per event, passed to parnassus simulate (default: %(default)s, CMS 2011)",
    )
    parser.add_argument("--skip-simulation", action="store_true", help="make the GEN chunks only")
    parser.add_argument(
        "--background", action="store_true",
        help="detach from the terminal and run in the background; the log goes to OUTPUT/" + LOG_NAME,
    )
    args = parser.parse_args(argv)

    # Each process of a piece comes from one seed's stream of at most
    # MAX_EVENTS_PER_SEED events. Training and validation split theirs over two processes.
    limits = {
        "train_events": 2 * MAX_EVENTS_PER_SEED,
        "validation_events": 2 * MAX_EVENTS_PER_SEED,
        "test_events": MAX_EVENTS_PER_SEED,
        "minbias_events": MAX_EVENTS_PER_SEED,
    }
    for name, limit in limits.items():
        value = getattr(args, name)
        if not 0 <= value <= limit:
            parser.error(f"--{name.replace('_', '-')} must lie in 0 .. {limit}, got {value}")
    if args.chunk_size < 1:
        parser.error(f"--chunk-size must be at least 1, got {args.chunk_size}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if not 0 <= args.seed <= MAX_SEED - max(_SEED_OFFSETS.values()):
        parser.error(f"--seed must lie in 0 .. {MAX_SEED - max(_SEED_OFFSETS.values())}, got {args.seed}")
    if "pileup" in args.pieces and args.minbias_events == 0 and not args.skip_simulation:
        parser.error("--minbias-events 0 leaves no pileup library for the simulation; use --skip-simulation")
    return args


def setup_logging(output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    form = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    file_handler = logging.FileHandler(output / LOG_NAME)
    file_handler.setFormatter(form)
    handlers: list[logging.Handler] = [file_handler]
    # A detached run writes stderr to the log file itself, so a console handler would double every line.
    if not os.environ.get("PARNASSUS_MAKE_DATASETS_DETACHED"):
        console = logging.StreamHandler()
        console.setFormatter(form)
        handlers.append(console)
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)


def start_in_background(argv: list[str], output: Path) -> int:
    """Start this script again without --background, detached from the terminal, and return 0."""
    output.mkdir(parents=True, exist_ok=True)
    arguments = [a for a in argv if a != "--background"]
    log_path = output / LOG_NAME
    with open(log_path, "a") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *arguments],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # no SIGHUP when the terminal closes, no Ctrl-C from it
            env={**os.environ, "PARNASSUS_MAKE_DATASETS_DETACHED": "1"},
        )
    print(f"make_datasets runs in the background as process {process.pid}; follow it with: tail -f {log_path}")
    return 0


def acquire_lock(output: Path):
    """Lock the output folder against a second run. The lock ends with the process."""
    handle = open(output / LOCK_NAME, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise SystemExit(f"another make_datasets run (process {owner}) is working on {output}; wait for it or stop it")
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def remove_stale_partials(output: Path) -> None:
    """Delete temporary files that a killed run left behind (the lock rules out a live writer)."""
    stale = [path for path in output.rglob(".*.partial-*") if path.is_file()]
    for path in stale:
        path.unlink()
    if stale:
        log.info("removed %d unfinished temporary file(s) of an earlier run", len(stale))


def simulate_chunk(gen_path: Path, full_path: Path, pileup: Path, seed: int, args) -> None:
    """Run ``parnassus simulate`` on one GEN chunk, passing its log lines on to this log."""
    command = [
        sys.executable, "-m", "parnassus.cli", "simulate",
        "--detector", args.detector, "-i", str(gen_path), "--pileup", str(pileup),
        "--mean-pileup", str(args.mean_pileup), "--seed", str(seed), "-o", str(full_path),
    ]
    log.info("running: parnassus %s", " ".join(command[3:]))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        log.info("  simulate: %s", line.rstrip())
    if process.wait() != 0:
        raise RuntimeError(
            f"parnassus simulate failed (exit code {process.returncode}) on {gen_path}; "
            "fix the cause and run make_datasets again to resume"
        )


def make_sample(sample: Sample, args, pileup: Path | None, pool: GenerationPool) -> dict:
    """Generate (and simulate) the missing chunks of one sample and return its manifest entry."""
    suffix = f".{args.format}"
    gen_folder = args.output / "gen" / sample.piece
    full_folder = args.output / "full" / sample.piece
    simulate = pileup is not None and sample.piece != "pileup"

    chunks = []
    for first, count in sample.chunks(args.chunk_size):
        name = sample.chunk_name(first, count, suffix)
        chunks.append((first, count, gen_folder / name, full_folder / name))
    pending = [chunk for chunk in chunks if not chunk[2].exists() or (simulate and not chunk[3].exists())]
    log.info(
        "%s/%s: %d events (seed %d) in %d chunk(s), %d to make%s",
        sample.piece, sample.process, sample.events, sample.seed, len(chunks), len(pending),
        ", with simulation" if simulate else "",
    )

    # Progress counts the events of the chunks still to make, so the rate and ETA
    # of a resumed run are not inflated by the chunks it skips.
    rate = RateLogger(log, sum(chunk[1] for chunk in pending), f"{sample.piece}/{sample.process}", interval=0.0)
    for index, (first, count, gen_path, full_path) in enumerate(pending):
        log.info("%s/%s: chunk %d of %d to make: events %d .. %d", sample.piece, sample.process,
                 index + 1, len(pending), first, first + count - 1)
        if not gen_path.exists():
            generate_file(gen_path, sample.process, count, sample.seed, first_event=first, pool=pool)
        if simulate and not full_path.exists():
            # The chunk's first event number: unique over all chunks of all pieces.
            simulation_seed = sample.seed * MAX_EVENTS_PER_SEED + first
            simulate_chunk(gen_path, full_path, pileup, simulation_seed, args)
        rate.update(count)
    if pending:
        rate.finish()

    entry = {
        "piece": sample.piece,
        "process": sample.process,
        "description": PROCESSES[sample.process].description,
        "events": sample.events,
        "seed": sample.seed,
        "gen": [str(chunk[2].relative_to(args.output)) for chunk in chunks],
    }
    if simulate:
        entry["full"] = [str(chunk[3].relative_to(args.output)) for chunk in chunks]
    return entry


def merge_pileup(entry: dict, args) -> Path:
    """Merge the minimum-bias chunks into one library file, unless it exists with the right size."""
    library = args.output / "pileup" / f"minbias.{args.format}"
    if library.exists():
        found = count_events(library)
        if found != entry["events"]:
            raise RuntimeError(
                f"the pileup library {library} contains {found} events, not the {entry['events']} of "
                f"--minbias-events; rerun with --minbias-events {found}, or delete it and the simulated "
                f"chunks under {args.output / 'full'} to rebuild both"
            )
        log.info("pileup library %s exists, skipped", library)
        return library

    with EventWriter(library) as writer:
        for name in entry["gen"]:
            for chunk in iter_events(args.output / name):
                writer.write(chunk)
    log.info("pileup library %s: %d minimum-bias events", library, count_events(library))
    return library


def write_manifest(entries: list[dict], pileup: Path | None, args, argv: list[str]) -> None:
    """Write ``datasets.yaml``: the samples of this run plus those of earlier runs with other --pieces."""
    path = args.output / MANIFEST_NAME
    made_now = {(entry["piece"], entry["process"]) for entry in entries}
    earlier = []
    if path.exists():
        previous = yaml.safe_load(path.read_text()) or {}
        earlier = [e for e in previous.get("samples", []) if (e.get("piece"), e.get("process")) not in made_now]
    order = {key: index for index, key in enumerate(_SEED_OFFSETS)}
    samples = sorted([*earlier, *entries], key=lambda e: order.get((e["piece"], e["process"]), len(order)))

    manifest = {
        "parnassus_version": parnassus.__version__,
        "command": " ".join(["python", "scripts/make_datasets.py", *argv]),
        "generator": "Pythia 8 (pythia8mc), pp at 7 TeV, 2011 CMS beam spot, c*tau > 10 mm undecayed",
        "event_numbers": f"seed * {MAX_EVENTS_PER_SEED} + index within the seed's stream",
        "chunk_size": args.chunk_size,
        "format": args.format,
        "simulation": None if args.skip_simulation else {
            "detector": args.detector,
            "mean_pileup": args.mean_pileup,
            "pileup_library": str(pileup.relative_to(args.output)) if pileup else None,
        },
        "samples": samples,
    }
    with atomic_output(path) as temporary:
        temporary.write_text(yaml.safe_dump(manifest, sort_keys=False))
    log.info("wrote %s", path)


def run(args, argv: list[str]) -> int:
    setup_logging(args.output)
    lock = acquire_lock(args.output)
    try:
        log.info("make_datasets started (process %d): %s", os.getpid(), " ".join(argv) or "(defaults)")
        remove_stale_partials(args.output)
        start = time.perf_counter()

        entries = []
        pileup = None
        # One pool for the whole run: its workers initialise Pythia once per sample,
        # not once per chunk.
        with GenerationPool(args.jobs) as pool:
            for sample in plan_samples(args):
                entry = make_sample(sample, args, pileup, pool)
                entries.append(entry)
                if sample.piece == "pileup" and not args.skip_simulation:
                    pileup = merge_pileup(entry, args)

        write_manifest(entries, pileup, args, argv)
        log.info("make_datasets finished in %.0f s", time.perf_counter() - start)
        return 0
    except KeyboardInterrupt:
        log.error("interrupted; finished chunks are kept, run the same command again to resume")
        return 130
    except Exception:
        log.exception("make_datasets failed; finished chunks are kept, run the same command again to resume")
        return 1
    finally:
        lock.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_arguments(argv)
    if args.background:
        return start_in_background(argv, args.output)
    return run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
