"""Measure the fit and sampling rates of the smearing backend.

Without --data, the events are synthetic but sized like 7 TeV ttbar events, with
about 200 GEN particles per event. 90 % of them yield a PFC with a log-normal pT
smearing, and 30 unmatched PFCs per event are added as from pileup. The PFCs lie
near their GEN particles, so the Delta R matching does the work it does on real files. With --data, the given (GEN, PFC) files are used instead.

Usage: python benchmarks/smearing_benchmark.py [--events N] [--data FILE ...] [--preset NAME]
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np

from parnassus.backends.smearing import SmearingBackend
from parnassus.core import events as ev
from parnassus.core.io import count_events, read_events, write_events
from parnassus.core.plugins import load_detector


def ttbar_sized_events(n_events: int, seed: int) -> ak.Array:
    """Return (GEN, PFC) events with ttbar-like multiplicities and a simple detector response."""
    rng = np.random.default_rng(seed)
    n_gen = rng.poisson(200, n_events)
    total = int(n_gen.sum())
    gen = {
        "pt": 0.25 + rng.exponential(3.0, total),
        "eta": rng.uniform(-2.7, 2.7, total),
        "phi": rng.uniform(-np.pi, np.pi, total),
        "vx": rng.normal(0.0, 0.002, total),
        "vy": rng.normal(0.0, 0.002, total),
        "vz": rng.normal(0.0, 4.0, total),
        "class": rng.choice(5, total, p=[0.55, 0.02, 0.02, 0.11, 0.30]),
    }
    kept = rng.random(total) < 0.9
    smeared = {
        "pt": gen["pt"] * np.exp(rng.normal(0.0, 0.1, total)),
        "eta": gen["eta"] + rng.normal(0.0, 0.01, total),
        "phi": ev.wrap_phi(gen["phi"] + rng.normal(0.0, 0.01, total)),
        "vx": gen["vx"],
        "vy": gen["vy"],
        "vz": gen["vz"] + rng.normal(0.0, 0.01, total),
        "class": gen["class"],
    }
    n_pileup = rng.poisson(30, n_events)
    extra = int(n_pileup.sum())
    pileup = {
        "pt": 1.0 + rng.exponential(1.0, extra),
        "eta": rng.uniform(-2.7, 2.7, extra),
        "phi": rng.uniform(-np.pi, np.pi, extra),
        "vx": np.zeros(extra),
        "vy": np.zeros(extra),
        "vz": rng.normal(0.0, 4.0, extra),
        "class": np.zeros(extra, dtype=np.int64),
    }

    event_of_pfc = np.concatenate([np.repeat(np.arange(n_events), n_gen)[kept], np.repeat(np.arange(n_events), n_pileup)])
    order = np.argsort(event_of_pfc, kind="stable")
    pfc_counts = np.bincount(event_of_pfc, minlength=n_events)
    names = ("pt", "eta", "phi", "vx", "vy", "vz", "class")
    gen_particles = ev.make_particles(*(ak.unflatten(gen[name], n_gen) for name in names))
    pfc_particles = ev.make_particles(
        *(ak.unflatten(np.concatenate([smeared[name][kept], pileup[name]])[order], pfc_counts) for name in names)
    )
    return ev.make_events(gen_particles, pfc_particles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000, help="synthetic events (default: 5000)")
    parser.add_argument("--data", nargs="+", type=Path, help="(GEN, PFC) files to use instead of synthetic events")
    parser.add_argument("--detector", default="cms2011", help="detector card (default: cms2011)")
    parser.add_argument("--preset", default="small", help="bin layout preset (default: small)")
    parser.add_argument("--folder", default=None, help="where to write files (default: a temporary folder)")
    args = parser.parse_args()

    card = load_detector(args.detector)
    folder = Path(args.folder or tempfile.mkdtemp())
    data = args.data
    if not data:
        data = [folder / "smearing_benchmark.parquet"]
        write_events(ttbar_sized_events(args.events, seed=1), data[0])
    n_events = sum(count_events(path) for path in data)

    start, start_cpu = time.perf_counter(), time.process_time()
    checkpoint = SmearingBackend.train(data, card, folder / "model", preset=args.preset)
    fit_seconds, fit_cpu = time.perf_counter() - start, time.process_time() - start_cpu

    model = SmearingBackend.load(checkpoint, card)
    gen, _ = card.preprocess(read_events(data[0]))
    gen = ev.make_events(gen.gen, None, gen.event_number)
    start, start_cpu = time.perf_counter(), time.process_time()
    sampled, _ = model.sample(gen, seed=1)
    sample_seconds, sample_cpu = time.perf_counter() - start, time.process_time() - start_cpu

    n_gen = float(ak.mean(ak.num(gen.gen)))
    n_pfc = float(ak.mean(ak.num(sampled.pfc)))
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"events: {n_events} fitted, {len(gen)} sampled; {n_gen:.0f} GEN and {n_pfc:.0f} sampled PFCs per event")
    # CPU time beside wall time, because a shared machine slows the wall clock of every step.
    print(f"fit (read, preprocess, match, fill, write): {n_events / fit_seconds:8.0f} events/s wall "
          f"({fit_seconds:.2f} s), {n_events / fit_cpu:8.0f} events per CPU second")
    print(f"sample:                                      {len(gen) / sample_seconds:8.0f} events/s wall "
          f"({sample_seconds:.2f} s), {len(gen) / sample_cpu:8.0f} events per CPU second")


if __name__ == "__main__":
    main()
