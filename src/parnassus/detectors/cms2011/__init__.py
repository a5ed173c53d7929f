"""The ``cms2011`` detector card: the CMS 2011 Open Simulation setup of arXiv:2503.19981.

GEN particles with pT > 0.25 GeV and |eta| < 2.7, PFCs with pT > 1 GeV and
|eta| < 2.7 for training, |eta| < 2.5 for evaluation, at most 400 particles
per event, and the normalisation constants of the authors' configuration.

The card ships no weights: they are trained with ``parnassus train`` on the CMS
Open Simulation files (Zenodo record 15083495).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from parnassus.core.checkpoint import normalisation_from_dict
from parnassus.core.detector import DetectorCard, Selection

_HERE = Path(__file__).parent

TRAINING_HINT = (
    "train them on the CMS Open Simulation files (Zenodo record 15083495, tree evt_tree) with "
    "`parnassus train --detector cms2011 --backend BACKEND --data TRAIN.root -o DIR`, "
    "then pass --weights DIR; or use --detector cmslike, which ships trained models"
)


def _load_normalisation():
    with open(_HERE / "normalisation.yaml") as stream:
        return normalisation_from_dict(yaml.safe_load(stream))


card = DetectorCard(
    name="cms2011",
    description="CMS 2011 Open Simulation (7 TeV, particle flow); bring your own weights",
    gen_selection=Selection(pt_min=0.25, abs_eta_max=2.7),
    pfc_selection=Selection(pt_min=1.0, abs_eta_max=2.7),
    eval_abs_eta_max=2.5,
    max_particles=400,
    normalisation=_load_normalisation(),
    zero_neutral_vertex=True,
    weights_dir=None,
    training_hint=TRAINING_HINT,
)
