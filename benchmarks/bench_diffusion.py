"""Benchmark of the diffusion backend: training rate, sampling rate per stage, peak memory.

Synthetic (GEN, PFC) events are made in memory and written to a Parquet file:
GEN particles with a Gaussian multiplicity (``--mean-particles``, default 165, the
mean PFC multiplicity of the ttbar + QCD training data of arXiv:2503.19981), and
PFCs made from them by smearing, 10 % losses and soft fakes.

Measures, for one preset (``small`` by default):

- training events/s of the second epoch (the first includes tracing of the train
  step), through the same ``DiffusionBackend.train`` that ``parnassus train`` calls;
- sampling events/s of the event stage and of the particle stage for the given
  solvers and step counts (default DPM-Solver-2 at 64 steps, the paper's setting);
- the peak resident memory of the process (``resource.getrusage``, which includes
  TensorFlow's allocations).

Usage::

    python benchmarks/bench_diffusion.py [--preset small] [--train-events 512] [--sample-events 64]
        [--solvers dpm-solver-2] [--steps 64] [--output results.json]
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
from parnassus.core.detector import DetectorCard
from parnassus.core.io import write_events


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
    neutral = cls >= 3
    gen = ev.make_particles(*(ak.unflatten(v, n_gen) for v in (pt, eta, phi, vx, vy, vz, cls)))

    kept = ak.unflatten(rng.uniform(size=total) > 0.1, n_gen)
    smeared = (
        pt * (1 + 0.1 * rng.normal(size=total)),
        eta + 0.02 * rng.normal(size=total),
        ev.wrap_phi(phi + 0.02 * rng.normal(size=total)),
        np.where(neutral, 0.0, vx),
        np.where(neutral, 0.0, vy),
        np.where(neutral, 0.0, vz),
        cls,
    )
    n_fake = rng.integers(0, 10, n_events)
    fakes = int(n_fake.sum())
    fake = (
        1 + rng.exponential(1.0, fakes), rng.uniform(-2.6, 2.6, fakes), rng.uniform(-np.pi, np.pi, fakes),
        np.zeros(fakes), np.zeros(fakes), np.zeros(fakes), np.full(fakes, 4),
    )
    columns = [ak.concatenate([ak.unflatten(a, n_gen)[kept], ak.unflatten(b, n_fake)], axis=1) for a, b in zip(smeared, fake)]
    return ev.make_events(gen, ev.make_particles(*columns))


def peak_memory_mib() -> float:
    """Peak resident memory of this process (MiB); ru_maxrss is in KiB on Linux."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", help="training preset: paper, small or tiny")
    parser.add_argument("--train-events", type=int, default=512, help="synthetic training events per epoch")
    parser.add_argument("--sample-events", type=int, default=64, help="GEN events to sample")
    parser.add_argument("--mean-particles", type=float, default=165.0, help="mean GEN multiplicity per event")
    parser.add_argument("--solvers", nargs="+", default=["dpm-solver-2"], help="registered solver names to time")
    parser.add_argument("--steps", type=int, nargs="+", default=[64], help="solver step counts to time")
    parser.add_argument("--batch-size", type=int, default=None, help="sampling batch size (events); the preset's when omitted")
    parser.add_argument("--device", default=None, help="auto (default), cpu or gpu")
    parser.add_argument("--output", type=Path, default=None, help="write the results as JSON to this file")
    args = parser.parse_args()

    from parnassus.backends.diffusion import DiffusionBackend

    card = DetectorCard(name="synthetic", description="synthetic benchmark detector")
    results: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} CPU cores",
        "preset": args.preset,
        "mean_particles": args.mean_particles,
    }

    with tempfile.TemporaryDirectory() as folder:
        train_file = Path(folder) / "train.parquet"
        write_events(synthetic_events(args.train_events, args.mean_particles, 1), train_file)
        checkpoint = Path(folder) / "checkpoint"

        started = time.perf_counter()
        DiffusionBackend.train([train_file], card, checkpoint, preset=args.preset, epochs=2, device=args.device)
        results["training_total_seconds"] = time.perf_counter() - started
        import yaml

        history = yaml.safe_load((checkpoint / "model.yaml").read_text())["history"]
        results["training_events_per_second"] = history[-1]["events_per_second"]
        results["training_first_epoch_seconds"] = history[0]["seconds"]
        results["peak_memory_after_training_mib"] = peak_memory_mib()
        print(f"training: {results['training_events_per_second']:.1f} events/s (epoch 2), "
              f"first epoch {history[0]['seconds']:.1f} s, peak memory {results['peak_memory_after_training_mib']:.0f} MiB", flush=True)

        model = DiffusionBackend.load(checkpoint, card, device=args.device)
        gen, _ = card.preprocess(synthetic_events(args.sample_events, args.mean_particles, 2))
        gen = ev.make_events(gen.gen, None, gen.event_number)
        # One untimed call traces the velocity functions.
        model.sample(gen[:2], steps=4, seed=0)

        results["sampling"] = []
        for solver in args.solvers:
            for steps in args.steps:
                out, report = model.sample(gen, solver=solver, steps=steps, seed=1, batch_size=args.batch_size)
                row = {
                    "solver": solver,
                    "steps": steps,
                    "events": len(gen),
                    "mean_pfc": float(np.mean(ak.num(out.pfc))),
                    "event_stage_events_per_second": len(gen) / report.event_stage_seconds,
                    "particle_stage_events_per_second": len(gen) / report.particle_stage_seconds,
                    "total_events_per_second": len(gen) / (report.event_stage_seconds + report.particle_stage_seconds),
                    "redraws": report.redraws,
                }
                results["sampling"].append(row)
                print(
                    f"sampling {solver} {steps} steps: event stage {row['event_stage_events_per_second']:.1f} events/s, "
                    f"particle stage {row['particle_stage_events_per_second']:.2f} events/s, "
                    f"total {row['total_events_per_second']:.2f} events/s ({row['mean_pfc']:.0f} PFCs/event, "
                    f"{report.redraws} redraws)",
                    flush=True,
                )
        results["peak_memory_mib"] = peak_memory_mib()
        print(f"peak memory {results['peak_memory_mib']:.0f} MiB")

    if args.output:
        args.output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
