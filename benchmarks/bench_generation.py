"""Benchmark Pythia 8 event generation: events per second of each process on one core.

For each process: the Pythia initialisation time, then ``--events`` events
generated in steps of ``--step-size`` with ``nextBatch`` and turned into GEN
records. Reports wall-clock and CPU rates, and the share of the GEN conversion.
The CPU rate is the one-core figure when other programs share the machine.

    python benchmarks/bench_generation.py --events 2000

Pin to one core for the one-core wall-clock figure:
``taskset -c 0 python benchmarks/bench_generation.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone

import awkward as ak

from parnassus.generation.gen_record import gen_particles
from parnassus.generation.processes import PROCESSES
from parnassus.generation.pythia_gen import PythiaGenerator


def measure(process: str, n_events: int, step_size: int, seed: int) -> dict:
    """Time the initialisation, nextBatch and the GEN conversion of one process."""
    wall, cpu = time.perf_counter(), time.process_time()
    generator = PythiaGenerator(process, seed)
    init_s = time.perf_counter() - wall

    generator.next_batch(min(10, n_events))  # warm-up outside the timing
    pythia_wall = convert_wall = 0.0
    particles = 0
    wall, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < n_events:
        n = min(step_size, n_events - done)
        start = time.perf_counter()
        batch = generator.next_batch(n)
        middle = time.perf_counter()
        gen = gen_particles(batch)
        pythia_wall += middle - start
        convert_wall += time.perf_counter() - middle
        particles += int(ak.sum(ak.num(gen)))
        done += n
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu

    return {
        "process": process,
        "events": n_events,
        "init_s": round(init_s, 2),
        "events_per_s_wall": round(n_events / wall, 1),
        "events_per_s_cpu": round(n_events / cpu, 1),
        "gen_conversion_share": round(convert_wall / (pythia_wall + convert_wall), 3),
        "gen_particles_per_event": round(particles / n_events, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events per process (default: %(default)s)")
    parser.add_argument("--step-size", type=int, default=500, help="events per nextBatch call (default: %(default)s)")
    parser.add_argument("--processes", nargs="+", choices=list(PROCESSES), default=list(PROCESSES), help="processes to time (default: all)")
    parser.add_argument("--seed", type=int, default=1, help="seed (default: %(default)s)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    results = [measure(process, args.events, args.step_size, args.seed) for process in args.processes]

    print(f"# parnassus generation benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.processor() or platform.machine()}, one process")
    header = f"{'process':<12} {'init s':>7} {'ev/s wall':>10} {'ev/s CPU':>9} {'GEN share':>10} {'GEN/event':>10}"
    print(header)
    for r in results:
        print(
            f"{r['process']:<12} {r['init_s']:>7.2f} {r['events_per_s_wall']:>10.1f} {r['events_per_s_cpu']:>9.1f} "
            f"{r['gen_conversion_share']:>10.1%} {r['gen_particles_per_event']:>10.1f}"
        )
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(results, stream, indent=2)


if __name__ == "__main__":
    main()
