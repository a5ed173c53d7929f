#!/usr/bin/env python
"""Train the models that parnassus ships for the cmslike detector, resumably.

Trains the ``small`` presets of the flow-matching and diffusion backends and fits
the smearing baseline on the standard cmslike data sets made by
``scripts/make_datasets.py``, then installs the checkpoints as the cmslike card's
weights (``src/parnassus/detectors/cmslike/weights/<backend>/``).

Each backend trains in its own ``parnassus train`` process with its log in the run
folder. Rerunning the script resumes every backend from its last finished epoch
(``parnassus train --resume``); a backend whose checkpoint has all its epochs is
skipped. Stop it at any time: the last complete epoch is kept.

Example (the run that made the shipped weights is recorded in each model.yaml)::

    python scripts/train_shipped_models.py --data data --runs runs/shipped \\
        --max-train-events 30000 --install
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

log = logging.getLogger("train_shipped_models")

REPOSITORY = Path(__file__).resolve().parent.parent
WEIGHTS = REPOSITORY / "src" / "parnassus" / "detectors" / "cmslike" / "weights"
BACKENDS = ("smearing", "flow-matching", "diffusion")

# Files of a checkpoint that only --resume needs: not shipped, to keep the package small.
RESUME_ONLY = ("optimizer",)


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data"), help="folder made by make_datasets.py")
    parser.add_argument("--runs", type=Path, default=Path("runs/shipped"), help="folder for checkpoints and logs")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS), help="backends to train")
    parser.add_argument("--preset", default="small", help="training preset of the generative backends (default: small)")
    parser.add_argument("--epochs", type=int, help="epochs of the generative backends (default: the preset's)")
    parser.add_argument(
        "--max-train-events",
        type=int,
        help="train the generative backends on the first N training events only (default: all)",
    )
    parser.add_argument("--threads", type=int, help="CPU threads per training process (default: all cores)")
    parser.add_argument("--install", action="store_true", help="copy finished checkpoints into the cmslike card")
    return parser.parse_args(argv)


def data_files(data: Path, piece: str) -> list[Path]:
    """Return the simulated chunk files of a piece, alternating between processes.

    Alternating keeps the processes in equal parts when a backend reads only the
    first N events (``max_events``), since it reads the files in the given order.
    """
    folder = data / "full" / piece
    files = sorted(folder.glob("*.root")) + sorted(folder.glob("*.parquet"))
    if not files:
        raise SystemExit(f"no simulated {piece} files under {folder}: run scripts/make_datasets.py first")
    by_process: dict[str, list[Path]] = {}
    for path in files:
        by_process.setdefault(path.name.rsplit("_", 1)[0], []).append(path)
    interleaved = []
    for group in itertools.zip_longest(*by_process.values()):
        interleaved.extend(path for path in group if path is not None)
    return interleaved


def train(backend: str, args: argparse.Namespace) -> Path:
    out = args.runs / backend
    command = [
        sys.executable, "-m", "parnassus.cli", "train",
        "--detector", "cmslike",
        "--backend", backend,
        "--data", *map(str, data_files(args.data, "train")),
        "--validation", *map(str, data_files(args.data, "validation")),
        "--preset", args.preset,
        "-o", str(out),
    ]
    if backend != "smearing":
        if args.epochs:
            command += ["--epochs", str(args.epochs)]
        if args.max_train_events:
            key = "training.max_events" if backend == "diffusion" else "max_events"
            command += ["--set", f"{key}={args.max_train_events}"]
    if (out / "model.yaml").is_file():
        if backend == "smearing":
            log.info("smearing: %s exists; the fit is one pass, nothing to resume", out)
            return out
        command.append("--resume")

    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    args.runs.mkdir(parents=True, exist_ok=True)
    log_path = args.runs / f"{backend}.log"
    log.info("training %s: %s (log: %s)", backend, " ".join(command[2:]), log_path)
    with open(log_path, "a") as stream:
        result = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, env=env, cwd=REPOSITORY)
    if result.returncode != 0:
        raise SystemExit(f"training {backend} failed with exit code {result.returncode}; see {log_path}")
    return out


def install(backend: str, checkpoint: Path) -> None:
    """Copy a checkpoint into the cmslike card, leaving out the resume-only optimiser state."""
    target = WEIGHTS / backend
    staging = WEIGHTS / f".{backend}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for path in checkpoint.iterdir():
        if path.is_file() and not any(word in path.name for word in RESUME_ONLY):
            shutil.copy2(path, staging / path.name)
    with open(staging / "model.yaml") as stream:
        info = yaml.safe_load(stream)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    size = sum(p.stat().st_size for p in target.iterdir()) / 2**20
    log.info("installed %s (%s epochs) into %s, %.1f MiB", backend, info.get("epochs_completed", "all"), target, size)


def main(argv=None) -> int:
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for backend in args.backends:
        checkpoint = train(backend, args)
        if args.install:
            install(backend, checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
