"""``parnassus train``: train a backend on (GEN, PFC) pairs."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import yaml

from parnassus.commands import _options
from parnassus.core.checkpoint import MODEL_YAML, write_model_yaml
from parnassus.core.backend import PRESETS
from parnassus.exceptions import InvalidInputError

log = logging.getLogger(__name__)


def register(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train a backend on (GEN, PFC) files",
        description="Train both stages of a backend on files that hold GEN and PFC branches "
        "(evt_tree ROOT or Parquet). Data are streamed from disk; a checkpoint is written every epoch.",
    )
    _options.add_detector(parser)
    _options.add_backend(parser)
    parser.add_argument("--data", nargs="+", required=True, type=Path, help="training files with GEN and PFC")
    parser.add_argument("--validation", nargs="+", type=Path, help="validation files with GEN and PFC")
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="small",
        help="network sizes and schedule: paper (the published sizes), small (about an hour on 2 CPU cores), "
        "tiny (tests); default: small",
    )
    parser.add_argument("--epochs", type=_options.positive_int, help="number of epochs (default: the preset's)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the output folder")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="KEY=VALUE",
        help="override one setting of the preset, for example --set batch_size=64 (repeatable)",
    )
    _options.add_device(parser)
    _options.add_seed(parser)
    parser.add_argument("-o", "--output", required=True, type=Path, help="checkpoint folder to write")
    parser.set_defaults(func=run)


def run(args) -> int:
    for path in list(args.data) + list(args.validation or []):
        if not path.is_file():
            raise InvalidInputError(f"training file {path} not found")

    card, backend = _options.load_card_and_backend(args.detector, args.backend)
    overrides = _options.parse_overrides(args.overrides)
    log.info(
        "training %s for %s on %d file(s), preset %s, output %s",
        args.backend,
        args.detector,
        len(args.data),
        args.preset,
        args.output,
    )
    folder = backend.train(
        list(args.data),
        card,
        args.output,
        preset=args.preset,
        validation=list(args.validation) if args.validation else None,
        epochs=args.epochs,
        resume=args.resume,
        device=args.device,
        seed=args.seed,
        config_overrides=overrides,
    )
    _record_command(Path(folder), args.argv)
    log.info("checkpoint written to %s", folder)
    return 0


def _record_command(folder: Path, argv: list[str]) -> None:
    """Add the command line that made the checkpoint to its model.yaml, so it can be repeated."""
    path = folder / MODEL_YAML
    if not path.is_file():
        return
    with open(path) as stream:
        info = yaml.safe_load(stream) or {}
    info.pop("format_version", None)
    info.pop("parnassus_version", None)
    info["command"] = shlex.join(["parnassus", *argv])
    write_model_yaml(folder, info)
