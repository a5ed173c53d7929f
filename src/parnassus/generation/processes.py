"""Pythia 8 settings of the processes parnassus generates, and of the 2011 CMS beam spot.

Every process shares the beams (pp at sqrt(s) = 7 TeV, as in the 2011 CMS Open
Simulation samples that arXiv:2503.19981 trains on), the decay settings and the
beam spot; each adds its hard process. Pythia's defaults (checked in pythia8mc
8.317) apply otherwise: Tune:pp = 14 (Monash 2013), PDF:pSet = 13 (NNPDF2.3
QCD+QED LO), top-quark mass 173.0 GeV.

NOTE: the CMS 2011 samples were made with Pythia 6.4 and the Z2 tune, so the
Pythia 8 events here agree with them in the processes and in the decay and
vertex treatment, not in every detail of the underlying event and hadronisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from parnassus.exceptions import InvalidInputError

#: Centre-of-mass energy (GeV).
SQRT_S_GEV = 7000.0

#: Particles with c*tau above this (mm) stay undecayed, as the CMS generator step
#: leaves them for the detector simulation. K0S, Lambda, Sigma, Xi, Omega, the
#: charged pions and kaons and K0L are final-state particles. Pythia decays pi0,
#: eta, charm and bottom hadrons and tau leptons.
TAU0_MAX_MM = 10.0

# The 2011 MC beam spot of CMSSW (IOMC/EventVertexGenerators,
# VtxSmearedParameters_cfi.py, Realistic7TeV2011CollisionVtxSmearingParameters):
# centre (0.2440, 0.3929, 0.4145) cm, sigma_z = 5.22 cm, beta* = 150 cm and
# emittance 0.67e-7 cm. The transverse width of CMSSW's beta-function smearing is
#     sigma_x = sigma_y = sqrt(emittance * (beta* + (z - z0)**2 / beta*)) / sqrt(2),
# 22.4 um at z = z0. Pythia draws x, y and z independently, so the z dependence
# (a factor sqrt(1 + (dz / beta*)**2), below 1.001 within 1 sigma_z) is left out.
BEAM_SPOT_CENTRE_CM = (0.2440, 0.3929, 0.4145)
BEAM_SPOT_SIGMA_Z_CM = 5.22
_BETA_STAR_CM = 150.0
_EMITTANCE_CM = 0.67e-7
BEAM_SPOT_SIGMA_XY_CM = math.sqrt(_EMITTANCE_CM * _BETA_STAR_CM) / math.sqrt(2.0)

_MM_PER_CM = 10.0


def beam_spot_settings() -> list[str]:
    """Return the Pythia settings that smear every event's vertex with the 2011 CMS beam spot.

    Pythia takes lengths in mm. Without the x and y widths it would smear z only.
    """
    x0, y0, z0 = (value * _MM_PER_CM for value in BEAM_SPOT_CENTRE_CM)
    sigma_xy = BEAM_SPOT_SIGMA_XY_CM * _MM_PER_CM
    sigma_z = BEAM_SPOT_SIGMA_Z_CM * _MM_PER_CM
    return [
        "Beams:allowVertexSpread = on",
        f"Beams:sigmaVertexX = {sigma_xy:.6g}",
        f"Beams:sigmaVertexY = {sigma_xy:.6g}",
        f"Beams:sigmaVertexZ = {sigma_z:.6g}",
        f"Beams:offsetVertexX = {x0:.6g}",
        f"Beams:offsetVertexY = {y0:.6g}",
        f"Beams:offsetVertexZ = {z0:.6g}",
    ]


def common_settings() -> list[str]:
    """Return the settings every process shares: beams, decays, beam spot and quiet output."""
    return [
        "Beams:idA = 2212",
        "Beams:idB = 2212",
        f"Beams:eCM = {SQRT_S_GEV:g}",
        "ParticleDecays:limitTau0 = on",
        f"ParticleDecays:tau0Max = {TAU0_MAX_MM:g}",
        *beam_spot_settings(),
        # Pythia prints a banner, the settings and a line every 1000 events otherwise.
        "Print:quiet = on",
        "Next:numberCount = 0",
    ]


@dataclass(frozen=True)
class Process:
    """A physics process: its command-line name, a description and its Pythia settings.

    Attributes:
        name: the name used by ``parnassus generate --process``.
        description: one line for help texts and logs.
        settings: Pythia ``readString`` lines that select the hard process and
            restrict decays, added after :func:`common_settings`.
    """

    name: str
    description: str
    settings: tuple[str, ...]

    def pythia_settings(self) -> list[str]:
        """Return all Pythia settings of the process, without the random seed."""
        return [*common_settings(), *self.settings]


def _qcd(pt_hat_min: float, pt_hat_max: float) -> Process:
    return Process(
        name=f"qcd-{pt_hat_min:g}-{pt_hat_max:g}",
        description=f"QCD 2->2 with {pt_hat_min:g} < pT-hat < {pt_hat_max:g} GeV",
        settings=(
            "HardQCD:all = on",
            f"PhaseSpace:pTHatMin = {pt_hat_min:g}",
            f"PhaseSpace:pTHatMax = {pt_hat_max:g}",
        ),
    )


#: The processes, by command-line name.
PROCESSES: dict[str, Process] = {
    process.name: process
    for process in (
        Process(
            name="ttbar",
            description="top-quark pair production (gg -> ttbar, qqbar -> ttbar), all decays",
            settings=("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"),
        ),
        Process(
            name="h4l",
            description="gg -> H(125 GeV) -> ZZ* -> 4 leptons, each Z decaying to e+e- or mu+mu-",
            settings=(
                "HiggsSM:gg2H = on",
                "25:m0 = 125.0",
                "25:onMode = off",
                "25:onIfMatch = 23 23",
                "23:onMode = off",
                "23:onIfAny = 11 13",
            ),
        ),
        _qcd(470, 600),
        _qcd(600, 800),
        Process(
            # All inelastic collisions (non-diffractive plus single, double and
            # central diffraction): the mean number of pileup interactions is
            # defined per inelastic cross section, so a pileup library drawn
            # from non-diffractive events alone would be too busy.
            name="minbias",
            description="minimum bias: all inelastic pp collisions (SoftQCD:inelastic), for pileup",
            settings=("SoftQCD:inelastic = on",),
        ),
    )
}


def get_process(name: str) -> Process:
    """Return the process called ``name``.

    Raises:
        InvalidInputError: (a ValueError) when no process has that name; the
            message lists the processes that exist.
    """
    try:
        return PROCESSES[name]
    except KeyError:
        known = ", ".join(PROCESSES)
        raise InvalidInputError(f"unknown process {name!r}; choose one of: {known}") from None
