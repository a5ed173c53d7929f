#!/usr/bin/env python
"""Measure the fidelity and speed of the shipped cmslike models on the standard test sets.

For each test process (ttbar and QCD 470-600 in distribution, h4l and QCD 600-800 out
of distribution) the script takes the first N events of the simulated test file as the
reference, samples their PFCs from the GEN particles with every shipped backend (at its
default steps and at 8 steps), times each backend and the reference simulation on the
same events, runs ``parnassus evaluate`` on all of them and writes ``summary.md``
beside the report: the tables that docs/benchmarks.md shows.

Example::

    python scripts/evaluate_shipped_models.py --data data --events 300 -o runs/evaluation
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from parnassus.core import events as ev
from parnassus.core import io, plugins
from parnassus.cli import main as parnassus_main

log = logging.getLogger("evaluate_shipped_models")

PROCESSES = {
    "ttbar": "test/ttbar_0000000-0004999",
    "qcd-470-600": "test/qcd-470-600_0000000-0004999",
    "h4l": "test-ood/h4l_0000000-0004999",
    "qcd-600-800": "test-ood/qcd-600-800_0000000-0004999",
}
BACKENDS = ("flow-matching", "diffusion", "smearing")

# Observables that a per-particle smearing cannot get right: multiplicity, HT response,
# pileup and fakes. The shipped generative models should beat smearing on these.
HEADLINE = (
    "event/n",
    "event_residual/n",
    "event_residual/ht",
    "unmatched/n",
    "unmatched/pt",
    "unmatched/eta",
)


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="folder made by make_datasets.py")
    parser.add_argument("--events", type=int, default=300, help="events per test process (default: 300)")
    parser.add_argument("--fast-steps", type=int, default=8, help="the reduced step count also measured (default: 8)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--processes", nargs="+", default=list(PROCESSES), choices=list(PROCESSES))
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    parser.add_argument(
        "--reuse-samples",
        action="store_true",
        help="keep samples (and their timing) already in the output folder from an earlier run with the same "
        "weights, events and seed; sample only what is missing",
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("runs/evaluation"), help="output folder")
    return parser.parse_args(argv)


def reference_events(data: Path, process: str, n_events: int):
    path = data / "full" / f"{PROCESSES[process]}.root"
    if not path.is_file():
        raise SystemExit(f"{path} not found: run scripts/make_datasets.py first")
    return io.read_events(path, entry_stop=n_events, require_pfc=True), path


def time_reference_simulation(card, gen_only, data: Path, seed: int) -> float:
    """Return the events/s of the reference simulation (with pileup) on the same GEN events."""
    pileup = io.read_events(data / "pileup" / "minbias.root")
    start = time.perf_counter()
    card.simulate(gen_only, seed=seed, pileup=pileup)
    return len(gen_only) / (time.perf_counter() - start)


def sample_backend(card, backend_name: str, prepared, steps: int | None, seed: int):
    backend = plugins.load_backend(backend_name)
    model = backend.load(card.require_weights(backend_name), card)
    start = time.perf_counter()
    sampled, report = model.sample(prepared, steps=steps, seed=seed)
    seconds = time.perf_counter() - start
    return sampled, report, len(prepared) / seconds


def confusion_distance(reference: list[list[float]], sample: list[list[float]]) -> float:
    """Return the mean over GEN classes of the total-variation distance of the PFC-class rows.

    Each row (one GEN class) is normalised to the fraction of matched GEN particles
    reconstructed as each PFC class: 0 for identical migrations, 1 for disjoint ones.
    """
    distances = []
    for ref_row, sample_row in zip(np.asarray(reference, float), np.asarray(sample, float)):
        if ref_row.sum() > 0 and sample_row.sum() > 0:
            distances.append(0.5 * np.abs(ref_row / ref_row.sum() - sample_row / sample_row.sum()).sum())
    return float(np.mean(distances)) if distances else float("nan")


def main(argv=None) -> int:
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    card = plugins.load_detector("cmslike")
    samples_folder = args.output / "samples"
    samples_folder.mkdir(parents=True, exist_ok=True)

    speed_rows = []
    evaluate_args = ["--detector", "cmslike", "--overwrite", "-o", str(args.output / "report")]
    for process in args.processes:
        reference, path = reference_events(args.data, process, args.events)
        evaluate_args += ["--reference", f"{process}={path}"]
        gen_only = ev.make_events(reference.gen, None, reference.event_number)
        prepared, _ = card.preprocess(gen_only, source=str(path))

        simulation_rate = time_reference_simulation(card, gen_only, args.data, args.seed)
        speed_rows.append((process, "reference simulation (with pileup)", "-", simulation_rate, 0))
        for backend in args.backends:
            step_options = [None] if backend == "smearing" else [None, args.fast_steps]
            for steps in step_options:
                name = backend if steps is None else f"{backend}-{steps}"
                out = samples_folder / f"{name}_{process}.root"
                timing_path = out.with_suffix(".json")
                if args.reuse_samples and out.is_file() and timing_path.is_file():
                    log.info("%s: reusing %s", process, out)
                    timing = json.loads(timing_path.read_text())
                else:
                    log.info("%s: sampling %d events with %s", process, len(prepared), name)
                    sampled, report, rate = sample_backend(card, backend, prepared, steps, args.seed)
                    io.write_events(sampled, out)
                    timing = {"events_per_second": rate, "redraws": report.redraws}
                    timing_path.write_text(json.dumps(timing))
                evaluate_args += ["--sample", f"{name}:{process}={out}"]
                speed_rows.append(
                    (process, name, "default" if steps is None else str(steps), timing["events_per_second"], timing["redraws"])
                )

    # --max-events limits the reference; samples hold exactly those events.
    code = parnassus_main(["evaluate", *evaluate_args, "--max-events", str(args.events)])
    if code:
        return code
    write_summary(args, speed_rows)
    return 0


def write_summary(args, speed_rows) -> None:
    report = args.output / "report"
    with open(report / "distances.json") as stream:
        distances = json.load(stream)
    with open(report / "summary.json") as stream:
        summary = json.load(stream)

    lines = [f"Test events per process: {args.events}; seed {args.seed}.", ""]
    lines += ["| process | sample | steps | events/s | redraws |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {p} | {name} | {steps} | {rate:.1f} | {redraws} |" for p, name, steps, rate, redraws in speed_rows]
    lines += ["", "Distance to the reference (ratio to the statistical floor in brackets):", ""]
    lines += [_headline_table(distances), "", "Class migration (mean total-variation distance of the confusion rows "
              "to the reference's; 0 is identical):", ""]
    lines += [_confusion_table(summary), "", "Matching efficiencies (GEN jets with a PFC jet within Delta R 0.2, "
              "GEN particles with a PFC within 0.6; one-to-one, per event):", ""]
    lines += [_efficiency_table(summary), "", "Scores (median of distance / floor over all distributions):", ""]
    for name, values in distances.get("scores", {}).items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in values.items()))
    (args.output / "summary.md").write_text("\n".join(lines) + "\n")
    log.info("wrote %s", args.output / "summary.md")


def _headline_table(distances) -> str:
    names = sorted({name for result in distances["processes"].values() for name in result["distances"]})
    lines = ["| process | observable | floor | " + " | ".join(names) + " |", "| --- " * (3 + len(names)) + "|"]
    for process, result in distances["processes"].items():
        for observable in HEADLINE:
            floor = result["floors"].get(observable)
            if floor is None:
                continue
            cells = []
            for name in names:
                value = result["distances"].get(name, {}).get(observable)
                cells.append("-" if value is None else f"{value['value']:.3g} ({value['ratio']:.1f})")
            lines.append(f"| {process} | `{observable}` | {floor['value']:.3g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _confusion_table(summary) -> str:
    lines = ["| process | sample | confusion distance |", "| --- | --- | --- |"]
    for process, result in summary["processes"].items():
        reference = result["samples"]["reference"]["confusion"]["all"]
        for name, sample in result["samples"].items():
            if name != "reference":
                lines.append(f"| {process} | {name} | {confusion_distance(reference, sample['confusion']['all']):.3f} |")
    return "\n".join(lines)


def _efficiency_table(summary) -> str:
    lines = ["| process | sample | jets | particles |", "| --- | --- | --- | --- |"]
    for process, result in summary["processes"].items():
        for name, sample in result["samples"].items():
            efficiencies = sample["efficiencies"]
            lines.append(
                f"| {process} | {name} | {efficiencies['jet_match_efficiency']:.3f} "
                f"| {efficiencies['particle_match_efficiency/all']:.3f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
