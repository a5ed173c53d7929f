"""Small Pythia 8 samples for validating and fitting the ``cmslike`` simulation.

7 TeV proton-proton events with particles of c tau > 10 mm left undecayed (the CMS
generator convention) and vertices smeared with the 2011 CMS beam spot, turned into GEN
event batches with the PDG id kept. Used by the
tests, the normalisation fit and the benchmark; large productions belong to
``parnassus generate``.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

from parnassus.core import events as ev
from parnassus.detectors.cmslike import constants
from parnassus.exceptions import MissingDependencyError

#: Pythia 8 settings per process.
PROCESSES = {
    "ttbar": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on"],
    "qcd": ["HardQCD:all = on", "PhaseSpace:pTHatMin = 470", "PhaseSpace:pTHatMax = 600"],
    "minbias": ["SoftQCD:nonDiffractive = on", "SoftQCD:singleDiffractive = on", "SoftQCD:doubleDiffractive = on"],
}

_MM_PER_CM = 10.0

COMMON = [
    "Beams:eCM = 7000",
    "Beams:allowVertexSpread = on",
    f"Beams:sigmaVertexX = {constants.BEAM_SPOT_SIGMA_XY_CM * _MM_PER_CM:.6g}",
    f"Beams:sigmaVertexY = {constants.BEAM_SPOT_SIGMA_XY_CM * _MM_PER_CM:.6g}",
    f"Beams:sigmaVertexZ = {constants.BEAM_SPOT_SIGMA_Z_CM * _MM_PER_CM:.6g}",
    f"Beams:offsetVertexX = {constants.BEAM_SPOT_CENTRE_CM[0] * _MM_PER_CM:.6g}",
    f"Beams:offsetVertexY = {constants.BEAM_SPOT_CENTRE_CM[1] * _MM_PER_CM:.6g}",
    f"Beams:offsetVertexZ = {constants.BEAM_SPOT_CENTRE_CM[2] * _MM_PER_CM:.6g}",
    "Print:quiet = on",
    "ParticleDecays:limitTau0 = on",
    "ParticleDecays:tau0Max = 10",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
    "Init:showChangedSettings = off",
    "Init:showProcesses = off",
    "Init:showChangedParticleData = off",
    "Random:setSeed = on",
]


def generate(process: str, n_events: int, seed: int) -> ak.Array:
    """Generate ``n_events`` GEN events of ``process`` (ttbar, qcd, minbias) with Pythia 8.

    Returns:
        event batch ``{gen, event_number}``; GEN contains every visible final-state particle
        (neutrinos dropped) with its PDG id, vertices in cm.
    """
    try:
        import pythia8mc
    except ImportError as error:
        raise MissingDependencyError("generating events needs Pythia 8: pip install 'parnassus[generation]'") from error
    if process not in PROCESSES:
        raise ValueError(f"unknown process {process!r}; choose from {sorted(PROCESSES)}")

    pythia = pythia8mc.Pythia("", False)
    for line in COMMON + PROCESSES[process] + [f"Random:seed = {seed % 900_000_000}"]:
        pythia.readString(line)
    if not pythia.init():
        raise RuntimeError(f"Pythia 8 failed to initialise for {process}")
    batch = pythia.nextBatch(n_events)
    prt = batch.prt
    final = prt[prt.status > 0]
    pdgid = final.id
    cls = ev.pdgid_to_class(ak.to_numpy(ak.flatten(pdgid)))
    counts = ak.num(pdgid)
    cls = ak.unflatten(cls, counts)
    visible = cls >= 0
    final = final[visible]
    cls = cls[visible]

    px, py, pz = final.p.px, final.p.py, final.p.pz
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-12))
    phi = np.arctan2(py, px)
    vertex = final.vProd
    # Pythia vertices are in mm; GEN uses cm. A particle without a vertex starts at the origin.
    vx = ak.fill_none(vertex.px, 0.0) * 0.1
    vy = ak.fill_none(vertex.py, 0.0) * 0.1
    vz = ak.fill_none(vertex.pz, 0.0) * 0.1
    gen = ev.make_particles(pt, eta, phi, vx, vy, vz, cls, pdgid=final.id)
    return ev.make_events(gen, event_number=np.arange(len(gen)) + seed * 1_000_000)
