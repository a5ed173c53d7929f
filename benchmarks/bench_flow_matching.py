"""Benchmark of the flow-matching backend: training rate, sampling rate per stage and solver, peak memory.

Synthetic (GEN, PFC) events are made in memory. They have 165 GEN particles per
event on average, the mean multiplicity of the ttbar + QCD training data of
arXiv:2503.19981 (its normalisation constant for N). The PFCs are the GEN
particles smeared, with losses and fakes.

Measures, for one preset (``small`` by default):

- training events/s over ``--train-events`` events per epoch (after the first
  epoch, which includes feature computation), and the peak resident memory of
  the process (``resource.getrusage``, which includes PyTorch's allocations);
- sampling events/s of the event stage and of the particle stage for every
  registered solver at 8, 16 and 25 steps, on ``--sample-events`` events.

Usage::

    python benchmarks/bench_flow_matching.py [--preset small] [--threads N] [--output results.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.core import plugins
from parnassus.core.detector import DetectorCard


def synthetic_events(n_events: int, mean_particles: float, seed: int) -> ak.Array:
    """GEN events with a Gaussian multiplicity and PFCs made by smearing, 10 % losses and soft fakes."""
    rng = np.random.default_rng(seed)
    n_gen = np.clip(rng.normal(mean_particles, 0.35 * mean_particles, n_events), 5, 390).astype(np.int64)
    total = int(n_gen.sum())
    pt = 0.3 + rng.exponential(4.0, total)
    eta = rng.uniform(-2.6, 2.6, total)
    phi = rng.uniform(-np.pi, np.pi, total)
    cls = rng.choice(5, total, p=[0.55, 0.02, 0.02, 0.11, 0.30])
    vx, vy, vz = rng.normal(0.2, 0.05, total), rng.normal(0.3, 0.05, total), rng.normal(0.0, 5.0, total)
    gen = ev.make_particles(*(ak.unflatten(v, n_gen) for v in (pt, eta, phi, vx, vy, vz, cls)))

    kept = ak.unflatten(rng.uniform(size=total) > 0.1, n_gen)
    smeared = (pt * (1 + 0.1 * rng.normal(size=total)), eta + 0.02 * rng.normal(size=total),
               ev.wrap_phi(phi + 0.02 * rng.normal(size=total)), vx, vy, vz, cls)
    n_fake = rng.integers(0, 10, n_events)
    fakes = int(n_fake.sum())
    fake = (1 + rng.exponential(1.0, fakes), rng.uniform(-2.6, 2.6, fakes), rng.uniform(-np.pi, np.pi, fakes),
            np.zeros(fakes), np.zeros(fakes), np.zeros(fakes), np.full(fakes, 4))
    columns = [ak.concatenate([ak.unflatten(a, n_gen)[kept], ak.unflatten(b, n_fake)], axis=1) for a, b in zip(smeared, fake)]
    return ev.make_events(gen, ev.make_particles(*columns))


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", help="training preset (paper, small, tiny)")
    parser.add_argument("--train-events", type=int, default=512, help="training events per epoch")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs; the rate is taken from the last")
    parser.add_argument("--sample-events", type=int, default=64, help="events sampled per solver and step count")
    parser.add_argument("--mean-particles", type=float, default=165.0, help="mean GEN multiplicity of the synthetic events")
    parser.add_argument("--threads", type=int, default=None, help="PyTorch threads (OMP_NUM_THREADS); all CPUs when omitted")
    parser.add_argument("--steps", default="8,16,25", help="comma-separated solver step counts")
    parser.add_argument("--solvers", default=None, help="comma-separated solver names; all registered ones when omitted")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from parnassus.backends.flow_matching import FlowMatchingBackend

    card = DetectorCard(name="benchmark", description="synthetic detector for benchmarks")
    results: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_start": os.getloadavg(),
        "preset": args.preset,
        "threads": args.threads or "all",
    }

    train_events = synthetic_events(args.train_events, args.mean_particles, seed=1)
    rss_before = peak_rss_mib()
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "model"
        start = time.perf_counter()
        FlowMatchingBackend.train(train_events, card, out, preset=args.preset, epochs=args.epochs, device="cpu")
        total_seconds = time.perf_counter() - start
        with open(out / "model.yaml") as stream:
            import yaml

            history = yaml.safe_load(stream)["history"]
        last = history[-1]
        results["training"] = {
            "events_per_epoch": last["events"],
            "events_per_second": last["events"] / last["seconds"],
            "seconds_per_epoch": last["seconds"],
            "total_seconds_including_startup": total_seconds,
            "peak_rss_mib": peak_rss_mib(),
            "peak_rss_mib_before_training": rss_before,
            "final_losses": {k: v for k, v in last.items() if "loss" in k},
        }
        print(f"training: {results['training']['events_per_second']:.1f} events/s, peak RSS {peak_rss_mib():.0f} MiB")

        model = FlowMatchingBackend.load(out, card, device="cpu")
        gen, _ = card.preprocess(synthetic_events(args.sample_events, args.mean_particles, seed=2))
        gen = ev.make_events(gen.gen, None, gen.event_number)
        model.sample(gen[:4], steps=4, event_steps=4)  # warm-up

        sampling = []
        solvers = args.solvers.split(",") if args.solvers else sorted(plugins.available("solver"))
        for solver in solvers:
            for steps in (int(s) for s in args.steps.split(",")):
                _, report = model.sample(gen, solver=solver, steps=steps, event_solver=solver, event_steps=steps, seed=0)
                row = {
                    "solver": solver,
                    "steps": steps,
                    "event_stage_events_per_second": report.events / max(report.event_stage_seconds, 1e-9),
                    "particle_stage_events_per_second": report.events / max(report.particle_stage_seconds, 1e-9),
                    "redraws": report.redraws,
                }
                sampling.append(row)
                print(
                    f"{solver:>15} {steps:>3} steps: event stage {row['event_stage_events_per_second']:8.1f} events/s, "
                    f"particle stage {row['particle_stage_events_per_second']:7.2f} events/s, redraws {report.redraws}"
                )
        results["sampling"] = sampling
    results["load_average_end"] = os.getloadavg()

    if args.output:
        args.output.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "sampling"}, indent=2))


if __name__ == "__main__":
    main()
