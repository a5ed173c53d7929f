"""Plugin discovery: detectors, backends and solvers from entry points, and
pluggy hooks for evaluation observables and post-processing.

Three entry-point groups name the plugins:

=====================  =================================================
group                  object
=====================  =================================================
``parnassus.detectors``  a :class:`~parnassus.core.detector.DetectorCard` instance
``parnassus.backends``   a :class:`~parnassus.core.backend.GenerativeBackend` subclass
``parnassus.solvers``    a :class:`~parnassus.core.solvers.Solver` subclass
``parnassus.hooks``      a module or object with ``@hookimpl`` functions
=====================  =================================================

Names are read with the ``entrypoints`` package, which parses the installed
distributions' metadata without importing anything. Loading a plugin imports
its module, so plugin modules must be light: a backend imports its framework
inside its methods, and ``parnassus list`` then imports neither PyTorch nor
TensorFlow.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import entrypoints
import pluggy

from parnassus.exceptions import PluginNotFoundError

log = logging.getLogger(__name__)

#: Plugin kinds and their entry-point groups.
GROUPS = {
    "detector": "parnassus.detectors",
    "backend": "parnassus.backends",
    "solver": "parnassus.solvers",
}

HOOK_GROUP = "parnassus.hooks"
PROJECT_NAME = "parnassus"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


def available(kind: str) -> dict[str, entrypoints.EntryPoint]:
    """Return the registered plugins of one kind by name, without importing them."""
    if kind not in GROUPS:
        raise ValueError(f"unknown plugin kind {kind!r}; expected one of {', '.join(GROUPS)}")
    return dict(sorted(entrypoints.get_group_named(GROUPS[kind]).items()))


def _load(kind: str, name: str) -> Any:
    found = available(kind)
    if name not in found:
        names = ", ".join(found) or "(none installed)"
        raise PluginNotFoundError(f"no {kind} named {name!r}; registered {kind}s: {names}")
    entry_point = found[name]
    try:
        return entry_point.load()
    except (ImportError, AttributeError) as error:
        raise PluginNotFoundError(
            f"{kind} {name!r} is registered by {entry_point.distro.name if entry_point.distro else 'a package'} "
            f"as {entry_point.module_name}:{entry_point.object_name}, but importing it failed: {error}"
        ) from error


def load_detector(name: str):
    """Return the :class:`DetectorCard` registered as ``name``."""
    return _load("detector", name)


def load_backend(name: str):
    """Return the :class:`GenerativeBackend` subclass registered as ``name``."""
    return _load("backend", name)


def load_solver(name: str):
    """Return an instance of the solver registered as ``name``."""
    return _load("solver", name)()


def describe(kind: str, name: str) -> str:
    """Return the one-line description of a plugin (its ``description`` attribute)."""
    obj = _load(kind, name)
    return getattr(obj, "description", "") or ""


def distribution(kind: str, name: str) -> str:
    """Return the name and version of the distribution that registers a plugin."""
    entry_point = available(kind)[name]
    distro = entry_point.distro
    return f"{distro.name} {distro.version}" if distro else "unknown"


class HookSpecs:
    """The hooks a plugin package may implement (mark them with ``@hookimpl``)."""

    @hookspec
    def parnassus_observables(self, events, card):
        """Add per-event observables to ``parnassus evaluate``.

        Called once per sample and once for the reference, on events that passed
        the evaluation acceptance.

        Args:
            events: an awkward Array with ``gen`` and ``pfc`` fields.
            card: the :class:`DetectorCard` of the evaluation.

        Returns:
            A dict from observable name to a numpy array with one value per event;
            each is compared with the reference like the built-in observables.
        """

    @hookspec
    def parnassus_postprocess(self, events, card):
        """Post-process sampled events before they are written.

        Called in registration order after sampling, on every batch.

        Returns:
            The modified events (an awkward Array of the same length), or None to
            leave them unchanged.
        """


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """Return the plugin manager with every hook implementation from the ``parnassus.hooks`` group."""
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(HookSpecs)
    for name, entry_point in sorted(entrypoints.get_group_named(HOOK_GROUP).items()):
        try:
            manager.register(entry_point.load(), name=name)
        except ImportError as error:
            log.error("hook plugin %r could not be imported and is skipped: %s", name, error)
    return manager


def postprocess(events, card):
    """Apply every registered ``parnassus_postprocess`` hook in turn."""
    # Each hook gets the output of the one before, in registration order. A plain
    # hook call cannot do this because it passes every hook the same input.
    for hook in plugin_manager().hook.parnassus_postprocess.get_hookimpls():
        arguments = {"events": events, "card": card}
        result = hook.function(**{name: arguments[name] for name in hook.argnames})
        if result is not None:
            events = result
    return events


def extra_observables(events, card) -> dict:
    """Collect the observables of every registered ``parnassus_observables`` hook."""
    observables: dict = {}
    for result in plugin_manager().hook.parnassus_observables(events=events, card=card):
        if result:
            observables.update(result)
    return observables
