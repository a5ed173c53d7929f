"""Pythia 8 event generation: the GEN events parnassus trains on and is tested with.

``parnassus generate`` and :func:`generate_file` write GEN events of one process
(ttbar, h4l, qcd-470-600, qcd-600-800, minbias) to an event file;
:func:`generate_events` returns them in memory. Pythia is imported only when
events are generated.
"""

from parnassus.generation.api import generate_events, generate_file
from parnassus.generation.processes import PROCESSES, Process, get_process
from parnassus.generation.pythia_gen import GenerationError
from parnassus.generation.seeding import MAX_EVENTS_PER_SEED, MAX_SEED

__all__ = [
    "PROCESSES",
    "MAX_EVENTS_PER_SEED",
    "MAX_SEED",
    "GenerationError",
    "Process",
    "generate_events",
    "generate_file",
    "get_process",
]
