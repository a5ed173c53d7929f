"""Benchmark `parnassus evaluate`: N toy ttbar-like events, one reference and four samples.

Writes the toy events to ROOT files in a temporary folder, then times the command
(reading, observables, distances, plots and report) end to end, and the stages
separately through the Python API.

Usage:
    python benchmarks/bench_evaluation.py --events 2000 [--bootstrap 20] [--keep report/]
"""

from __future__ import annotations

import argparse
import logging
import platform
import shutil
import tempfile
import time
from pathlib import Path

from parnassus.cli import main as parnassus_main
from parnassus.core.io import read_events, write_events
from parnassus.evaluation.pipeline import Settings, evaluate_process
from parnassus.evaluation.report import write_report
from parnassus.evaluation.synthetic import ToyDetector, toy_events

SAMPLES = {
    "flow": ToyDetector(),
    "diffusion": ToyDetector(pt_resolution=0.09),
    "smearing": ToyDetector(pt_scale=1.03, class_confusion=0.02, fakes_per_event=0.0),
    "delphes": ToyDetector(efficiency=0.97, pt_resolution=0.05),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="toy ttbar events per file")
    parser.add_argument("--bootstrap", type=int, default=20, help="bootstrap replicas per distance")
    parser.add_argument("--keep", default=None, help="copy the report folder here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    folder = Path(tempfile.mkdtemp(prefix="bench_evaluation_"))
    try:
        start = time.perf_counter()
        reference_path = folder / "reference.root"
        write_events(toy_events(args.events, 0, 1), reference_path)
        sample_paths = {}
        for seed, (name, detector) in enumerate(SAMPLES.items(), start=2):
            sample_paths[name] = folder / f"{name}.root"
            write_events(toy_events(args.events, 0, seed, detector), sample_paths[name])
        print(f"toy events written in {time.perf_counter() - start:.1f} s")

        command = ["evaluate", "--reference", f"ttbar={reference_path}"]
        for name, path in sample_paths.items():
            command += ["--sample", f"{name}={path}"]
        command += ["--bootstrap", str(args.bootstrap), "-o", str(folder / "report")]
        start, cpu_start = time.perf_counter(), time.process_time()
        code = parnassus_main(command)
        command_seconds, command_cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if code != 0:
            raise SystemExit(f"parnassus evaluate failed with exit code {code}")

        # The stages separately, through the API.
        reference = read_events(reference_path, require_pfc=True)
        samples = {name: read_events(path, require_pfc=True) for name, path in sample_paths.items()}
        settings = Settings(n_bootstrap=args.bootstrap)
        start, cpu_start = time.perf_counter(), time.process_time()
        result = evaluate_process("ttbar", reference, samples, settings)
        evaluate_seconds, evaluate_cpu = time.perf_counter() - start, time.process_time() - cpu_start
        start, cpu_start = time.perf_counter(), time.process_time()
        write_report([result], settings, folder / "report_api")
        report_seconds, report_cpu = time.perf_counter() - start, time.process_time() - cpu_start

        print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
        print(f"command: parnassus {' '.join(command)}")
        print(f"events: {args.events} per file, 1 reference + {len(SAMPLES)} samples, {args.bootstrap} bootstrap replicas")
        # CPU time next to wall time: on a shared machine the wall time grows with the load.
        print(f"parnassus evaluate end to end: {command_seconds:.1f} s wall, {command_cpu:.1f} s CPU")
        print(f"  observables + distances (API): {evaluate_seconds:.1f} s wall, {evaluate_cpu:.1f} s CPU")
        print(f"  plots + report (API): {report_seconds:.1f} s wall, {report_cpu:.1f} s CPU")
        for name in SAMPLES:
            print(f"  score {name}: {result.comparison.score(name):.2f}")
        if args.keep:
            shutil.copytree(folder / "report", args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
