"""``parnassus evaluate``: compare samples with a reference simulation and write a report folder.

One process::

    parnassus evaluate --reference full.root --sample flow=a.root --sample diffusion=b.root -o report/

Several processes at once: name each reference ``PROCESS=PATH`` and each sample
``NAME:PROCESS=PATH``; every sample name needs a file for every process::

    parnassus evaluate --reference ttbar=full_tt.root --reference qcd=full_qcd.root \\
        --sample flow:ttbar=flow_tt.root --sample flow:qcd=flow_qcd.root -o report/

Samples are paired with the reference by event number and must hold the same GEN
events (checked per event). fastjet, matplotlib and mplhep are imported only
when the command runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from parnassus.exceptions import InvalidInputError, ParnassusError

log = logging.getLogger(__name__)

#: Sample names the report uses for itself.
RESERVED_NAMES = frozenset({"reference", "GEN", "gen"})


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="compare samples with a reference simulation: distances, plots and an HTML report",
        description="Compare one or more samples (GEN + PFC files, e.g. from `parnassus run`) with a reference "
        "simulation of the same GEN events: event quantities, anti-kt R = 0.5 jets with C2 and D2, particle "
        "spectra, GEN-PFC matching, residuals, class confusion and unmatched PFCs; the 1-Wasserstein distance "
        "of every distribution with a bootstrap uncertainty and the statistical floor of the reference; plots "
        "and an index.html in the output folder.",
        epilog="Several processes: --reference ttbar=tt.root --reference qcd=qcd.root "
        "--sample flow:ttbar=flow_tt.root --sample flow:qcd=flow_qcd.root.",
    )

    parser.add_argument(
        "--reference",
        action="append",
        required=True,
        metavar="[PROCESS=]PATH",
        help="the reference events (GEN and PFC; ROOT, Parquet); repeat with PROCESS=PATH for several processes",
    )
    parser.add_argument(
        "--sample",
        action="append",
        required=True,
        metavar="NAME[:PROCESS]=PATH",
        help="a sample to compare (GEN and PFC) under the name NAME; add :PROCESS when there are several processes",
    )

    parser.add_argument(
        "--process",
        default=None,
        help="the process name of a reference given without one (default: the reference file's name without suffix)",
    )
    parser.add_argument(
        "--detector",
        default="cmslike",
        help="detector card whose evaluation acceptance |eta| applies (default: cmslike, as for run, simulate and benchmark)",
    )

    parser.add_argument("-o", "--output", required=True, help="the report folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace the report folder if it exists")

    parser.add_argument(
        "--max-events",
        type=int,
        default=None,
        help="evaluate only the first N reference events of each process (default: all); "
        "sample events outside them are ignored",
    )
    parser.add_argument("--jet-pt-min", type=float, default=None, help="minimum jet pT in GeV (default: 10)")
    parser.add_argument("--bootstrap", type=int, default=None, help="bootstrap replicas per distance (default: 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the floor splits (default: 0)")
    parser.set_defaults(func=run)


@dataclass
class Plan:
    """The files of an evaluation: process -> reference path, and process -> sample name -> path."""

    references: dict[str, Path]
    samples: dict[str, dict[str, Path]] = field(default_factory=dict)

    @property
    def sample_names(self) -> list[str]:
        names: list[str] = []
        for per_process in self.samples.values():
            names += [name for name in per_process if name not in names]
        return names


def _split(text: str, option: str) -> tuple[str | None, str]:
    """Split ``LABEL=PATH``; a whole argument that names an existing file is a path without a label."""
    if "=" not in text or Path(text).exists():
        return None, text
    label, path = text.split("=", 1)
    if not label or not path:
        raise InvalidInputError(f"{option} {text!r} is invalid: expected LABEL=PATH")
    return label, path


def plan_files(references: list[str], samples: list[str], process: str | None = None) -> Plan:
    """Turn the --reference and --sample arguments into a :class:`Plan`.

    Raises:
        InvalidInputError: on a duplicated or missing process or sample, an unnamed
            reference among several, a reserved sample name, or a file that does not exist.
    """
    plan = Plan(references={})
    for text in references:
        label, path = _split(text, "--reference")
        if label is None:
            if len(references) > 1:
                raise InvalidInputError(
                    f"--reference {text!r} has no process name; with several references write PROCESS=PATH"
                )
            label = process or Path(path).name.split(".")[0]
        if label in plan.references:
            raise InvalidInputError(f"process {label!r} has more than one --reference")
        plan.references[label] = Path(path)
    plan.samples = {name: {} for name in plan.references}

    for text in samples:
        label, path = _split(text, "--sample")
        if label is None:
            raise InvalidInputError(f"--sample {text!r} has no name; write NAME=PATH (or NAME:PROCESS=PATH)")
        name, _, sample_process = label.partition(":")
        if name in RESERVED_NAMES:
            raise InvalidInputError(f"--sample name {name!r} is reserved; choose another name")
        if not sample_process:
            if len(plan.references) > 1:
                raise InvalidInputError(
                    f"--sample {text!r} names no process; with several references write NAME:PROCESS=PATH "
                    f"(processes: {', '.join(plan.references)})"
                )
            sample_process = next(iter(plan.references))
        if sample_process not in plan.references:
            raise InvalidInputError(
                f"--sample {text!r} names process {sample_process!r}, which has no --reference "
                f"(processes: {', '.join(plan.references)})"
            )
        if name in plan.samples[sample_process]:
            raise InvalidInputError(f"sample {name!r} has more than one file for process {sample_process!r}")
        plan.samples[sample_process][name] = Path(path)

    missing = [
        f"{name}:{process_name}"
        for process_name in plan.references
        for name in plan.sample_names
        if name not in plan.samples[process_name]
    ]
    if missing:
        raise InvalidInputError(f"every sample needs a file for every process; missing: {', '.join(missing)}")

    for path in [*plan.references.values(), *(p for s in plan.samples.values() for p in s.values())]:
        if not path.is_file():
            raise InvalidInputError(f"event file {path} not found")
    return plan


def _read(path: Path, max_events: int | None):
    from parnassus.core.io import read_events

    # NOTE: whole files are read into memory (the pairing by event number needs every
    # sample event at hand); --max-events bounds the reference, not the samples.
    log.info("reading %s", path)
    return read_events(path, entry_stop=max_events, require_pfc=True)


def _restrict(sample, reference):
    """Keep the sample events whose event numbers are among the reference's (used with --max-events)."""
    import awkward as ak
    import numpy as np

    keep = np.isin(ak.to_numpy(sample.event_number), ak.to_numpy(reference.event_number))
    return sample[keep]


def run(args) -> int:
    from parnassus.core.plugins import load_detector
    from parnassus.evaluation.jets import DEFAULT_JET_PT_MIN
    from parnassus.evaluation.metrics import DEFAULT_BOOTSTRAP
    from parnassus.evaluation.pipeline import Settings, evaluate_process
    from parnassus.evaluation.report import write_report

    plan = plan_files(args.reference, args.sample, args.process)
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise ParnassusError(f"report folder {output} exists; choose another -o or pass --overwrite")
    if args.max_events is not None and args.max_events < 1:
        raise InvalidInputError(f"--max-events must be at least 1, got {args.max_events}")
    if args.bootstrap is not None and args.bootstrap < 0:
        raise InvalidInputError(f"--bootstrap must be 0 or more, got {args.bootstrap}")

    card = load_detector(args.detector)
    settings = Settings(
        abs_eta_max=card.eval_abs_eta_max,
        jet_pt_min=DEFAULT_JET_PT_MIN if args.jet_pt_min is None else args.jet_pt_min,
        n_bootstrap=DEFAULT_BOOTSTRAP if args.bootstrap is None else args.bootstrap,
        seed=args.seed,
        training_abs_eta_max=card.gen_selection.abs_eta_max,
        detector=card.name,
    )
    log.info(
        "evaluating %d samples (%s) on %d processes (%s), detector %s",
        len(plan.sample_names),
        ", ".join(plan.sample_names),
        len(plan.references),
        ", ".join(plan.references),
        card.name,
    )

    results = []
    for process, reference_path in plan.references.items():
        # Every file passes through the card's preprocessing, as the GEN input of a model
        # does: its cuts and its truncation to the hardest max_particles particles.
        reference, _ = card.preprocess(_read(reference_path, args.max_events), source=str(reference_path))
        samples, labels = {}, {}
        for name, path in plan.samples[process].items():
            events, _ = card.preprocess(_read(path, None), source=str(path))
            samples[name] = _restrict(events, reference) if args.max_events is not None else events
            labels[name] = f"sample {name!r} ({path})"
        results.append(
            evaluate_process(process, reference, samples, settings, card, reference_name=str(reference_path), sample_names=labels)
        )

    try:
        write_report(results, settings, output, overwrite=args.overwrite)
    except FileExistsError as error:
        raise ParnassusError(str(error)) from error
    print(output / "index.html")
    return 0
