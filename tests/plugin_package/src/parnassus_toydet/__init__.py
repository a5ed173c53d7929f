"""A toy detector and solver, registered as parnassus plugins through entry points.

This package is what a detector group or a researcher writes to extend
parnassus without changing it; the plugin guide in docs/plugins.md walks
through it.
"""

from parnassus.core.detector import DetectorCard, Selection
from parnassus.core.solvers import Solver

card = DetectorCard(
    name="toydet",
    description="Toy detector of the plugin guide: |eta| < 2.0, PFC pT > 2 GeV",
    gen_selection=Selection(pt_min=0.5, abs_eta_max=2.0),
    pfc_selection=Selection(pt_min=2.0, abs_eta_max=2.0),
    eval_abs_eta_max=1.8,
    max_particles=200,
)


class ToyEuler(Solver):
    """Explicit Euler with the velocity taken at the end of each step's first half (a toy)."""

    name = "toy-euler"
    description = "Toy solver of the plugin guide: first-order Euler steps"
    order = 1

    def step(self, velocity, x, t, t_next, path):
        return x + (t_next - t) * velocity(x, t)
