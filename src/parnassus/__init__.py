"""parnassus: fast simulation and reconstruction of entire collider events.

parnassus samples the particle-flow candidates (PFC) that a detector and its
reconstruction would produce from the generator-level stable particles (GEN) of
an event, with the two-stage conditional generative model PARNASSUS
(Dreyer, Gross, Kobylanski, Mikuni, Nachman, arXiv:2503.19981).

Importing this package imports neither PyTorch nor TensorFlow: each backend
imports its framework only when it is used.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("parnassus")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
