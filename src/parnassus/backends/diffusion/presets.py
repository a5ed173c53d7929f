"""Training presets and configuration of the diffusion backend.

``paper`` follows Table III of arXiv:2503.19981 for the diffusion model: batch
size 64, Lion with weight decay 0.01, cosine learning rate from 6e-5 to 1e-7,
no gradient clipping, 300 epochs, DPM-Solver-2 with 64 steps, four DiT blocks
and k = 3 neighbours. The paper does not give the hidden sizes. The ones below
give 1.35 M trainable parameters in the event network and 4.47 M in the particle
network with cross-attention (3.44 M with attention over the union), close to the
1.38 M and 4.10 M of Table III.

``small`` is sized to give a useful model in about an hour on two CPU cores
with some ten thousand training events; ``tiny`` is for tests only.
"""

from __future__ import annotations

import copy
from typing import Any

from parnassus.exceptions import InvalidInputError

_PAPER: dict[str, Any] = {
    "event": {"hidden": 192, "blocks": 3, "dropout": 0.0},
    "particle": {"hidden": 192, "heads": 4, "blocks": 4, "neighbours": 3, "attention": "cross", "dropout": 0.0},
    "training": {
        "batch_size": 64,
        "epochs": 300,
        "learning_rate": 6e-5,
        "min_learning_rate": 1e-7,
        "weight_decay": 0.01,
        "beta_1": 0.9,
        "beta_2": 0.99,
        "ema_decay": 0.999,
        "chunk_size": 8192,
        "normalisation_events": 20000,
        "validation_seed": 12345,
        # Train on the first N events of the files only (None: all of them).
        "max_events": None,
    },
    "sampling": {
        "solver": "dpm-solver-2",
        "steps": 64,
        "event_steps": 64,
        "time_grid": "uniform",
        "batch_size": 256,
        "max_redraw_rounds": 100,
    },
}

_OVERRIDES: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": {
        "event": {"hidden": 96, "blocks": 2},
        "particle": {"hidden": 64, "heads": 4, "blocks": 4},
        "training": {"epochs": 20, "learning_rate": 3e-4, "min_learning_rate": 1e-6, "ema_decay": 0.995},
        "sampling": {"steps": 32, "event_steps": 32},
    },
    "tiny": {
        "event": {"hidden": 32, "blocks": 1},
        "particle": {"hidden": 32, "heads": 2, "blocks": 2},
        "training": {
            "batch_size": 16,
            "epochs": 2,
            "learning_rate": 3e-3,
            "min_learning_rate": 3e-4,
            "weight_decay": 0.0,
            "ema_decay": 0.9,
            "chunk_size": 256,
            "normalisation_events": 1000,
        },
        "sampling": {"steps": 4, "event_steps": 4, "batch_size": 64},
    },
}

PRESETS = tuple(_OVERRIDES)


def _merge(base: dict, update: dict, where: str) -> dict:
    for key, value in update.items():
        if key not in base:
            raise InvalidInputError(f"unknown diffusion configuration key {where}{key!r}; known keys: {', '.join(base)}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise InvalidInputError(f"diffusion configuration {where}{key!r} must be a mapping, not {value!r}")
            _merge(base[key], value, f"{where}{key}.")
        else:
            base[key] = value
    return base


def make_config(preset: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the configuration of a preset with ``overrides`` applied.

    Args:
        preset: ``paper``, ``small`` or ``tiny``.
        overrides: nested keys to change, e.g. ``{"particle": {"attention": "union"}}``;
            dotted keys (``{"particle.attention": "union"}``) work too.

    Raises:
        InvalidInputError: unknown preset or key, or an invalid value.
    """
    if preset not in _OVERRIDES:
        raise InvalidInputError(f"unknown preset {preset!r} for the diffusion backend; choose one of {', '.join(PRESETS)}")
    config = _merge(copy.deepcopy(_PAPER), copy.deepcopy(_OVERRIDES[preset]), "")
    nested: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        target = nested
        parts = key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    config = _merge(config, nested, "")
    validate(config)
    return config


def validate(config: dict[str, Any]) -> None:
    """Check the values of a configuration; raise :class:`InvalidInputError` naming the bad one."""
    particle = config["particle"]
    if particle["attention"] not in ("cross", "union"):
        raise InvalidInputError(f"particle.attention must be 'cross' or 'union', not {particle['attention']!r}")
    if particle["hidden"] % particle["heads"]:
        raise InvalidInputError(f"particle.hidden ({particle['hidden']}) must be divisible by particle.heads ({particle['heads']})")
    max_events = config["training"]["max_events"]
    if max_events is not None and (not isinstance(max_events, int) or isinstance(max_events, bool) or max_events < 1):
        raise InvalidInputError(f"training.max_events must be a positive integer or null, not {max_events!r}")
    positive = [
        ("event.hidden", config["event"]["hidden"]),
        ("particle.hidden", particle["hidden"]),
        ("particle.neighbours", particle["neighbours"]),
        ("training.batch_size", config["training"]["batch_size"]),
        ("training.epochs", config["training"]["epochs"]),
        ("training.learning_rate", config["training"]["learning_rate"]),
        ("sampling.steps", config["sampling"]["steps"]),
        ("sampling.event_steps", config["sampling"]["event_steps"]),
    ]
    for name, value in positive:
        if not value > 0:
            raise InvalidInputError(f"diffusion configuration {name} must be positive, not {value!r}")
    if config["sampling"]["time_grid"] not in ("uniform", "logsnr"):
        raise InvalidInputError(f"sampling.time_grid must be 'uniform' or 'logsnr', not {config['sampling']['time_grid']!r}")
    if not 0.0 <= config["training"]["ema_decay"] < 1.0:
        raise InvalidInputError(f"training.ema_decay must be in [0, 1), not {config['training']['ema_decay']!r}")
