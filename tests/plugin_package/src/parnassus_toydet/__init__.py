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


class Ralston(Solver):
    """Ralston's second-order Runge-Kutta method, the error-minimising two-stage scheme.

    k1 = v(x, t), k2 = v(x + 2/3 h k1, t + 2/3 h), x_next = x + h (k1 / 4 + 3 k2 / 4).
    """

    name = "ralston"
    description = "Ralston's Runge-Kutta method (plugin-guide example), order 2, 2 evaluations per step"
    order = 2
    nfe_per_step = 2

    def step(self, velocity, x, path, t, t_next):
        h = t_next - t
        k1 = velocity(x, t)
        k2 = velocity(x + (2.0 / 3.0) * h * k1, t + (2.0 / 3.0) * h)
        return x + h * (0.25 * k1 + 0.75 * k2)
