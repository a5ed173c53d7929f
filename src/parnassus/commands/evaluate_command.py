"""`parnassus evaluate`: placeholder until the command is written."""

from parnassus.exceptions import ParnassusError


def register(subparsers):
    parser = subparsers.add_parser("evaluate", help="(not available yet)")
    parser.set_defaults(func=run)


def run(args):
    raise ParnassusError("parnassus evaluate is not available yet")
