"""``parnassus info NAME``: details of one detector, backend or solver."""

from __future__ import annotations

import importlib.util

from parnassus.core import plugins
from parnassus.core.backend import PRESETS
from parnassus.exceptions import PluginNotFoundError


def register(subparsers):
    parser = subparsers.add_parser(
        "info",
        help="show the details of a detector, backend or solver",
        description="Show what a registered plugin is: its package, description and settings "
        "(cuts and shipped weights of a detector, framework of a backend, order of a solver).",
    )
    parser.add_argument("name", help="a name that `parnassus list` shows")
    parser.set_defaults(func=run)


def run(args) -> int:
    kinds = [kind for kind in plugins.GROUPS if args.name in plugins.available(kind)]
    if not kinds:
        known = sorted({name for kind in plugins.GROUPS for name in plugins.available(kind)})
        raise PluginNotFoundError(f"no plugin named {args.name!r}; registered names: {', '.join(known)}")

    for kind in kinds:
        entry_point = plugins.available(kind)[args.name]
        print(f"{args.name} ({kind})")
        print(f"  provided by: {plugins.distribution(kind, args.name)}")
        print(f"  object:      {entry_point.module_name}:{entry_point.object_name}")
        print(f"  description: {plugins.describe(kind, args.name)}")
        {"detector": _detector, "backend": _backend, "solver": _solver}[kind](args.name)
    return 0


def _detector(name: str) -> None:
    card = plugins.load_detector(name)
    gen, pfc = card.gen_selection, card.pfc_selection
    print(f"  GEN selection: pT > {gen.pt_min} GeV, |eta| < {gen.abs_eta_max}")
    print(f"  PFC selection: pT > {pfc.pt_min} GeV, |eta| < {pfc.abs_eta_max}")
    print(f"  evaluation acceptance: |eta| < {card.eval_abs_eta_max}")
    print(f"  maximum particles per event: {card.max_particles}")
    print(f"  reference simulation: {'yes (parnassus simulate)' if card.has_simulation else 'no'}")
    for backend in plugins.available("backend"):
        weights = card.weights(backend)
        print(f"  weights for {backend}: {weights if weights else 'none shipped'}")
    if card.training_hint and not any(card.weights(b) for b in plugins.available("backend")):
        print(f"  to get weights: {card.training_hint}")


def _backend(name: str) -> None:
    backend = plugins.load_backend(name)
    framework = {"torch": "torch", "tensorflow": "tensorflow"}.get(backend.extra)
    if framework:
        installed = importlib.util.find_spec(framework) is not None
        state = "installed" if installed else f'not installed: pip install "parnassus[{backend.extra}]"'
        print(f"  framework: {framework} ({state})")
    else:
        print("  framework: numpy only")
    print(f"  training presets: {', '.join(PRESETS)}")


def _solver(name: str) -> None:
    solver = plugins.load_solver(name)
    print(f"  order: {getattr(solver, 'order', 'unknown')}")
    nfe = getattr(solver, "nfe", None)
    if callable(nfe):
        print(f"  network evaluations at 8, 16, 25 steps: {nfe(8)}, {nfe(16)}, {nfe(25)}")
