"""Benchmark the cmslike reference simulation: ttbar events per second on one core, with pileup.

Generates (or reads) a ttbar and a minimum-bias sample with Pythia 8, then times
``card.simulate`` on chunks of ``--chunk`` events (the GEN events are reused to fill the
chunks), with and without pileup (Poisson mean 6.35). Prints wall-clock and CPU rates.

    python benchmarks/bench_simulation.py --events 2000 --chunk 1000

Pin to one core for the one-core figure: ``taskset -c 0 python benchmarks/bench_simulation.py``.
"""

from __future__ import annotations

import argparse
import os
import time

# One thread for the numerical libraries, so the figure is a one-core figure.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import awkward as ak  # noqa: E402
import numpy as np  # noqa: E402

from parnassus.detectors.cmslike import PileupLibrary, card, samples  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events to simulate per configuration")
    parser.add_argument("--chunk", type=int, default=1000, help="events per simulate() call")
    parser.add_argument("--ttbar", type=int, default=300, help="distinct ttbar events to generate")
    parser.add_argument("--minbias", type=int, default=500, help="minimum-bias events in the pileup library")
    parser.add_argument("--repeat", type=int, default=3, help="timing repetitions; the best is reported")
    args = parser.parse_args()

    ttbar = samples.generate("ttbar", args.ttbar, seed=1)
    library = PileupLibrary(samples.generate("minbias", args.minbias, seed=2))
    chunk = ttbar[np.arange(args.chunk) % len(ttbar)]
    card.simulate(chunk[:10], seed=0, pileup=library)  # compile the numba kernels

    n_chunks = max(args.events // args.chunk, 1)
    for label, pileup in (("no pileup", None), ("pileup 6.35", library)):
        best_wall, best_cpu = np.inf, np.inf
        counts = 0.0
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            for index in range(n_chunks):
                out = card.simulate(chunk, seed=index, pileup=pileup)
            best_wall = min(best_wall, time.perf_counter() - wall)
            best_cpu = min(best_cpu, time.process_time() - cpu)
            counts = float(ak.mean(ak.num(out.pfc[np.abs(out.pfc.eta) < 2.5])))
        n = n_chunks * args.chunk
        print(f"{label:12s}: {n / best_wall:7.1f} events/s wall, {n / best_cpu:7.1f} events/s CPU "
              f"({1e3 * best_cpu / n:.2f} ms/event); {counts:.1f} PFCs per event (pT > 1 GeV, |eta| < 2.5)")


if __name__ == "__main__":
    main()
