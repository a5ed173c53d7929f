"""Fit the feature normalisation of the cmslike card on a simulated ttbar + QCD sample.

Generates ttbar and QCD (pT-hat 470-600 GeV) events and a minimum-bias library with
Pythia 8 at 7 TeV and runs the cmslike simulation with pileup (Poisson mean 6.35). After
the card's selections, it writes the mean and standard deviation of every normalised
feature to src/parnassus/detectors/cmslike/normalisation.yaml (or --output).

    python scripts/fit_cmslike_normalisation.py --events 1000 --seed 1
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import awkward as ak
import yaml

from parnassus.core.checkpoint import normalisation_to_dict
from parnassus.core.detector import fit_normalisation
from parnassus.core.io.atomic import atomic_output
from parnassus.detectors.cmslike import PileupLibrary, card, samples

log = logging.getLogger("fit_cmslike_normalisation")

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "src" / "parnassus" / "detectors" / "cmslike" / "normalisation.yaml"

HEADER = """\
# Feature standardisation of the cmslike detector, x' = (x - mean) / std.
# Fitted by scripts/fit_cmslike_normalisation.py on {n_ttbar} ttbar and {n_qcd} QCD (pT-hat 470-600 GeV)
# events from Pythia 8 at 7 TeV (seed {seed}), simulated with the cmslike reference simulation and
# Poisson pileup of mean 6.35; GEN and PFC after the card's selections. Units: GeV for ht, met_x,
# met_y; cm for vx, vy, vz; rad for phi. ptrel is pT / HT of the event; MET = -sum of the pT vectors.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="events per process (ttbar and QCD)")
    parser.add_argument("--minbias", type=int, default=500, help="minimum-bias events in the pileup library")
    parser.add_argument("--seed", type=int, default=1, help="random seed of generation and simulation")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the YAML file to write")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    library = PileupLibrary(samples.generate("minbias", args.minbias, seed=args.seed + 2))
    simulated = []
    for offset, process in enumerate(("ttbar", "qcd")):
        gen = samples.generate(process, args.events, seed=args.seed + offset)
        events = card.simulate(gen, seed=args.seed + 10 + offset, pileup=library)
        events, _ = card.preprocess(events, source=f"simulated {process}")
        simulated.append(events)
        log.info("%s: %d events simulated", process, len(events))

    table = fit_normalisation(ak.concatenate(simulated))
    # Plain floats rounded to 4 significant digits keep the file readable.
    values = {key: {name: float(f"{number:.4g}") for name, number in entry.items()} for key, entry in normalisation_to_dict(table).items()}
    with atomic_output(args.output) as temporary:
        with open(temporary, "w") as stream:
            stream.write(HEADER.format(n_ttbar=args.events, n_qcd=args.events, seed=args.seed))
            for key, entry in values.items():
                stream.write(f"{key}: {yaml.safe_dump(entry, default_flow_style=True).strip()}\n")
    log.info("wrote %s", args.output)


if __name__ == "__main__":
    main()
