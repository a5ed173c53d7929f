"""``parnassus list``: the registered detectors, backends and solvers."""

from __future__ import annotations

from parnassus.core import plugins

KINDS = {"detectors": "detector", "backends": "backend", "solvers": "solver"}


def register(subparsers):
    parser = subparsers.add_parser(
        "list",
        help="list the registered detectors, backends and solvers",
        description="List the detectors, backends and solvers registered through entry points, "
        "with one line of description each. Imports neither PyTorch nor TensorFlow.",
    )
    parser.add_argument(
        "kind",
        nargs="?",
        choices=sorted(KINDS),
        help="list only this kind of plugin (default: all three)",
    )
    parser.add_argument(
        "--names-only",
        action="store_true",
        help="print the names only, read from package metadata without importing any plugin",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    kinds = [args.kind] if args.kind else list(KINDS)
    for index, title in enumerate(kinds):
        kind = KINDS[title]
        names = plugins.available(kind)
        if index:
            print()
        print(f"{title}:")
        if not names:
            print("  (none installed)")
        width = max((len(name) for name in names), default=0)
        for name in names:
            if args.names_only:
                print(f"  {name}")
                continue
            try:
                description = plugins.describe(kind, name)
            except plugins.PluginNotFoundError as error:
                description = f"(broken: {error})"
            print(f"  {name:<{width}}  {description}")
    return 0
