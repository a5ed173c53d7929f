"""Small Pythia 8 samples for validating and fitting the ``cmslike`` simulation.

A thin layer over :mod:`parnassus.generation`: 7 TeV proton-proton events with
particles of c tau > 10 mm left undecayed (the CMS generator convention), vertices
smeared with the 2011 CMS beam spot, and the GEN selection of the CMS Open
Simulation files (pT > 0.25 GeV, |eta| < 2.7, the cut the ``cmslike`` card applies
before its simulation anyway), with the PDG id kept. Used by the tests, the
normalisation fit and the benchmark; large productions belong to
``parnassus generate``.
"""

from __future__ import annotations

import awkward as ak

#: The short process names used here, mapped to the processes of :mod:`parnassus.generation`.
PROCESSES = {
    "ttbar": "ttbar",
    "qcd": "qcd-470-600",
    "minbias": "minbias",
}


def generate(process: str, n_events: int, seed: int) -> ak.Array:
    """Generate ``n_events`` GEN events of ``process`` (ttbar, qcd, minbias) with Pythia 8.

    Args:
        process: ``ttbar``, ``qcd`` (QCD 2->2 with 470 < pT-hat < 600 GeV) or
            ``minbias`` (all inelastic collisions, for pileup).
        n_events: events to generate.
        seed: the generation seed, 0 .. 89,999 (see :mod:`parnassus.generation.seeding`).

    Returns:
        event batch ``{gen, event_number}``; GEN contains the visible final-state particles
        (neutrinos dropped) with pT > 0.25 GeV and |eta| < 2.7, with their PDG id, vertices in cm.

    Raises:
        ValueError: for an unknown process.
        MissingDependencyError: when Pythia 8 is not installed.
    """
    from parnassus.generation import generate_events

    if process not in PROCESSES:
        raise ValueError(f"unknown process {process!r}; choose from {sorted(PROCESSES)}")
    return generate_events(PROCESSES[process], n_events, seed)
