"""Measure the read and write rates of the event file formats.

Events are random but sized like 7 TeV ttbar events at generator level (about
200 GEN particles and 100 PFCs per event), so the rates carry over to real files.

Usage: python benchmarks/io_benchmark.py [--events N] [--step-size N] [--folder DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.core.io import count_events, iter_events, write_events


def ttbar_sized_events(n_events: int, seed: int) -> ak.Array:
    rng = np.random.default_rng(seed)

    def particles(mean):
        counts = rng.poisson(mean, n_events)
        n = int(counts.sum())
        cls = rng.integers(0, ev.N_CLASSES, n)
        pdgid = np.array([211, 11, 13, 130, 22])[cls]
        # Vertices (cm): one primary vertex per event; 10% of the particles come in pairs
        # from displaced decay vertices, as after decays of K0S, Lambda and heavy-flavour hadrons.
        event_of = np.repeat(np.arange(n_events), counts)
        primary = rng.normal(0, [0.002, 0.002, 4.0], (n_events, 3))
        vertex = primary[event_of] + np.where(rng.random((n, 1)) < 0.1, rng.normal(0, 1.0, (n, 3)), 0.0)
        vertex[1::2] = np.where(vertex[1::2] != primary[event_of][1::2], vertex[0:-1:2][: len(vertex[1::2])], vertex[1::2])
        columns = [rng.exponential(3.0, n) + 0.25, rng.uniform(-2.7, 2.7, n), rng.uniform(-np.pi, np.pi, n),
                   vertex[:, 0], vertex[:, 1], vertex[:, 2]]
        return ev.make_particles(*(ak.unflatten(c, counts) for c in columns), ak.unflatten(cls, counts),
                                 pdgid=ak.unflatten(pdgid, counts))

    gen = particles(200)
    pfc = particles(100)
    return ev.make_events(gen, ak.without_field(pfc, "pdgid"))


def rate(seconds: float, n_events: int) -> str:
    return f"{n_events / seconds:9.0f} events/s ({seconds:6.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events per format (default: 20000)")
    parser.add_argument("--hepmc-events", type=int, default=2000, help="events for HepMC3 (default: 2000)")
    parser.add_argument("--step-size", type=int, default=10000, help="events per chunk (default: 10000)")
    parser.add_argument("--folder", default=None, help="where to write the files (default: a temporary folder)")
    args = parser.parse_args()

    folder = Path(args.folder or tempfile.mkdtemp())
    events = ttbar_sized_events(args.events, seed=1)
    print(f"{args.events} events, {ak.mean(ak.num(events.gen)):.0f} GEN and {ak.mean(ak.num(events.pfc)):.0f} PFC per event")

    for name, n_events in (("events.root", args.events), ("events.parquet", args.events),
                           ("events.hepmc", args.hepmc_events), ("events.hepmc.gz", args.hepmc_events)):
        path = folder / name
        batch = events[:n_events]
        start = time.perf_counter()
        write_events(batch, path)
        written = time.perf_counter() - start

        start = time.perf_counter()
        assert count_events(path) == n_events
        counted = time.perf_counter() - start

        start = time.perf_counter()
        n_read = sum(len(chunk) for chunk in iter_events(path, step_size=args.step_size))
        read = time.perf_counter() - start
        assert n_read == n_events

        size = path.stat().st_size / 1e6
        print(f"{name:16s} write {rate(written, n_events)}  read {rate(read, n_events)}  "
              f"count {counted * 1e3:7.1f} ms  {size:7.1f} MB")


if __name__ == "__main__":
    main()
