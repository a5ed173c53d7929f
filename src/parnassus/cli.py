"""The ``parnassus`` command.

Each subcommand lives in its own module under :mod:`parnassus.commands` with a
``register(subparsers)`` function that adds its parser and sets ``func``. The
modules import heavy packages (PyTorch, TensorFlow, Pythia8, fastjet) only
inside their ``func``, so ``parnassus --help`` and ``parnassus list`` stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

import parnassus
from parnassus.exceptions import ParnassusError

log = logging.getLogger("parnassus")

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = ("list", "info", "convert", "generate", "simulate", "train", "run", "evaluate", "benchmark")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parnassus",
        description="Fast simulation and reconstruction of entire collider events (PARNASSUS, arXiv:2503.19981).",
    )
    parser.add_argument("--version", action="version", version=f"parnassus {parnassus.__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the lowest level of log messages printed on stderr (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"parnassus.commands.{name.replace('-', '_')}_command")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given, recorded in checkpoints
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ParnassusError as error:
        log.error("%s", error)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted; no partial output was kept")
        return 130


if __name__ == "__main__":
    sys.exit(main())
