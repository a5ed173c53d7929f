"""``parnassus benchmark``: speed and fidelity of one trained model for every (solver, steps) pair.

Example::

    parnassus benchmark --detector cmslike --backend flow-matching --weights model/ \\
        --solver euler,dpm-solver++2m --steps 4,8,16,25 -i test.root --events 1000 -o bench.md

writes ``bench.md``, ``bench.csv`` and ``bench.json`` and prints the Markdown
table. The logic is in :mod:`parnassus.evaluation.solver_benchmark`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from parnassus.commands import _options
from parnassus.exceptions import InvalidInputError, ParnassusError

log = logging.getLogger(__name__)

DEFAULT_STEPS = "4,8,16,25"


def register(subparsers):
    parser = subparsers.add_parser(
        "benchmark",
        help="time a trained model and score its fidelity for every solver and step count",
        description="Sample the PFCs of a reference file's GEN events with one trained model for every "
        "(solver, steps) pair, time each run (events/s, event-stage and particle-stage seconds) and score it "
        "against the reference's own PFCs (median W1 / statistical floor over all observables of "
        "`parnassus evaluate`). Writes a Markdown table to OUTPUT and .csv and .json tables beside it.",
    )

    _options.add_detector(parser, default="cmslike")
    _options.add_backend(parser)
    parser.add_argument("--weights", type=Path, help="checkpoint folder (default: the detector's shipped weights)")
    parser.add_argument(
        "--solver",
        help="comma-separated solver names, for example euler,dpm-solver++2m "
        "(see `parnassus list solvers`; default: every registered solver)",
    )
    parser.add_argument(
        "--steps",
        default=DEFAULT_STEPS,
        help=f"comma-separated positive solver step counts (default: {DEFAULT_STEPS})",
    )

    parser.add_argument(
        "-i",
        "--input",
        required=True,
        type=Path,
        help="reference file with GEN and PFC (evt_tree ROOT or Parquet), for example the cmslike simulation's output",
    )
    parser.add_argument("--events", type=_options.positive_int, help="use the first N events of the input (default: all)")
    parser.add_argument("--batch-size", type=_options.positive_int, help="events per network batch (default: the backend's)")
    parser.add_argument(
        "--warmup-events",
        type=int,
        default=None,
        help="events sampled untimed before the first run, so one-time start-up costs are not timed (default: 16; 0: none)",
    )

    parser.add_argument(
        "--repeat",
        type=_options.positive_int,
        default=1,
        help="timed repetitions of each run; the fastest counts, which damps other jobs on the machine (default: 1)",
    )
    parser.add_argument("--bootstrap", type=int, default=None, help="bootstrap replicas per distance (default: 20)")
    parser.add_argument("--jet-pt-min", type=float, default=None, help="minimum jet pT in GeV (default: 10)")
    _options.add_device(parser)
    _options.add_seed(parser)

    parser.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        help="the Markdown table to write (.md); the .csv and .json tables are written beside it",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing tables")
    parser.set_defaults(func=run)


def run(args) -> int:
    from parnassus.core import plugins
    from parnassus.evaluation import solver_benchmark as bench
    from parnassus.evaluation.jets import DEFAULT_JET_PT_MIN
    from parnassus.evaluation.metrics import DEFAULT_BOOTSTRAP
    from parnassus.evaluation.pipeline import Settings

    # Every check that needs no model or events comes first, so a typo fails in a second.
    solver_text = args.solver if args.solver is not None else ",".join(plugins.available("solver"))
    solvers = bench.parse_solvers(solver_text)
    steps = bench.parse_steps(args.steps)
    card, backend = _options.load_card_and_backend(args.detector, args.backend)
    uses_solver = getattr(backend, "uses_solver", True)
    runs = bench.plan_runs(solvers, steps, uses_solver)
    if not uses_solver:
        log.warning("the %s backend samples without an ODE solver: --solver and --steps have no effect, so it runs once", backend.name)

    paths = bench.table_paths(args.output)
    existing = [str(path) for path in paths.values() if path.exists()]
    if existing and not args.overwrite:
        raise ParnassusError(f"{', '.join(existing)} exist; choose another -o or pass --overwrite")
    if args.bootstrap is not None and args.bootstrap < 0:
        raise InvalidInputError(f"--bootstrap must be 0 or more, got {args.bootstrap}")
    if args.warmup_events is not None and args.warmup_events < 0:
        raise InvalidInputError(f"--warmup-events must be 0 or more, got {args.warmup_events}")
    if not args.input.is_file():
        raise InvalidInputError(f"input file {args.input} not found")
    weights = args.weights if args.weights else card.require_weights(args.backend)

    settings = Settings(
        abs_eta_max=card.eval_abs_eta_max,
        jet_pt_min=DEFAULT_JET_PT_MIN if args.jet_pt_min is None else args.jet_pt_min,
        n_bootstrap=DEFAULT_BOOTSTRAP if args.bootstrap is None else args.bootstrap,
        seed=args.seed,
        training_abs_eta_max=card.gen_selection.abs_eta_max,
        detector=card.name,
    )
    log.info("benchmarking %s on %s: %d runs (%s)", backend.name, args.input, len(runs), ", ".join(r.name for r in runs))
    result = bench.benchmark_file(
        args.input,
        card,
        backend,
        weights,
        runs,
        settings,
        max_events=args.events,
        seed=args.seed,
        batch_size=args.batch_size,
        device=args.device,
        warmup_events=bench.DEFAULT_WARMUP_EVENTS if args.warmup_events is None else args.warmup_events,
        repeat=args.repeat,
    )
    bench.write_tables(result, args.output)
    print(bench.markdown_table(result), end="")
    return 0
