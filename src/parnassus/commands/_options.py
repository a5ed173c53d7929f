"""Command-line options shared by several subcommands."""

from __future__ import annotations

import argparse

import yaml

from parnassus.core import plugins
from parnassus.exceptions import InvalidInputError


def add_detector(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument(
        "--detector",
        required=default is None,
        default=default,
        help="detector card name (see `parnassus list detectors`)" + (f"; default: {default}" if default else ""),
    )


def add_backend(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        required=True,
        help="backend name: flow-matching, diffusion, smearing or a plugin's (see `parnassus list backends`)",
    )


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default=None,
        help="compute device, for example cpu, cuda or cuda:1 (default: a GPU when one is visible, else the CPU)",
    )


def add_seed(parser: argparse.ArgumentParser, default: int = 0) -> None:
    parser.add_argument("--seed", type=int, default=default, help=f"random seed (default: {default})")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from error
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} is not positive")
    return value


def parse_overrides(items: list[str] | None) -> dict:
    """Parse ``key=value`` pairs; values are read as YAML scalars (numbers, booleans, strings)."""
    overrides = {}
    for item in items or []:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise InvalidInputError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def load_card_and_backend(detector: str, backend: str):
    return plugins.load_detector(detector), plugins.load_backend(backend)
